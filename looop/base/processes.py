"""Child processes: draining their pipes without blocking, ending their whole group, knowing them
again by start time (pids are reused). Process facts (start times, zombies, other processes'
environments) come from psutil, so this runs wherever psutil does; nothing here reads /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # readers use this module's pid checks; only the daemon runs children
    import selectors
    import subprocess

    import psutil  # imported where used: a verb that finds its pid gone never loads it

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


TICKS = 100  # start times in hundredths of a second since boot: Linux's clock ticks, as recorded before


def _since_boot(process: psutil.Process) -> int | None:
    """When `process` started, in TICKS since boot; None once it is a zombie (it has ended).

    psutil gives seconds since the epoch (boot time plus the start); taking the boot time off again
    gives on Linux exactly the kernel's ticks, which a step of the wall clock never moves. Raises
    psutil.Error when the process is gone or unreadable."""
    import psutil

    with process.oneshot():
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return round((process.create_time() - psutil.boot_time()) * TICKS)


def _started(pid: int) -> int | None:
    """`pid`'s start time (TICKS since boot), None if gone or a zombie; raises psutil.AccessDenied."""
    import psutil

    if pid <= 0:
        return None
    try:
        return _since_boot(psutil.Process(pid))
    except psutil.NoSuchProcess:  # gone, or a zombie psutil would not read (ZombieProcess)
        return None


def start_time(pid: int) -> int | None:
    """The process's start time (TICKS since boot), or None if unknown, gone or a zombie."""
    import psutil

    try:
        return _started(pid)
    except psutil.AccessDenied:
        return None


