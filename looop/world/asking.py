"""A worker's side of an ask: block until its answer is there, woken by a running `up` or by
the files, and take it. (The asks themselves are stored by `looop.store.asks`.)"""

from __future__ import annotations

from looop.base.errors import CorruptFile, TimedOut
from looop.store.asks import Answer, collect_answer, read_answer
from looop.store.asks import settle as settle_ask
from looop.store.paths import DataDir
from looop.world.client import wait_via_daemon


def await_answer(dd: DataDir, ask_id: str, timeout: float | None = None) -> str:
    """Block until `ask_id` is answered (or its deadline `timeout` from now passes: see `settle`);
    mark it delivered and return the answer text."""

    def settled() -> Answer | None:
        try:
            return read_answer(dd, ask_id)
        except CorruptFile:
            return None  # a torn write cannot happen; a hand-edited file will be rewritten

    answer = wait_via_daemon(dd, {"op": "answer", "ask": ask_id}, lambda: [dd.answers], settled, timeout)
    if answer is None:
        settle_ask(dd, ask_id)  # its deadline passed: its default, or escalated; the pulse may have
        answer = settled()  # settled it already, so the file decides, not what settle returns
    if answer is None:
        raise TimedOut(
            f"ask {ask_id} is still unanswered at its deadline and was escalated to the human;"
            " run the same ask again to wait on"
        )
    taken = collect_answer(dd, ask_id)
    assert taken is not None, "an answer file is never removed while its ask exists"
    return taken
