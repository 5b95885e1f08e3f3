"""Running one sensor script: bounded in time and output, and every failure becomes a reading."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from looop.base.files import why_untrusted
from looop.base.processes import drain_and_end
from looop.store.childenv import child_env

OUTPUT_CAP = 64 * 1024
STDERR_CAP = 2048
KILL_GRACE = 1.0
SENSOR_MARK = "LOOOP_SENSOR"  # in every sensor's environment: recovery finds strays by it


@dataclass(frozen=True)
class SensorResult:
    """A reading and how it came about. The reading holds no timing, so that it only changes
    when what it senses changes (every change wakes the root agent)."""

    name: str
    reading: str
    status: str  # ok, failed, timeout, binary, refused, error
    exit_code: int | None
    duration: float


def _argv(path: Path) -> list[str]:
    """Run the script itself; one without a `#!` line runs with /bin/sh."""
    with path.open("rb") as handle:
        shebang = handle.read(2) == b"#!"
    return [str(path)] if shebang else ["/bin/sh", str(path)]


def _text(data: bytes) -> str | None:
    """Decoded output, or None when it is binary junk."""
    if b"\x00" in data:
        return None
    text = data.decode(errors="replace")
    if text.count("\ufffd") > max(8, len(text) // 20):
        return None
    return text


def run_sensor(
    path: Path,
    timeout: float,
    cwd: Path,
    env: dict[str, str] | None = None,
    started: Callable[[int], None] | None = None,
) -> SensorResult:
    """Run `path` in its own process group; kill the group at `timeout`. `started(pgid)` lets the
    caller end the group early (a shutdown)."""
    name = path.stem
    began = time.monotonic()

    def result(reading: str, status: str, code: int | None = None) -> SensorResult:
        return SensorResult(name, reading, status, code, time.monotonic() - began)

    try:
        if problem := why_untrusted(path.stat()):
            return result(
                f"[refused to run: the script is {problem}; rewrite it with `looop _ sensor write`]",
                "refused",
            )
        if not os.access(path, os.X_OK):
            return result("[not run: the script is not executable (chmod +x it to enable it)]", "disabled")
        argv = _argv(path)
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=child_env(env),
            start_new_session=True,
        )
    except FileNotFoundError:
        return result("[the sensor was removed]", "error")
    except OSError as exc:
        return result(f"[could not start: {exc.strerror}]", "error")
    if started is not None:
        started(process.pid)
    out = bytearray()
    err = bytearray()
    truncated = False
    assert process.stdout is not None
    out_fd = process.stdout.fileno()

    def sink(fd: int, chunk: bytes) -> None:
        nonlocal truncated
        target, cap = (out, OUTPUT_CAP) if fd == out_fd else (err, STDERR_CAP)
        room = max(cap - len(target), 0)
        truncated = truncated or (fd == out_fd and len(chunk) > room)
        target.extend(chunk[:room])

    # a sensor leaves nothing running behind it
    timed_out = drain_and_end(process, time.monotonic() + timeout, sink, KILL_GRACE)
    code = process.wait()
    text = _text(bytes(out))
    if text is None:
        return result(f"[binary output ({len(out)} bytes), not shown]", "binary", code)
    if truncated:
        text += f"\n[output cut at {OUTPUT_CAP // 1024} KiB]"
    if timed_out:
        return result(text + f"\n[killed: no result within {timeout:g}s]", "timeout", None)
    if code != 0:
        detail = (_text(bytes(err)) or "").strip().splitlines()[-1:] or [""]
        how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        return result(text + f"\n[{how}] {detail[0]}".rstrip(), "failed", code)
    return result(text, "ok", 0)