def is_running(pid: int, recorded_start: int | None = None) -> bool:
    """True if `pid` is alive and, when its start time was recorded, still the same process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # gone: known without psutil, which costs a verb its import
    except PermissionError:
        pass
    import psutil

    try:
        now = _started(pid)
    except psutil.AccessDenied:
        return True  # this system hides its start from us: trust os.kill
    return now is not None and (recorded_start is None or now == recorded_start)


@dataclass(frozen=True)
class Proc:
    """One live process as a scan of the process table saw it."""

    pid: int
    group: int
    start: int
    env: Mapping[str, str]

    def has(self, marks: Mapping[str, str]) -> bool:
        """Does its environment hold every KEY=value in `marks` (an empty value: any)?"""
        return all(key in self.env and (not want or self.env[key] == want) for key, want in marks.items())

    def contradicts(self, marks: Mapping[str, str]) -> bool:
        """Does it carry one of the keys with another value (another run's process, say)?"""
        return any(want and key in self.env and self.env[key] != want for key, want in marks.items())


def _scan() -> list[Proc]:
    """Every live process whose environment this user may read. Where psutil cannot read
    environments at all, every process, with none: then only process groups tell."""
    import psutil

    reads_env = hasattr(psutil.Process, "environ")
    found: list[Proc] = []
    for pid in psutil.pids():
        try:
            process = psutil.Process(pid)
            env = process.environ() if reads_env else {}
            group = os.getpgid(pid)
            start = _since_boot(process)
        except (psutil.Error, OSError):
            continue
        if start is not None:  # a zombie has ended
            found.append(Proc(pid, group, start, env))
    return found


class _Census:
    """Scans shared by everyone who wants one at the same time: each caller gets a scan that
    began after it asked (so it sees every process forked before), and ending 200 workers at
    once reads the process table a few times, not 200 times over."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._scanning = False
        self._done = 0
        self._result: list[Proc] = []

    def fresh(self) -> list[Proc]:
        with self._cond:
            wanted = self._done + (2 if self._scanning else 1)  # not the one already under way
            while self._done < wanted:
                if self._scanning:
                    self._cond.wait()
                    continue
                self._scanning = True
                self._cond.release()
                try:
                    result = _scan()
                finally:
                    self._cond.acquire()
                    self._scanning = False
                    self._cond.notify_all()
                self._done += 1
                self._result = result
            return self._result


census = _Census()


def marked_processes(marks: dict[str, str]) -> dict[int, int]:
    """Live processes whose environment holds every `KEY=value` in `marks` (a key mapped to ""
    only has to be present), as {pid: process group}. This is how looop knows a process it did
    not start as its own (pids are reused; the marks it put in the environment are not).
    Processes whose environment this user may not read (other users') are skipped."""
    return {p.pid: p.group for p in census.fresh() if p.has(marks)}


KILL_WAIT = 5.0  # after the SIGKILL: how long to wait for the kernel to take them


@dataclass(frozen=True)
class Ended:
    """What `end_processes` ended: how many processes, and the strongest signal it needed."""

    count: int
    how: str | None  # "SIGTERM", "SIGKILL", or None when nothing was left
    left: int = 0  # still there when it gave up (not ours to kill, or stuck in the kernel)

    def describe(self) -> str:
        return f"ended {self.count} process{'' if self.count == 1 else 'es'}"


def end_processes(
    marks: dict[str, str], grace: float, group: int | None = None, spare: Collection[int] = ()
) -> Ended:
    """End every process holding `marks` in its environment, and every member of process group
    `group` (unless it carries the marks' keys with other values: a reused group number), except
    `spare` and this process: SIGTERM, then SIGKILL to those left after `grace`; return once none
    is left (or KILL_WAIT after the SIGKILL). The marks are inherited, so this
    finds what left the group or the session (setsid, a double fork, nohup). Newly forked
    processes are looked for again whenever the known ones are gone. Blocks: run it off an actor.

    Each process is known by pid and start time and signalled through a pidfd where the system
    has them (else by its start time just before the signal), so a pid reused in the meantime is
    never hit."""
    skip = {os.getpid(), *spare}
    signalled: dict[tuple[int, int], signal.Signals] = {}
    handles: dict[tuple[int, int], int | None] = {}
    kill_at = time.monotonic() + grace
    give_up = kill_at + KILL_WAIT
    live: list[Proc] = []
    try:
        while True:
            # while its leader is there (a zombie too), group `group` is surely the agent's: every
            # member is ended; after, a member with another run's marks is in a reused group
            leader_here = group is not None and _leads(group)
            live = [
                p
                for p in census.fresh()
                if p.pid not in skip
                and (p.has(marks) or (p.group == group and (leader_here or not p.contradicts(marks))))
            ]
            now = time.monotonic()
            if not live or now >= give_up:
                break
            sig = signal.SIGTERM if now < kill_at else signal.SIGKILL
            for proc in live:
                key = (proc.pid, proc.start)
                if signalled.get(key) != sig:
                    if key not in handles:
                        handles[key] = _open(proc)
                    _send(proc, handles[key], sig)
                    signalled[key] = sig
            _await_exits(live, handles, kill_at if sig == signal.SIGTERM else give_up)
    finally:
        for fd in handles.values():
            if fd is not None:
                os.close(fd)
    if not signalled:
        return Ended(0, None)
    how = "SIGKILL" if signal.SIGKILL in signalled.values() else "SIGTERM"
    return Ended(len(signalled), how, len(live))


def _leads(pid: int) -> bool:
    """Is process `pid` there, alive or a zombie, leading the process group of its own number?"""
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def await_gone(pids: Collection[int], timeout: float) -> None:
    """Wait until each of `pids` has exited, or `timeout`: a spared process gets its time."""
    live = [Proc(pid, 0, start, {}) for pid in pids if (start := start_time(pid)) is not None]
    handles = {(p.pid, p.start): _open(p) for p in live}
    try:
        _await_exits(live, handles, time.monotonic() + timeout)
    finally:
        for fd in handles.values():
            if fd is not None:
                os.close(fd)


def _open(proc: Proc) -> int | None:
    """A pidfd for `proc` if it is still the process the scan saw, else None."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return None
    if start_time(proc.pid) != proc.start:  # it ended before the pidfd was opened; the pid is someone else's
        os.close(fd)
        return None
    return fd


def _send(proc: Proc, fd: int | None, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        elif start_time(proc.pid) == proc.start:  # no pidfds here: check the start time just before
            os.kill(proc.pid, sig)


def _await_exits(live: list[Proc], handles: dict[tuple[int, int], int | None], until: float) -> None:
    """Until every process in `live` has ended, or `until` (monotonic)."""
    import select

    fds = {handles.get((p.pid, p.start)) for p in live}
    if None in fds:  # a process without a pidfd cannot be waited on: look again now and then
        while time.monotonic() < until and any(start_time(p.pid) == p.start for p in live):
            time.sleep(0.05)
        return
    poller = select.poll()
    waiting = {fd for fd in fds if fd is not None}
    for fd in waiting:
        poller.register(fd, select.POLLIN)
    while waiting and (remaining := until - time.monotonic()) > 0:
        for fd, _ in poller.poll(remaining * 1000):
            poller.unregister(fd)
            waiting.discard(fd)
