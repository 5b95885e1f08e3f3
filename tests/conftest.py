"""Fixtures: every test drives the real `looop` executable on a temp data dir of its own."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

BIN_DIR = Path(sys.executable).parent
LOOOP = str(BIN_DIR / "looop") if (BIN_DIR / "looop").exists() else "looop"


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Looop:
    """Runs the real CLI against one data dir."""

    data: Path
    env: dict[str, str] = field(default_factory=dict)
    program: str = LOOOP  # the console script, or the single binary
    started: list[subprocess.Popen[str]] = field(default_factory=list)  # ended by the fixture

    def run(
        self,
        *args: str,
        input: str | None = None,
        code: int | None = 0,
        timeout: float = 30,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `looop ARGS`; assert the exit code unless `code` is None."""
        done = subprocess.run(
            [self.program, *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(env or {})},
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if code is not None:
            assert done.returncode == code, (
                f"looop {' '.join(args)} exited {done.returncode}, wanted {code}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}"
            )
        return done

    def popen(self, *args: str, stdin: int = subprocess.DEVNULL, **env: str) -> subprocess.Popen[str]:
        """Start `looop ARGS` in the background; whatever the test leaves running (a failed test
        leaves a `tail -f` or a blocked `_ ask`) is ended when the test ends."""
        process = subprocess.Popen(
            [self.program, *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**self.env, **env},
        )
        self.started.append(process)
        return process

    def end_started(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()

    def state(self) -> dict[str, Any]:
        value = orjson.loads(self.run("_", "state", "--json").stdout)
        assert isinstance(value, dict)
        return value

    def journal(self) -> str:
        return (self.data / "journal.md").read_text()


@pytest.fixture
def looop(tmp_path: Path) -> Iterator[Looop]:
    # LOOOP_WATCH passes through: `LOOOP_WATCH=poll pytest` runs every looop process on polling
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOOP_") or k == "LOOOP_WATCH"}
    env.update(
        LOOOP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path / "home"), PYTHONDONTWRITEBYTECODE="1"
    )
    (tmp_path / "home").mkdir()
    cli = Looop(tmp_path / "data", env)
    yield cli
    cli.end_started()


class Up:
    """Starts `looop up` on a Looop's data dir with a given config; always cleans up."""

    def __init__(self, looop: Looop) -> None:
        self.looop = looop
        self.pids: list[int] = []

    def configure(self, **config: object) -> None:
        self.looop.run("_", "state")
        settings = {"interactive": "pi", "interval": "60s", **config}
        (self.looop.data / "config.json").write_bytes(orjson.dumps(settings))

    def start(self, **env: str) -> int:
        out = self.looop.run("up", env=env).stdout
        assert out.startswith("looop is up (pid "), out
        pid = int(out.split("(pid ")[1].split(")")[0])
        self.pids.append(pid)
        return pid

    def pulse(self) -> dict[str, Any]:
        state = self.looop.state()
        pulse = state["pulse"]
        assert isinstance(pulse, dict)
        return pulse

    def wait_beats(self, count: int, timeout: float = 30) -> dict[str, Any]:
        return dict(
            wait_for(lambda: (p := self.pulse()).get("beats", 0) >= count and p, timeout, f"{count} beats")
        )

    def close(self) -> None:
        self.looop.run("down", code=None, timeout=90)
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if b") Z " in Path(f"/proc/{pid}/stat").read_bytes():
            return False
    return True


# Where a process sleeps while it waits on file descriptors (poll, select, epoll, a blocking read
# of the `up` process's socket), by kernel symbol, with the syscall numbers as a fallback where
# /proc/PID/wchan says only "0".
WAIT_CHANNELS = ("poll", "select", "epoll", "unix_stream_read")
WAIT_SYSCALLS = {"x86_64": {7, 23, 45, 232, 270, 271, 281}, "aarch64": {22, 72, 73, 207}}
TIMER_CHANNELS = ("nanosleep",)
TIMER_SYSCALLS = {"x86_64": {35, 230}, "aarch64": {101, 115}}


def asleep_waiting(pid: int, timers: bool = False) -> bool:
    """True while `pid` is asleep in the kernel waiting on file descriptors (or, with `timers`, on
    a clock, as a follower that polls does): the kernel's word that a waiter is blocked, where a
    delay would only be a guess."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        wchan = Path(f"/proc/{pid}/wchan").read_text()
        if state != "S":
            return False
        channels = WAIT_CHANNELS + (TIMER_CHANNELS if timers else ())
        if wchan not in ("", "0"):
            return any(name in wchan for name in channels)
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    machine = os.uname().machine
    numbers = WAIT_SYSCALLS.get(machine, set()) | (TIMER_SYSCALLS.get(machine, set()) if timers else set())
    return syscall.isdigit() and int(syscall) in numbers


def blocked(proc: subprocess.Popen[str], what: str = "the process to block", timers: bool = False) -> None:
    """Wait until `proc` is blocked waiting on its files or sockets (or a clock, with `timers`);
    fail at once if it ends first."""

    def check() -> bool:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"{what}: it ended first (exit {proc.returncode})\n{out}{err}")
        return asleep_waiting(proc.pid, timers)

    wait_for(check, what=what)


def unique_marker(what: str) -> str:
    """A word no other process on this machine has in its argv (suites may run side by side)."""
    return f"{what}-{os.getpid()}-{time.monotonic_ns()}"


def pids_with(marker: str) -> list[int]:
    """Pids of running processes whose command line mentions `marker`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker in line and alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
    return found


def processes_with(marker: str) -> list[str]:
    """Command lines of running processes that mention `marker` (leftover check)."""
    lines = []
    for pid in pids_with(marker):
        with contextlib.suppress(OSError):
            lines.append(
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
    return lines


def run_processes(run: str) -> list[int]:
    """Pids of live processes that carry a worker run's mark (`LOOOP_RUN_ID`) in their environment,
    wherever they went (another group, another session, reparented)."""
    wanted = f"LOOOP_RUN_ID={run}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if wanted in environ.read_bytes().split(b"\0") and alive(int(environ.parent.name)):
                found.append(int(environ.parent.name))
    return found


@contextlib.contextmanager
def small_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (root can mount one here; elsewhere the test is
    skipped); unmounted after."""
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; return it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


FAKE_AGENT = str(Path(__file__).with_name("fake_agent.py"))
AGENT = [sys.executable, FAKE_AGENT]


def posing_as(tmp_path: Path, name: str) -> str:
    """A bin dir holding `name`, which runs the fake agent; the PATH for `up` with it first."""
    bin_dir = tmp_path / f"bin-{name}"
    bin_dir.mkdir()
    wrapper = bin_dir / name
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_AGENT} "$@"\n')
    wrapper.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def script(*steps: str) -> str:
    """A worker prompt: a task line, then the fake agent's script."""
    return "Do the task below.\n" + "".join(f"FAKE: {step}\n" for step in steps)


def worker(looop: Looop, worker_id: str) -> dict[str, Any]:
    found = [w for w in looop.state()["workers"] if w["id"] == worker_id]
    return found[0] if found else {}


def ended(looop: Looop, worker_id: str) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (w := worker(looop, worker_id)) and not w["alive"] and w["state"] != "starting" and w,
            timeout=30,
            what=f"worker {worker_id} to end",
        )
    )


