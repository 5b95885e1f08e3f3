"""`_ run`: one ad-hoc command, its output streamed through, its outcome journaled."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from typing import BinaryIO

from looop import journal
from looop.errors import InvalidInput, TimedOut
from looop.paths import DataDir
from looop.procenv import child_env

TAIL_BYTES = 4096
KILL_GRACE = 3.0
LEADER_CHECK = 0.25


def command_argv(words: list[str]) -> list[str]:
    """One word is a shell command line (pipes and all); several are an argv run as is."""
    if not words or not any(w.strip() for w in words):
        raise InvalidInput("no command given")
    return ["/bin/sh", "-c", words[0]] if len(words) == 1 else list(words)


def kill_group(pgid: int, grace: float, waiter: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if the leader outlives `grace`."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            waiter.wait(timeout=wait)
            if sig == signal.SIGTERM:
                os.killpg(pgid, signal.SIGKILL)  # stragglers that outlived their leader
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _pump(process: subprocess.Popen[bytes], out: BinaryIO, deadline: float | None) -> tuple[bytes, bool]:
    """Copy the child's output to `out` until it closes; return the output's tail and whether time ran out."""
    assert process.stdout is not None
    tail: deque[bytes] = deque()
    size = 0
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return b"".join(tail), True
            if not selector.select(LEADER_CHECK if remaining is None else min(remaining, LEADER_CHECK)):
                if process.poll() is not None:
                    return b"".join(tail), False  # a background child may hold the pipe open for ever
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                return b"".join(tail), False
            out.write(chunk)
            out.flush()
            tail.append(chunk)
            size += len(chunk)
            while size - len(tail[0]) >= TAIL_BYTES:
                size -= len(tail.popleft())


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
    tail, timed_out = _pump(process, sys.stdout.buffer, deadline)
    if timed_out:
        kill_group(process.pid, KILL_GRACE, process)
    status = process.wait()
    code = status if status >= 0 else 128 - status
    output = journal.one_line("\n".join(tail.decode(errors="replace").splitlines()[-3:]), 200)
    result = f"timed out after {timeout:g}s, killed" if timed_out else f"exit {code}"
    journal.record(dd, "run", shown, result + (f" — output: {output}" if output else ""), reason)
    if timed_out:
        raise TimedOut(f"command timed out after {timeout:g}s and was killed")
    return code
