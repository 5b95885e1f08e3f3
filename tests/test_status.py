"""`looop status`: one terminal screen (what needs a decision first), `--json`, and `--watch`."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from wcwidth import wcswidth

from looop.base.processes import start_time
from tests.conftest import AGENT, LOOOP, Looop, Up, blocked, ended, script, wait_for, worker

SIZE = {"COLUMNS": "80", "LINES": "24"}


def status(looop: Looop, **size: str) -> list[str]:
    lines = looop.run("status", env=size or SIZE).stdout.splitlines()
    assert all(wcswidth(line) >= 0 for line in lines), lines  # nothing a terminal would act on
    return lines


def fits(lines: list[str], columns: int = 80, rows: int = 24) -> None:
    """At most `rows - 1` lines (the prompt takes the last), none wider than `columns`."""
    assert len(lines) < rows, "\n".join(lines)
    wide = [line for line in lines if wcswidth(line) > columns]
    assert not wide, wide


def plant_worker(looop: Looop, worker_id: str, state: str, screen: str, **record: object) -> None:
    """A worker record as the session actor writes it, alive as long as this test runs."""
    session = looop.data / "sessions" / worker_id
    session.mkdir(parents=True)
    alive = state not in ("exited", "killed")
    fields = {"id": worker_id, "state": state, "alive": alive, "started": time.time() - 90, "cost": {}}
    if alive:
        fields.update(pid=os.getpid(), process_start=start_time(os.getpid()))
    else:
        fields.update(ended=time.time(), end_reason="exit 0", exit_code=0)
    (session / "state.json").write_bytes(orjson.dumps({**fields, **record}))
    (session / "screen.txt").write_text(screen)


def plant_ask(looop: Looop, ask_id: str, worker_id: str, prompt: str, **fields: object) -> None:
    ask = {"id": ask_id, "worker": worker_id, "prompt": prompt, "reference": None, "options": None}
    (looop.data / "asks" / f"{ask_id}.json").write_bytes(
        orjson.dumps({**ask, "created": time.time(), **fields})
    )


def test_status_at_80x24_shows_one_workers_ask_then_its_line_then_the_rest(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT, kill_grace="1s")
    pid = up.start()
    looop.run("_", "goal", "write", "ship", "ship it")
    looop.run(
        "_", "worker", "start", "w1", script("cost 0.25", "say compiling the thing", "ask Go on? | yes,no")
    )
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="w1's ask")
    wait_for(lambda: worker(looop, "w1").get("cost"), what="w1's spend")
    lines = status(looop)
    fits(lines)
    assert lines[0].startswith(f"pulse: up (pid {pid}, for ")
    assert lines[1] == "needs a decision (1):"
    assert lines[2].startswith("  w1-1  from w1, ") and lines[2].endswith(": [yes|no] Go on?")
    title = next(i for i, line in enumerate(lines) if line.startswith("workers: "))
    assert lines[title] == "workers: 1 working (at most 10), 0 ended"
    assert lines[title + 1].split() == ["ID", "STATE", "AGE", "SPEND", "LAST", "SCREEN", "LINE"]
    row = lines[title + 2].split()
    assert row[:2] == ["w1", "asking"] and row[3] == "$0.25", row
    assert lines[-1].startswith("3 goals · ") and " · 0 claims" in lines[-1], lines[-1]
    assert len(lines) <= 10, lines  # the whole of it, not 30 lines


def test_status_with_20_workers_and_8_asks_fits_80x24_with_the_decisions_first(looop: Looop) -> None:
    looop.run("_", "state")
    long_line = "● \x1b[2J 漢字 editing src/" + "deep/" * 30 + "file.py"
    states = ["running", "idle", "asking", "blocked", "stalled"]
    for n in range(20):
        plant_worker(looop, f"w{n:02d}", states[n % 5], f"header\n{long_line} {n}\n", cost={"usd": n / 10})
    for n in range(8):
        prompt = f"Question {n}:\n" + "should I really deploy the whole thing now? " * 5
        plant_ask(looop, f"w{n:02d}-1", f"w{n:02d}", prompt, options=["yes", "no"], urgent=n == 5)
    lines = status(looop)
    fits(lines)
    text = "\n".join(lines)
    assert "\x1b" not in text and "^[[2J" in text  # a worker's screen does not drive the terminal
    # 8 asks (their workers are `asking`), then the blocked and stalled workers w08 w09 w13 w14 w18 w19
    assert lines[1] == "needs a decision (14):", text
    assert lines[2].startswith("  URGENT w05-1  from w05, ")
    asks = [line.split()[0] for line in lines[3:10]]
    assert asks == ["w00-1", "w01-1", "w02-1", "w03-1", "w04-1", "w06-1", "w07-1"]
    assert lines[3].endswith("…") and ": [yes|no] Question 0: should I really" in lines[3]
    assert lines[10].startswith("  w08  blocked at a dialog: ● ^[[2J 漢字 editing src/deep/")
    assert lines[11].startswith("  w09  stalled, quiet for 2m: ● ")
    assert lines[12].startswith("  w13  blocked at a dialog: ")
    assert lines[13] == "  +3 more (see `looop _ state`)"
    assert lines[14] == "workers: 20 working (at most 10), 0 ended"
    assert [line.split()[:2] for line in lines[16:21]] == [[f"w{n:02d}", "asking"] for n in range(5)]
    assert lines[21] == "  +15 more workers (15 working, 0 ended)"
    assert lines[22].startswith("2 goals · 0 sensors · 0 claims")
    narrow = status(looop, COLUMNS="50", LINES="12")
    fits(narrow, 50, 12)
    assert narrow[1] == "needs a decision (14):" and narrow[2].startswith("  URGENT w05-1")


def test_status_json_is_what_state_json_prints(looop: Looop) -> None:
    looop.run("_", "goal", "write", "g1", "x")
    plant_ask(looop, "w1-1", "w1", "Go?")
    assert looop.run("status", "--json").stdout == looop.run("_", "state", "--json").stdout
    assert looop.run("status", "--json", "--watch", code=2).stderr.startswith("looop: --json and --watch ")


class Reader:
    """Collects a process's stdout as it comes (a thread reads it)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.text = ""
        self.process = process
        assert process.stdout is not None
        self.thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream: object) -> None:
        while chunk := os.read(stream.fileno(), 65536):  # type: ignore[attr-defined]
            self.text += chunk.decode(errors="replace")

    def frames(self) -> list[list[str]]:
        """The frames drawn (each starts with the pulse's line), the blank line after each left out."""
        frames = ("\n" + self.text).split("\npulse: ")[1:]
        return [("pulse: " + frame).rstrip("\n").splitlines() for frame in frames]


