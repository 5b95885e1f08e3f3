"""Child processes: draining their pipes without blocking, ending their whole group, knowing them
again by start time (pids are reused)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # readers use this module's pid checks; only the daemon runs children
    import selectors
    import subprocess

LEADER_CHECK = 0.25


Sink = Callable[[int, bytes], None]


def drain(process: subprocess.Popen[bytes], deadline: float | None, sink: Sink) -> bool:
    """Feed `sink(fd, chunk)` from the child's stdout/stderr pipes until they close; True if time ran out.

    Stops when the leader has exited and the pipes went quiet, because a background grandchild
    may hold them open for ever.
    """
    import selectors

    pipes: list[IO[bytes]] = [p for p in (process.stdout, process.stderr) if p is not None]
    with selectors.DefaultSelector() as selector:
        for pipe in pipes:
            selector.register(pipe, selectors.EVENT_READ)
        open_pipes = len(pipes)
        while open_pipes:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return True
            events = selector.select(LEADER_CHECK if remaining is None else min(remaining, LEADER_CHECK))
            if not events:
                if process.poll() is not None:
                    # what the leader wrote just before it exited is still buffered: take it all
                    while open_pipes and (ready := selector.select(0)):
                        open_pipes -= _read_ready(selector, ready, sink)
                    return False
                continue
            open_pipes -= _read_ready(selector, events, sink)
    return False


def _read_ready(
    selector: selectors.BaseSelector, events: list[tuple[selectors.SelectorKey, int]], sink: Sink
) -> int:
    """Read each ready pipe once; unregister those at EOF and return how many closed."""
    closed = 0
    for key, _ in events:
        chunk = os.read(key.fd, 65536)
        if chunk:
            sink(key.fd, chunk)
        else:
            selector.unregister(key.fileobj)
            closed += 1
    return closed


def kill_group(pgid: int, grace: float, leader_gone: Callable[[float], bool]) -> str:
    """SIGTERM the process group, SIGKILL it after `grace`; say which signal ended it.

    `leader_gone(timeout)` waits up to `timeout` for the leader to end. Stragglers that outlive
    their leader are SIGKILLed too.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return "already gone"
    how = "SIGTERM"
    if not leader_gone(grace):
        how = "SIGKILL"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    leader_gone(5.0)
    return how


def drain_and_end(process: subprocess.Popen[bytes], deadline: float, sink: Sink, grace: float) -> bool:
    """Drain the child's output until its leader exits or `deadline`; then end its whole group
    (SIGTERM, SIGKILL after `grace` on a timeout; SIGKILL to what the leader left behind). The
    child must lead its own process group (start_new_session). True if time ran out."""
    import subprocess

    timed_out = drain(process, deadline, sink)
    if not timed_out:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out:
        kill_group(process.pid, grace, popen_waiter(process))
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return timed_out


def popen_waiter(process: subprocess.Popen[bytes]) -> Callable[[float], bool]:
    """`leader_gone` for a child we started."""

    import subprocess

    def gone(timeout: float) -> bool:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    return gone


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None if unknown or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: fields follow its last ')'
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None  # a zombie has ended
    return int(fields[19])


def is_running(pid: int, recorded_start: int | None = None) -> bool:
    """True if `pid` is alive and, when its start time was recorded, still the same process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = start_time(pid)
    if now is None:
        return not os.path.isdir("/proc")  # with /proc: gone or a zombie; without: trust os.kill
    return recorded_start is None or now == recorded_start


def marked_processes(marks: dict[str, str]) -> dict[int, int]:
    """Live processes whose environment holds every `KEY=value` in `marks` (a key mapped to ""
    only has to be present), as {pid: process group}. This is how looop knows a process it did
    not start as its own (pids are reused; the marks it put in the environment are not). Linux
    /proc; processes of other users are unreadable and skipped."""
    wanted = [(k.encode() + b"=", v.encode()) for k, v in marks.items()]
    found: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                env = handle.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        if all(any(v.startswith(k) and (not want or v[len(k) :] == want) for v in env) for k, want in wanted):
            fields = stat[stat.rindex(b")") + 2 :].split()
            if fields[0] != b"Z":
                found[int(entry)] = int(fields[2])
    return found
