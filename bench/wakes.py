"""How often a worker's life wakes the root agent, and how fast an ask reaches it: this build
against another (`--baseline`, the looop console script of an older checkout), in one run.

    python -m bench.wakes [--baseline PATH] [--rounds 5] [--json bench/wakes.json]

- wakes per worker life: a root-agent loop (`_ wait --json`, answer what it asks) over one
  stand-in worker that says hello, asks, and exits once answered; and over one that finishes two
  turns (going quiet at its prompt, then busy again when the loop sees it idle) before it exits.
  Every return of `_ wait` counts, up to the one that shows the end.
- ask -> `_ wait` returns: from the ask file's own timestamp to the blocked `_ wait` handing
  over its output, `up` running; answer -> `_ ask` returns: from the answer file's timestamp to
  the blocked `_ ask` returning; `_ state --json` with `up` running: its wall time.
Only the CLI is driven (the same calls work on both builds), so the figures compare builds; each
round measures both builds in turn.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.run import FAKE_AGENT, LOOOP, Bench, ask_wakes_wait, bench_dir, daemon, parsed_state, timed

LATENCIES = ("ask -> wait (s)", "answer -> ask (s)", "_ state --json, up (s)")


def seen_all(bench: Bench) -> None:
    """Wait until a `_ wait` times out: the loop has seen the world as it is (any build)."""
    while True:
        done = subprocess.run(
            [bench.program, "_", "wait", "--timeout", "0.5"], env=bench.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            return


def script(*steps: str) -> str:
    return "Do the task below.\n" + "".join(f"FAKE: {step}\n" for step in steps)


def life(bench: Bench, worker: str, steps: list[str], gates: list[Path]) -> int:
    """The returns of the root loop's `_ wait` from the worker's start to its end."""
    seen_all(bench)
    bench.run("_", "worker", "start", worker, script(*steps))
    wakes = 0
    while True:
        done = subprocess.run(
            [bench.program, "_", "wait", "--json", "--timeout", "60"],
            env=bench.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"_ wait: exit {done.returncode}: {done.stderr}")
        wakes += 1
        state = parsed_state(done.stdout)
        for ask in state["asks"]:
            bench.run("_", "answer", ask["id"], "yes", check=False)
        [record] = [w for w in state["workers"] if w["id"] == worker]
        if not record["alive"]:
            return wakes
        if record["state"] == "idle" and gates:
            gates.pop(0).touch()  # what telling it would do: it gets going again


def lifecycles(program: str, rounds: int) -> dict[str, list[float]]:
    wakes: dict[str, list[float]] = {"ask and end": [], "two turns": []}
    with bench_dir(program) as bench:
        bench.config(interactive=[sys.executable, str(FAKE_AGENT)], idle_after="1s", kill_grace="1s")
        with daemon(bench):
            for i in range(rounds):
                steps = ["say hello", "ask Ship it? | yes,no", "say shipped", "exit"]
                wakes["ask and end"].append(life(bench, f"a{i}", steps, []))
                gates = [bench.data.parent / f"gate{i}-{n}" for n in (1, 2)]
                steps = ["say one", f"quiet-until {gates[0]}", "say two", f"quiet-until {gates[1]}", "exit"]
                wakes["two turns"].append(life(bench, f"t{i}", steps, list(gates)))
    return wakes


def latencies(program: str, rounds: int) -> dict[str, list[float]]:
    with bench_dir(program) as bench:
        bench.config()
        with daemon(bench):
            seen_all(bench)
            samples = _round_trips(bench, rounds)
            samples[LATENCIES[2]] = timed([program, "_", "state", "--json"], rounds, bench.env)
            return samples


def _round_trips(bench: Bench, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {LATENCIES[0]: [], LATENCIES[1]: []}
    for i in range(rounds):
        latency, ask_id, asker = ask_wakes_wait(bench, f"question {i}")
        samples[LATENCIES[0]].append(latency)
        bench.run("_", "answer", ask_id, "ok")
        asker.communicate(timeout=30)
        returned = time.time()
        answered = orjson.loads((bench.data / "answers" / f"{ask_id}.json").read_bytes())["answered_at"]
        samples[LATENCIES[1]].append(returned - answered)
        seen_all(bench)  # an older build wakes for the answer: let it
    return samples


def measure(baseline: str | None, rounds: int) -> dict[str, Any]:
    """Each round measures every build in turn, so that the machine's load falls on both alike."""
    builds = {"this": LOOOP} | ({"baseline": baseline} if baseline else {})
    results: dict[str, Any] = {"rounds": rounds, "builds": builds}
    for name in builds:
        results[name] = {"ask and end": [], "two turns": [], **{figure: [] for figure in LATENCIES}}
    for _ in range(rounds):
        for name, program in builds.items():
            for figure, samples in lifecycles(program, 1).items():
                results[name][figure] += samples
            for figure, samples in latencies(program, 4).items():
                results[name][figure] += samples
    return results


def table(results: dict[str, Any], report: Callable[[str], None]) -> None:
    med = statistics.median
    names = [n for n in ("this", "baseline") if n in results]
    report("figure | " + " | ".join(names) + (" | this / baseline" if len(names) == 2 else ""))
    for figure in ("ask and end", "two turns", *LATENCIES):
        values = [med(results[n][figure]) for n in names]
        unit = "ms" if figure.endswith("(s)") else "wakes"
        shown = [f"{v * 1000:.1f} ms" if unit == "ms" else f"{v:g} wakes" for v in values]
        ratio = f" | {values[0] / values[1]:.2f}x" if len(values) == 2 and values[1] else ""
        report(f"{figure} | " + " | ".join(shown) + ratio)


def main(argv: list[str] | None = None, report: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="the looop program of the build to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    results = measure(args.baseline, args.rounds)
    table(results, report)
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