@pytest.mark.parametrize("with_up", [True, False], ids=["up", "files-alone"])
def test_status_watch_redraws_when_a_goal_is_written_and_leaves_the_roots_cursor(
    looop: Looop, up: Up, with_up: bool
) -> None:
    if with_up:
        up.configure(interactive=AGENT)
        up.start()
    looop.run("_", "wait", "--json", "--timeout", "10")  # the root agent's cursor: now set
    cursor = looop.data / ".last-tick-hash"
    before = (cursor.read_text(), cursor.stat().st_mtime_ns)
    watcher = looop.popen("status", "--watch", COLUMNS="80", LINES="24")
    reader = Reader(watcher)
    wait_for(lambda: any(f[-1].startswith("2 goals") for f in reader.frames()), what="the first frame")
    blocked(watcher, "the watch to wait for a change", timers=True)
    looop.run("_", "goal", "write", "g9", "a new goal")
    wait_for(lambda: reader.frames()[-1][-1].startswith("3 goals"), what="a redraw with the new goal")
    assert all(len(frame) < 24 and all(len(line) <= 80 for line in frame) for frame in reader.frames())
    assert watcher.poll() is None, watcher.communicate()
    watcher.kill()
    watcher.wait()
    assert (cursor.read_text(), cursor.stat().st_mtime_ns) == before
    # so the root agent's next wait still sees the goal
    assert "g9" in orjson.loads(looop.run("_", "wait", "--json", "--timeout", "10").stdout)["goals"]


