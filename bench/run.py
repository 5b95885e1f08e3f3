"""looop's benchmark: every figure in one run, printed as a table and written as JSON.

    python bench/run.py [--rounds 50] [--idle-seconds 60] [--json bench/results.json]

Wake-up latency is measured from the moment the ask or answer file landed (its own timestamp)
to the blocked `_ wait` / `_ ask` process handing over its output, so the figure is the
notification path, not Python's start-up (which is reported on its own line).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from looop.world.state_shape import PulseStatus, State

BIN_DIR = Path(sys.executable).parent
LOOOP = str(BIN_DIR / "looop") if (BIN_DIR / "looop").exists() else "looop"
FAKE_AGENT = Path(__file__).resolve().parent.parent / "tests" / "fake_agent.py"


def parsed_state(output: str) -> State:
    """What `_ state --json` or `_ wait --json` printed, in the state's declared shape."""
    state: State = orjson.loads(output)
    return state


class Bench:
    """A temp data dir and helpers to drive the real CLI against it."""

    def __init__(self, root: Path, program: str = LOOOP) -> None:
        self.program = program  # another build of looop, to compare with
        self.data = root / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOOOP_")}
        self.env.update(LOOOP_DATA_DIR=str(self.data), HOME=str(root))

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [self.program, *args], env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"looop {' '.join(args)}: {done.stderr}")
        return done.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.program, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def config(self, **settings: object) -> None:
        self.run("_", "state")
        (self.data / "config.json").write_bytes(
            orjson.dumps({"interactive": "pi", "interval": "60s", **settings})
        )

    def state(self) -> State:
        return parsed_state(self.run("_", "state", "--json"))

    def pulse(self) -> PulseStatus:
        return self.state()["pulse"]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met")
            time.sleep(0.05)


@contextmanager
def bench_dir(program: str = LOOOP) -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as root:
        bench = Bench(Path(root), program)
        try:
            yield bench
        finally:
            bench.run("down", check=False)


@contextmanager
def daemon(bench: Bench) -> Iterator[int]:
    out = bench.run("up")
    pid = int(out.split("(pid ")[1].split(")")[0])
    try:
        yield pid
    finally:
        bench.run("down", check=False)


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p95": p95, "n": len(ordered)}


def ask_wakes_wait(bench: Bench, prompt: str) -> tuple[float, str, subprocess.Popen[str]]:
    """File an ask while a `_ wait` blocks: (seconds from the ask file's own timestamp to the wait
    handing over its output, the ask's id, the blocked `_ ask`)."""
    waiter = bench.popen("_", "wait", "--json")
    time.sleep(0.15)  # let the waiter block first
    asker = bench.popen("_", "ask", "bench", "--prompt", prompt)
    out, _ = waiter.communicate(timeout=30)
    woke = time.time()
    [ask] = [a for a in parsed_state(out)["asks"] if a["prompt"] == prompt]
    created = orjson.loads((bench.data / "asks" / f"{ask['id']}.json").read_bytes())["created"]
    return woke - created, ask["id"], asker


def wake_latencies(bench: Bench, rounds: int) -> tuple[list[float], list[float]]:
    """(ask -> wait returns, answer -> ask returns), in seconds, over `rounds` round trips."""
    ask_to_wait: list[float] = []
    answer_to_ask: list[float] = []
    bench.run("_", "wait", "--all")
    for i in range(rounds):
        latency, ask_id, asker = ask_wakes_wait(bench, f"question {i}")
        ask_to_wait.append(latency)
        time.sleep(0.05)
        bench.run("_", "answer", ask_id, "ok")
        asker.communicate(timeout=30)
        returned = time.time()
        answered = orjson.loads((bench.data / "answers" / f"{ask_id}.json").read_bytes())["answered_at"]
        answer_to_ask.append(returned - answered)
        # an answer is no news: the next wait blocks (the ask it answered was seen)
    return ask_to_wait, answer_to_ask


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    results["python_floor_s"] = stats(timed([sys.executable, "-c", "pass"], args.rounds))["median"]
    results.update(verb_latencies(args.rounds))
    results["ask_throughput"] = ask_throughput(20, 25)

    with bench_dir() as bench:
        bench.config()
        files_ask, files_answer = wake_latencies(bench, args.rounds)
        results["ask_to_wait_files"] = stats(files_ask)
        results["answer_to_ask_files"] = stats(files_answer)
        with daemon(bench):
            up_ask, up_answer = wake_latencies(bench, args.rounds)
        results["ask_to_wait_daemon"] = stats(up_ask)
        results["answer_to_ask_daemon"] = stats(up_answer)

    with bench_dir() as bench:
        bench.config(interval="3s")
        for i in range(100):
            bench.run("_", "sensor", "write", f"s{i:03d}", "#!/bin/sh\nsleep 0.1\necho ok\n")
        with daemon(bench):
            durations: list[float] = []
            for beat in range(1, args.beats + 1):
                bench.wait_until(lambda: bench.pulse().get("beats", 0) >= beat)  # noqa: B023 - called at once
                durations.append(bench.pulse()["last_beat_duration"])
        results["beat_100_sensors_s"] = stats(durations)

    for size in args.fleets:
        results[f"fleet_{size}"] = idle_fleet(size, args.idle_seconds)
    results["idle_seconds"] = args.idle_seconds
    return results