def screen(looop: Looop, worker_id: str) -> str:
    """The worker's screen file, or "" before its first render."""
    path = looop.data / "sessions" / worker_id / "screen.txt"
    return path.read_text() if path.exists() else ""


def report(looop: Looop, name: str) -> str:
    path = looop.data / "reports" / name
    return str(wait_for(lambda: path.exists() and path.read_text(), what=f"report {name}"))


@pytest.fixture
def up(looop: Looop) -> Iterator[Up]:
    daemon = Up(looop)
    yield daemon
    daemon.close()


# --- The real agent CLIs (tests marked `real_agent`): installed from npm once, into a cache dir

UNAVAILABLE_AGENTS: dict[str, str] = {}  # agent -> why it could not be installed (said at the end)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install the agent CLIs once, before the first test that needs them and outside its timeout
    (a first install takes about half a minute; later runs find them in the cache)."""
    if session.config.option.collectonly or not any(
        i.get_closest_marker("real_agent") for i in session.items
    ):
        return
    from tests import agent_clis

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for name, package in agent_clis.PACKAGES.items():
        if agent_clis.installed(package):
            continue
        if reporter is not None:
            reporter.write_line(f"installing {package.spec} into {package.directory} ...")
        try:
            agent_clis.install(package)
        except agent_clis.Unavailable as exc:
            UNAVAILABLE_AGENTS[name] = f"REAL AGENT CLI NOT TESTED: {exc}"


@pytest.fixture(scope="session")
def agent_cli() -> Callable[[str], Path]:
    """`agent_cli("claude")`: the pinned CLI's executable (installed by pytest_collection_finish, or
    here on first use); the test is skipped, with the reason repeated in the terminal summary,
    only when npm or its registry fails."""
    from tests import agent_clis

    def get(name: str) -> Path:
        if name in UNAVAILABLE_AGENTS:
            pytest.skip(UNAVAILABLE_AGENTS[name])
        try:
            return agent_clis.install(agent_clis.PACKAGES[name])
        except agent_clis.Unavailable as exc:
            UNAVAILABLE_AGENTS[name] = f"REAL AGENT CLI NOT TESTED: {exc}"
            pytest.skip(UNAVAILABLE_AGENTS[name])

    return get


@pytest.fixture
def model_server() -> Iterator[Any]:
    """A scripted model server on 127.0.0.1 (tests/model_server.py), closed after the test."""
    from tests.model_server import ModelServer

    server = ModelServer().start()
    yield server
    server.close()
    assert not server.errors, f"the model server saw bad requests: {server.errors}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, why in UNAVAILABLE_AGENTS.items():
        terminalreporter.write_sep("!", f"{name}: {why}", red=True, bold=True)
