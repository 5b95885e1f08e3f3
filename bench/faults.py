"""looop's fault report: each fault several times on a fresh data dir, with what was lost and how
long looop took to be whole again.

    python -m bench.faults [--tries 3] [--json bench/faults.json]

"Lost" counts moves that a fault made disappear: asks or answers not delivered, asks of a dead
worker left pending, claims of a dead worker left held, processes left running, storm moves
missing. It must be 0 everywhere. "Recover" is the time from the restart (or the fault, where
there is no restart) until the data dir is consistent again.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.run import Bench, bench_dir

FAKE_AGENT = Path(__file__).resolve().parent.parent / "tests" / "fake_agent.py"
STORM = Path(__file__).resolve().parent.parent / "tests" / "storm_worker.py"
Outcome = tuple[int, float]  # (lost, seconds to recover)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and b") Z " in stat.read_bytes())


def up(bench: Bench) -> int:
    return int(bench.run("up").split("(pid ")[1].split(")")[0])


def first_worker_pid(bench: Bench) -> int:
    """The pid of the first worker the state lists."""
    pid = bench.state()["workers"][0].get("pid")
    assert pid is not None
    return pid


def kill_9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.01)


def configure(bench: Bench, **settings: object) -> None:
    bench.config(interactive=[sys.executable, str(FAKE_AGENT)], kill_grace="1s", **settings)


def up_killed_mid_ask(bench: Bench) -> Outcome:
    configure(bench)
    pid = up(bench)
    askers = [bench.popen("_", "ask", f"a{i}", "--prompt", f"q{i}") for i in range(5)]
    bench.wait_until(lambda: len(bench.state()["asks"]) == 5)
    kill_9(pid)
    for i in range(5):
        bench.run("_", "answer", f"a{i}-1", f"answer {i}")
    began = time.perf_counter()
    up(bench)
    lost = sum(p.communicate(timeout=60)[0] != f"answer {i}\n" for i, p in enumerate(askers))
    return lost, time.perf_counter() - began


def up_killed_mid_beat(bench: Bench) -> Outcome:
    configure(bench, interval="1h", sensor_timeout="2s")
    for i in range(10):
        bench.run("_", "sensor", "write", f"s{i}", f"#!/bin/sh\nsleep 1\necho reading {i}\n")
    pid = up(bench)
    time.sleep(0.5)
    kill_9(pid)
    began = time.perf_counter()
    up(bench)
    bench.wait_until(lambda: bench.state()["pulse"]["beats"] >= 1)
    seconds = time.perf_counter() - began
    readings = bench.state()["snapshots"]
    lost = sum(readings.get(f"s{i}") != f"reading {i}\n" for i in range(10))
    return lost, seconds


def orphaned_worker(bench: Bench) -> Outcome:
    configure(bench)
    pid = up(bench)
    task = "x\nFAKE: ignore-hup\nFAKE: spawn-child\nFAKE: claim db\nFAKE: ask Still there?\n"
    bench.run("_", "worker", "start", "w1", task)
    bench.wait_until(lambda: bool(bench.state()["asks"]))
    worker_pid = first_worker_pid(bench)
    kill_9(pid)
    began = time.perf_counter()
    up(bench)
    seconds = time.perf_counter() - began
    after = bench.state()
    lost = len(after["asks"]) + len(after["claims"]) + alive(worker_pid)
    return lost, seconds


def worker_killed(bench: Bench) -> Outcome:
    configure(bench)
    up(bench)
    bench.run("_", "worker", "start", "w1", "x\nFAKE: claim db\nFAKE: ask Anyone?\n")
    bench.wait_until(lambda: bool(bench.state()["asks"]))
    os.kill(first_worker_pid(bench), signal.SIGKILL)
    began = time.perf_counter()
    bench.wait_until(lambda: bench.state()["workers"][0]["state"] == "dead")
    seconds = time.perf_counter() - began
    after = bench.state()
    return len(after["asks"]) + len(after["claims"]), seconds


def verb_storm(bench: Bench) -> Outcome:
    configure(bench)
    up(bench)
    began = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(STORM), str(i), "25"], env=bench.env) for i in range(20)]
    failed = sum(p.wait(timeout=300) != 0 for p in procs)
    seconds = time.perf_counter() - began
    after = bench.state()
    goals = {f"storm-{i}-{k}" for i in range(20) for k in range(0, 25, 5)} - set(after["goals"])
    claims = 100 - len(after["claims"])
    delivered = sum(
        bool(orjson.loads(p.read_bytes()).get("delivered_at"))
        for p in (bench.data / "answers").glob("*.json")
    )
    return failed + len(goals) + claims + (100 - delivered), seconds


FAULTS: list[tuple[str, Callable[[Bench], Outcome]]] = [
    ("kill -9 of up mid-ask, answered while down", up_killed_mid_ask),
    ("kill -9 of up mid-beat (10 sensors)", up_killed_mid_beat),
    ("kill -9 of up; worker ignores SIGHUP, forked", orphaned_worker),
    ("kill -9 of a worker holding an ask and a claim", worker_killed),
    ("verb storm: 20 processes x 25 moves, up", verb_storm),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("faults.json"))
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    for name, fault in FAULTS:
        outcomes: list[Outcome] = []
        for _ in range(args.tries):
            with bench_dir() as bench:
                outcomes.append(fault(bench))
        rows[name] = {
            "tries": len(outcomes),
            "lost": sum(lost for lost, _ in outcomes),
            "recover_median_s": statistics.median(seconds for _, seconds in outcomes),
            "recover_max_s": max(seconds for _, seconds in outcomes),
        }
    width = max(len(name) for name in rows)
    print(f"looop fault report, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    print(f"{'fault':<{width}}  tries  lost  recover (median / max)")
    for name, row in rows.items():
        print(
            f"{name:<{width}}  {row['tries']:>5.0f}  {row['lost']:>4.0f}"
            f"  {row['recover_median_s']:.2f} s / {row['recover_max_s']:.2f} s"
        )
    args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    if any(row["lost"] for row in rows.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
