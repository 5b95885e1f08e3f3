"""`looop up` and `looop down` from the outside: the flock and the pid file that keep the pulse
single-instance, starting it detached and waiting on its readiness pipe, running it in the
foreground (`looop.daemon.pulse.Daemon`), and stopping it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

import fasteners

from looop.base.errors import Conflict, LooopError
from looop.base.files import Identity, identity_of, open_private, private_lock, read_json, write_json
from looop.base.processes import is_running, start_time
from looop.daemon.pulse import READY_TIMEOUT, STOP_TIMEOUT, Daemon, signal_ready
from looop.store.childenv import child_env
from looop.store.config import load_config
from looop.store.notices import HOOK_TIMEOUT, KILL_GRACE, hooks_off_thread
from looop.store.paths import DataDir
from looop.store.pulse_record import read_status
from looop.world import client, protocol

EXIT_SLACK = 10.0
NAME_WAIT = 5.0  # how long a losing `up` waits for the flock's holder to write its pid
HOOK_DRAIN = 2 * (HOOK_TIMEOUT + KILL_GRACE)  # at the end, for an escalation's hook and the last words'


def self_command() -> list[str]:
    """argv that runs this same looop (a single binary, or this interpreter)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "looop"]


class AlreadyUp(Conflict):
    exit_code = 5

    def __init__(self, pid: Any) -> None:
        super().__init__(f"already up (pid {pid})")
        self.pid = pid


def _lock(dd: DataDir) -> fasteners.InterProcessLock:
    return private_lock(dd.daemon_lock)


def _write_holder(dd: DataDir, lock: fasteners.InterProcessLock) -> Identity:
    """Say who holds the flock (right after taking it); return the held lock file's identity."""
    pid = os.getpid()
    write_json(dd.daemon_pid, {"pid": pid, "process_start": start_time(pid)})
    return identity_of(os.fstat(lock.lockfile.fileno()))


def _forget_holder(dd: DataDir) -> None:
    """Before the flock goes: the pid file names this process no more (unless it is not ours)."""
    with contextlib.suppress(OSError, LooopError):
        if read_json(dd.daemon_pid).get("pid") == os.getpid():
            os.unlink(dd.daemon_pid)


def _holder(dd: DataDir) -> int | None:
    """The pid the holder of the flock wrote, if that process is alive."""
    try:
        raw = read_json(dd.daemon_pid)
    except (OSError, LooopError):
        return None
    pid = raw.get("pid")
    return pid if isinstance(pid, int) and is_running(pid, raw.get("process_start")) else None


def _stopping(dd: DataDir, pid: int) -> bool:
    status = read_status(dd)
    return status.get("pid") == pid and status.get("status") in ("stopping", "down")


def running_holder(dd: DataDir, timeout: float = STOP_TIMEOUT) -> int | str | None:
    """The pid of the `up` process that holds the flock and is not stopping, or None once the
    flock is free. One that is stopping (`down` is at work) is waited for, up to `timeout`; one
    that just took the flock, until it names itself (NAME_WAIT; else the status's pid, or
    "unknown")."""
    began = time.monotonic()
    while is_up(dd):
        waited = time.monotonic() - began
        pid: int | str | None = _holder(dd)
        if pid is None and waited > NAME_WAIT:
            status = read_status(dd)  # an `up` older than the pid file, or a stranger
            pid = status["pid"] if status["running"] and status.get("status") != "stopping" else None
            if pid is None and waited > timeout:
                return "unknown"
        if isinstance(pid, str) or (pid is not None and not _stopping(dd, pid)):
            return pid
        if waited > timeout:
            raise Conflict(f"looop (pid {pid or 'unknown'}) is still stopping after {timeout:g}s")
        time.sleep(0.05)
    return None