def timed(argv: list[str], rounds: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall time of `rounds` runs of `argv`, one after another."""
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - began)
    return samples


def build_binary(into: Path) -> Path | None:
    """dist/looop built by packaging/binary.sh into `into`; None when PyInstaller is missing."""
    if subprocess.run([sys.executable, "-c", "import PyInstaller"], capture_output=True).returncode != 0:
        return None
    script = Path(__file__).resolve().parent.parent / "packaging" / "binary.sh"
    env = {**os.environ, "DIST": str(into), "PYTHON": sys.executable}
    subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True)
    return into / "looop"


def verb_latencies(rounds: int) -> dict[str, Any]:
    """`_ state --json` and `_ goal write` on a data dir with 100 goals, 50 sessions and 20 sensors,
    as the console script and as the binary, with and without `up`."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="looop-bin-") as scratch, bench_dir() as bench:
        bench.config()
        for i in range(100):
            (bench.data / "goals" / f"goal-{i:03d}.md").write_text(f"goal {i}\n")
        for i in range(50):
            session = bench.data / "sessions" / f"w{i:02d}"
            session.mkdir()
            record = {"v": 1, "id": f"w{i:02d}", "state": "exited", "alive": False, "ended": time.time()}
            (session / "state.json").write_bytes(orjson.dumps(record))
        for i in range(20):
            bench.run("_", "sensor", "write", f"s{i:02d}", f"#!/bin/sh\necho reading {i}\n")
        commands = {"console script": [LOOOP]}
        binary = build_binary(Path(scratch))
        if binary is not None:
            commands["binary"] = [str(binary)]
        for name, command in commands.items():
            figures[f"state_{name}"] = stats(timed([*command, "_", "state", "--json"], rounds, bench.env))
            figures[f"goal_{name}"] = stats(
                timed([*command, "_", "goal", "write", "g", "x"], rounds, bench.env)
            )
        with daemon(bench):
            bench.wait_until(lambda: bench.pulse().get("beats", 0) >= 1)
            for name, command in commands.items():
                figures[f"state_up_{name}"] = stats(
                    timed([*command, "_", "state", "--json"], rounds, bench.env)
                )
    return figures


ASKER = """
import subprocess, sys
session, count, looop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for k in range(count):
    subprocess.run([looop, "_", "ask", session, "--prompt", f"q{k}"], check=True, capture_output=True)
"""


def ask_throughput(processes: int, asks: int) -> dict[str, float]:
    """`processes` workers each asking `asks` questions in turn while a root-agent loop answers
    every ask it sees; asks answered per second, end to end."""
    with bench_dir() as bench:
        bench.config()
        with daemon(bench):
            began = time.perf_counter()
            askers = [
                subprocess.Popen([sys.executable, "-c", ASKER, f"p{i}", str(asks), LOOOP], env=bench.env)
                for i in range(processes)
            ]
            answered: set[str] = set()
            while len(answered) < processes * asks:
                state = parsed_state(bench.run("_", "wait", "--json"))
                for ask in state["asks"]:
                    if ask["id"] not in answered:
                        bench.run("_", "answer", ask["id"], "ok")
                        answered.add(ask["id"])
            for asker in askers:
                asker.wait(timeout=120)
            seconds = time.perf_counter() - began
    return {"asks": processes * asks, "seconds": seconds, "per_second": processes * asks / seconds}


def idle_fleet(size: int, idle_seconds: float) -> dict[str, float]:
    """Start `size` fake workers at once (timed until all are alive), let them go idle, then
    measure the `up` process's CPU over `idle_seconds` and its memory."""
    with bench_dir() as bench:
        bench.config(interactive=[sys.executable, str(FAKE_AGENT)], idle_after="2s", max_workers=max(size, 1))
        with daemon(bench) as pid:
            bench.wait_until(lambda: bench.pulse().get("beats", 0) >= 1)
            began = time.perf_counter()
            starts = [bench.popen("_", "worker", "start", f"w{i:02d}", "idle") for i in range(size)]
            for process in starts:
                if process.wait(timeout=120) != 0:
                    raise RuntimeError(f"worker start failed: {process.communicate()[1]}")
            started = time.perf_counter() - began

            def all_idle() -> bool:
                workers = bench.state()["workers"]
                return len(workers) == size and all(w["alive"] and w["state"] == "idle" for w in workers)

            bench.wait_until(all_idle, timeout=120)
            time.sleep(2)
            before = cpu_seconds(pid)
            time.sleep(idle_seconds)
            used = cpu_seconds(pid) - before
            return {
                "start_s": started,
                "idle_cpu_percent": 100 * used / idle_seconds,
                "rss_mib": rss_mib(pid),
            }


def table(results: dict[str, Any]) -> str:
    ms = 1000
    rows = [("python -c pass (floor)", f"{results['python_floor_s'] * ms:.1f} ms", "", "reference")]
    floor = results["python_floor_s"]
    for kind in ("console script", "binary"):
        for key, label in (
            (f"state_up_{kind}", f"_ state --json, up ({kind})"),
            (f"state_{kind}", f"_ state --json, no up ({kind})"),
            (f"goal_{kind}", f"_ goal write ({kind})"),
        ):
            if key in results:
                figure = results[key]
                ratio = figure["median"] / floor
                rows.append(
                    (
                        label,
                        f"{figure['median'] * ms:.1f} ms",
                        f"{figure['p95'] * ms:.1f} ms",
                        f"{ratio:.1f}x floor",
                    )
                )

    def latency(label: str, key: str, goal: str) -> None:
        figure = results[key]
        rows.append((label, f"{figure['median'] * ms:.1f} ms", f"{figure['p95'] * ms:.1f} ms", goal))

    latency("ask -> _ wait returns (up)", "ask_to_wait_daemon", "< 50 ms median")
    latency("answer -> _ ask returns (up)", "answer_to_ask_daemon", "< 50 ms median")
    latency("ask -> _ wait returns (no up)", "ask_to_wait_files", "< 50 ms median")
    latency("answer -> _ ask returns (no up)", "answer_to_ask_files", "< 50 ms median")
    beat = results["beat_100_sensors_s"]
    rows.append(("beat, 100 sensors of 0.1 s", f"{beat['median']:.2f} s", f"{beat['p95']:.2f} s", "< 1 s"))
    for size in sorted(int(k.split("_")[1]) for k in results if k.startswith("fleet_")):
        fleet = results[f"fleet_{size}"]
        label = f"up idle, {size} idle workers"
        rows.append(
            (
                f"{label}: CPU over {results['idle_seconds']:g} s",
                f"{fleet['idle_cpu_percent']:.2f} %",
                "",
                "< 1 %" if size == 0 else "",
            )
        )
        rows.append((f"{label}: memory (RSS)", f"{fleet['rss_mib']:.0f} MiB", "", ""))
        if size:
            rows.append(
                (
                    f"start {size} workers at once",
                    f"{fleet['start_s']:.2f} s",
                    "",
                    "< 10 s" if size == 50 else "",
                )
            )
    throughput = results["ask_throughput"]
    rows.append(
        (
            f"{throughput['asks']} asks from 20 processes, answered",
            f"{throughput['per_second']:.1f}/s",
            "",
            f"{throughput['seconds']:.1f} s in all",
        )
    )
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'median':>10}  {'p95':>10}  goal", "-" * (width + 36)]
    lines += [f"{a:<{width}}  {b:>10}  {c:>10}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--beats", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--fleets", type=int, nargs="+", default=[0, 10, 50], help="idle fleet sizes")
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    results = measure(args)
    results["machine"] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"looop bench, {results['machine']['date']}, {results['machine']['cores']} cores")
    print(table(results))
    args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


if __name__ == "__main__":
    main()
