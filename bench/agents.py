"""Figures for real agents as workers, each a ratio of two things measured in the same run.

    python -m bench.agents [--rounds 5] [--json bench/agents.json]

- start to ask: `_ worker start` until the root agent's `_ wait` returns the worker's first ask,
  for the claude and pi profiles (the real CLIs, pinned, against the tests' scripted model
  server on 127.0.0.1) and for the suite's stand-in agent; each real agent as a multiple of the
  stand-in.
- answer to tool result: `_ answer` until the model server receives the answer as the tool
  result, per agent.
- ending: `_ worker kill` of a stand-in worker that detached 20 processes (setsid, double fork,
  SIGTERM ignored: they need the SIGKILL after `kill_grace`), against one that detached none,
  and against the same with 10 more live workers (the sweep reads /proc).
The real agents are skipped (and said so) when npm cannot install them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bench.run import FAKE_AGENT, LOOOP, Bench
from tests.agent_clis import PACKAGES, Unavailable, agent_environment, install, without_agent_settings
from tests.model_server import Bash, ModelServer

if TYPE_CHECKING:
    from looop.world.state_shape import PublicAsk


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def first_ask(bench: Bench, worker: str, timeout: float = 120) -> PublicAsk:
    deadline = time.monotonic() + timeout
    while True:
        asks = [a for a in bench.state()["asks"] if a["worker"] == worker]
        if asks:
            return asks[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no ask from {worker}")
        bench.run("_", "wait", "--json", "--timeout", "30", check=False)


def ended(bench: Bench, worker: str) -> None:
    def gone() -> bool:
        return any(w["id"] == worker and not w["alive"] for w in bench.state()["workers"])

    bench.wait_until(gone, 120)


def agent_rounds(agent: str, rounds: int) -> dict[str, list[float]]:
    """Start-to-ask and answer-to-result times over `rounds` workers of `agent`."""
    start_to_ask: list[float] = []
    answer_to_result: list[float] = []
    with tempfile.TemporaryDirectory(prefix="looop-bench-agents-") as root:
        bench = Bench(Path(root))
        server = ModelServer().start()
        try:
            if agent == "fake":
                interactive: Any = [sys.executable, str(FAKE_AGENT)]
            else:
                bench.env = without_agent_settings(bench.env)
                bench.env.update(agent_environment(agent, Path(root) / "home", server.url(), [Path(root)]))
                interactive = agent
            bench.config(interactive=interactive, kill_grace="2s", idle_after="2s")
            bench.run("up")
            for i in range(rounds):
                worker = f"w{i}"
                ask = f"{LOOOP} _ ask {worker} --prompt 'Go on?'"
                script = server.script(worker, Bash(ask), Bash(f"{LOOOP} _ kill {worker}"))
                task = "FAKE: ask Go on?\nFAKE: kill\n" if agent == "fake" else "Do the task."
                began = time.monotonic()
                bench.run("_", "worker", "start", worker, "--cwd", root, task)
                asked = first_ask(bench, worker)
                start_to_ask.append(time.monotonic() - began)
                answered = time.monotonic()
                bench.run("_", "answer", asked["id"], "yes")
                if agent != "fake":
                    script.wait_results(1, timeout=120)
                    answer_to_result.append(time.monotonic() - answered)
                ended(bench, worker)
        finally:
            bench.run("down", check=False)
            server.close()
    return {"start_to_ask": start_to_ask, "answer_to_result": answer_to_result}


def kill_time(detached: int, others: int, rounds: int) -> float:
    """Median seconds of `_ worker kill` for a stand-in worker that detached `detached` processes,
    with `others` more stand-in workers alive."""
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="looop-bench-kill-") as root:
        bench = Bench(Path(root))
        bench.config(interactive=[sys.executable, str(FAKE_AGENT)], kill_grace="1s", max_workers=others + 2)
        bench.run("up")
        try:
            for j in range(others):
                bench.run("_", "worker", "start", f"other{j}", "--cwd", root, "FAKE: say idle\n")
            for i in range(rounds):
                worker = f"k{i}"
                steps = "".join(f"FAKE: detach bench-detached-{i}-{n}\n" for n in range(detached))
                bench.run("_", "worker", "start", worker, "--cwd", root, steps + "FAKE: say ready\n")
                bench.wait_until(lambda w=worker: ready(bench, w), 60)  # type: ignore[misc]
                began = time.monotonic()
                bench.run("_", "worker", "kill", worker)
                samples.append(time.monotonic() - began)
        finally:
            bench.run("down", check=False)
    return median(samples)


def ready(bench: Bench, worker: str) -> bool:
    screen = Path(bench.data / "sessions" / worker / "screen.txt")
    return screen.exists() and "ready" in screen.read_text()


def measure(rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {"rounds": rounds}
    fake = agent_rounds("fake", rounds)
    results["fake_start_to_ask_s"] = median(fake["start_to_ask"])
    for agent in ("claude", "pi"):
        try:
            install(PACKAGES[agent])
        except Unavailable as exc:
            results[f"{agent}_skipped"] = str(exc)
            print(f"{agent}: NOT MEASURED: {exc}", file=sys.stderr)
            continue
        figures = agent_rounds(agent, rounds)
        results[f"{agent}_start_to_ask_s"] = median(figures["start_to_ask"])
        results[f"{agent}_start_to_ask_x_fake"] = (
            median(figures["start_to_ask"]) / results["fake_start_to_ask_s"]
        )
        results[f"{agent}_answer_to_result_s"] = median(figures["answer_to_result"])
    none = kill_time(0, 0, rounds)
    results["kill_none_detached_s"] = none
    results["kill_20_detached_x_none"] = kill_time(20, 0, rounds) / none
    results["kill_20_detached_10_others_x_none"] = kill_time(20, 10, rounds) / none
    return results


def main(argv: list[str] | None = None, report: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = measure(args.rounds)
    width = max(len(k) for k in results)
    for key, value in results.items():
        report(
            f"{key.ljust(width)}  {value:.3f}" if isinstance(value, float) else f"{key.ljust(width)}  {value}"
        )
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))


if __name__ == "__main__":
    main()