def run_foreground(dd: DataDir) -> int:
    """`looop up --foreground`: take the flock, run until SIGTERM/SIGINT, release everything."""
    ready_env = os.environ.pop("LOOOP_READY_FD", None)
    ready = int(ready_env) if ready_env else None
    try:
        config = load_config(dd.config)
    except LooopError as exc:
        signal_ready(ready, f"error {exc.message}")
        raise
    os.umask(0o077)  # what up, its sensors and its workers create stays private to this user
    lock = _lock(dd)
    while not lock.acquire(blocking=False):
        try:
            pid = running_holder(dd)  # waits while the holder is stopping
        except LooopError as exc:
            signal_ready(ready, f"error {exc.message}")
            raise
        if pid is not None:
            signal_ready(ready, f"already {pid}")
            raise AlreadyUp(pid)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    daemon: Daemon | None = None
    try:
        daemon = Daemon(dd, config, _write_holder(dd, lock))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: daemon.stop_requested.set() if daemon else None)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with hooks_off_thread(HOOK_DRAIN):  # no actor waits for a notify hook
            return daemon.run(ready)
    finally:
        if daemon is None or daemon.home_lost() is None:  # else these paths may be another's now
            with contextlib.suppress(FileNotFoundError):
                os.unlink(protocol.socket_path(dd))
            _forget_holder(dd)
        lock.release()


def start_detached(dd: DataDir) -> int:
    """`looop up`: start the process in its own session with output to `up.log`; return its pid
    once it holds the flock and its tree is running."""
    load_config(dd.config)  # a bad config fails here, with its own exit code
    holder = running_holder(dd)  # waits while a `down` stops the one that holds the flock
    if holder is not None:
        raise AlreadyUp(holder)
    read_end, write_end = os.pipe()
    log_fd = open_private(dd.log, os.O_WRONLY | os.O_APPEND)  # a link planted there is refused
    os.fchmod(log_fd, 0o600)
    with os.fdopen(log_fd, "ab") as log_file:
        process = subprocess.Popen(
            [*self_command(), "up", "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(write_end,),
            env=child_env({"LOOOP_READY_FD": str(write_end), "LOOOP_DATA_DIR": str(dd.root)}),
            cwd=dd.root,
        )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready:
        line = _read_with_timeout(ready.fileno(), READY_TIMEOUT).decode(errors="replace").strip()
    kind, _, detail = line.partition(" ")
    if kind == "up":
        return int(detail)
    if kind == "already":
        raise AlreadyUp(detail)
    if kind == "error":
        raise LooopError(detail)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=1)
    raise LooopError(f"looop up failed to start (exit {process.poll()}); see {dd.log}")


def _read_with_timeout(fd: int, timeout: float) -> bytes:
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


def is_up(dd: DataDir) -> bool:
    """True while some process holds the flock."""
    lock = _lock(dd)
    if lock.acquire(blocking=False):
        lock.release()
        return False
    return True


def stop(dd: DataDir, timeout: float = STOP_TIMEOUT) -> str:
    """`looop down`: ask the process to stop, wait for it to release the flock and exit, say what
    stopped."""
    if not dd.daemon_lock.exists() or not is_up(dd):
        return "looop is not up"
    status = read_status(dd)
    pid = status.get("pid")
    reply = client.request(dd, {"op": "shutdown"}, timeout=10)
    if reply is None and isinstance(pid, int) and is_running(pid, status.get("process_start")):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_up(dd):
        if time.monotonic() > deadline:
            if isinstance(pid, int) and is_running(pid, status.get("process_start")):
                os.kill(pid, signal.SIGKILL)
            raise LooopError(f"looop (pid {pid}) did not stop within {timeout:g}s and was killed")
        time.sleep(0.05)
    # the flock goes a moment before the process: its interpreter still has to wind down
    while isinstance(pid, int) and is_running(pid, status.get("process_start")):
        if time.monotonic() > deadline + EXIT_SLACK:
            raise LooopError(f"looop (pid {pid}) released its lock but did not exit")
        time.sleep(0.02)
    stopped = ", ".join(reply.get("stopping", [])) if reply else "the process"
    return f"looop is down (pid {pid}): stopped {stopped}"
