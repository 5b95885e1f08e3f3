"""`_ run`: one ad-hoc command, its output streamed through, its outcome journaled."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

from looop.base.errors import InvalidInput, TimedOut
from looop.base.processes import drain, kill_group, popen_waiter
from looop.store import journal
from looop.store.childenv import child_env
from looop.store.paths import DataDir

TAIL_BYTES = 4096
KILL_GRACE = 3.0


def command_argv(words: list[str]) -> list[str]:
    """One word is a shell command line (pipes and all); several are an argv run as is."""
    if not words or not any(w.strip() for w in words):
        raise InvalidInput("no command given")
    return ["/bin/sh", "-c", words[0]] if len(words) == 1 else list(words)


def _tee_tail(out: BinaryIO) -> tuple[Callable[[int, bytes], None], deque[bytes]]:
    """A drain sink that copies output through and keeps its last TAIL_BYTES."""
    tail: deque[bytes] = deque()
    size = [0]

    def sink(_fd: int, chunk: bytes) -> None:
        out.write(chunk)
        out.flush()
        tail.append(chunk)
        size[0] += len(chunk)
        while size[0] - len(tail[0]) >= TAIL_BYTES:
            size[0] -= len(tail.popleft())

    return sink, tail


def run_command(dd: DataDir, words: list[str], reason: str, timeout: float | None) -> int:
    """Run the command with stdin closed, stream its output, journal it; return its exit status."""
    argv = command_argv(words)
    shown = words[0] if len(words) == 1 else " ".join(words)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child_env(),
        )
    except OSError as exc:
        journal.record(dd, "run", shown, f"could not start: {exc.strerror}", reason)
        raise InvalidInput(f"cannot run {argv[0]!r}: {exc.strerror}") from None
    sink, chunks = _tee_tail(sys.stdout.buffer)
    timed_out = drain(process, deadline, sink)
    if timed_out:
        kill_group(process.pid, KILL_GRACE, popen_waiter(process))
    status = process.wait()
    tail = b"".join(chunks)
    code = status if status >= 0 else 128 - status
    output = journal.one_line("\n".join(tail.decode(errors="replace").splitlines()[-3:]), 200)
    result = f"timed out after {timeout:g}s, killed" if timed_out else f"exit {code}"
    journal.record(dd, "run", shown, result + (f" — output: {output}" if output else ""), reason)
    if timed_out:
        raise TimedOut(f"command timed out after {timeout:g}s and was killed")
    return code