def test_status_watch_ends_on_ctrl_c_without_a_traceback(looop: Looop) -> None:
    watcher = looop.popen("status", "--watch", COLUMNS="80", LINES="24")
    reader = Reader(watcher)
    wait_for(lambda: reader.frames(), what="the first frame")
    watcher.send_signal(2)
    assert watcher.wait(timeout=30) in (0, 130)
    assert watcher.stderr is not None and "Traceback" not in watcher.stderr.read()


# a real terminal: tmux at 80x24 ------------------------------------------------------------------


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    """A private tmux server (its own socket): `[tmux, -S, socket]` to run its commands with."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    base = ["tmux", "-S", str(tmp_path / f"tmux-{uuid.uuid4().hex[:8]}")]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True, timeout=30, check=False)


def pane(tmux: list[str]) -> list[str]:
    done = subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", "s"], capture_output=True, text=True, timeout=30
    )
    return done.stdout.rstrip("\n").split("\n")


def test_status_and_its_watch_fit_a_real_80x24_terminal(looop: Looop, up: Up, tmux: list[str]) -> None:
    up.configure(interactive=AGENT, kill_grace="1s")
    up.start()
    looop.run("_", "worker", "start", "w1", script("say reading the code", "ask Ship it? | yes,no"))
    looop.run("_", "worker", "start", "w2", script("say running the tests: " + "ok " * 40, "sleep 300"))
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="w1's ask")
    wait_for(lambda: "running the tests" in worker(looop, "w2").get("screen_line", ""), what="w2's screen")
    env = [f"{k}={v}" for k, v in looop.env.items() if k in ("LOOOP_DATA_DIR", "HOME", "PATH")]
    shell = ["env", "-u", "COLUMNS", "-u", "LINES", *env, "sh"]
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "s", "-x", "80", "-y", "24", *shell], check=True, timeout=30
    )
    subprocess.run([*tmux, "send-keys", "-t", "s", f"{LOOOP} status; echo status-done", "Enter"], check=True)
    shown = wait_for(
        lambda: (p := pane(tmux)) and any(line == "status-done" for line in p) and p, what="status"
    )
    start = next(i for i, line in enumerate(shown) if line.startswith("pulse: up (pid "))
    assert shown[start + 1] == "needs a decision (1):" and "w1-1  from w1" in shown[start + 2]
    subprocess.run(
        [*tmux, "send-keys", "-t", "s", "clear; " + f"{LOOOP} status --watch", "Enter"], check=True
    )
    wait_for(lambda: pane(tmux)[0].startswith("pulse: up (pid "), what="the watch's first frame")
    looop.run("_", "goal", "write", "g9", "a new goal")
    frame = wait_for(
        lambda: (p := pane(tmux)) and any(line.startswith("3 goals") for line in p) and p, what="redraw"
    )
    assert frame[0].startswith("pulse: up (pid ") and frame[1] == "needs a decision (1):"
    rows = {line.split()[0]: line for line in frame if line.startswith(("  w1 ", "  w2 "))}
    assert rows["w1"].split()[1] == "asking" and rows["w2"].split()[1] == "running", frame
    assert len(rows["w2"]) == 80 and rows["w2"].endswith(" o…"), frame  # a full row, all of it
    subprocess.run([*tmux, "send-keys", "-t", "s", "C-c"], check=True)
    wait_for(lambda: any("looop: interrupted" in line for line in pane(tmux)), what="the watch to end")
    looop.run("_", "worker", "kill", "w2")
    ended(looop, "w2")
