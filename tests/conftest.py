"""Fixtures: every test drives the real `looop` executable on a temp data dir of its own."""

from __future__ import annotations

import contextlib
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
            [LOOOP, *args],
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
        return subprocess.Popen(
            [LOOOP, *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**self.env, **env},
        )

    def state(self) -> dict[str, Any]:
        value = orjson.loads(self.run("_", "state", "--json").stdout)
        assert isinstance(value, dict)
        return value

    def journal(self) -> str:
        return (self.data / "journal.md").read_text()


@pytest.fixture
def looop(tmp_path: Path) -> Iterator[Looop]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOOP_")}
    env.update(
        LOOOP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path / "home"), PYTHONDONTWRITEBYTECODE="1"
    )
    (tmp_path / "home").mkdir()
    yield Looop(tmp_path / "data", env)


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


def processes_with(marker: str) -> list[str]:
    """Command lines of running processes that mention `marker` (leftover check)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            line = stat.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker in line and alive(int(stat.parent.name)):
                found.append(line)
    return found


@pytest.fixture
def up(looop: Looop) -> Iterator[Up]:
    daemon = Up(looop)
    yield daemon
    daemon.close()
