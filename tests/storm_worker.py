"""One process of the verb storm: `python storm_worker.py INDEX COUNT`.

Calls looop's verb functions (the same the CLI calls) COUNT times against $LOOOP_DATA_DIR, cycling
through ask+answer+delivery, goal write, claim, and cost, so that twenty of these make hundreds of
moves in parallel within seconds (a CLI process per move would take minutes on two cores).
"""

from __future__ import annotations

import sys

from looop.store.asks import answer_ask, open_ask
from looop.store.bootstrap import open_data_dir
from looop.store.claims import claim
from looop.store.memory import write_goal
from looop.store.spend import report_cost
from looop.world.asking import await_answer


def main(index: int, count: int) -> None:
    dd = open_data_dir()
    session = f"s{index}"
    for k in range(count):
        kind = k % 5
        if kind == 0:
            write_goal(dd, f"storm-{index}-{k}", f"goal {index} {k}", "storm")
        elif kind == 1:
            ask = open_ask(dd, session, f"question {k}", None, ["yes", "no"])
            answer_ask(dd, ask.id, "yes")
            assert await_answer(dd, ask.id, timeout=30) == "yes"
        elif kind == 2:
            report_cost(dd, session, 1.0, "usd", f"move {k}")
        elif kind == 3:
            claim(dd, session, f"res-{index}-{k}")
        else:
            write_goal(dd, f"storm-{index}-{k - 4}", f"rewritten {index} {k}", "storm")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
