"""The `up` process: the supervision tree, its lifetime, and `up`/`down` from the outside."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import fasteners
import pykka

from looop import control, journal
from looop.actors.mailbox import MailboxActor
from looop.actors.pulse import PulseActor, RunOne
from looop.config import Config, load_config
from looop.errors import Conflict, LooopError, NotRunning
from looop.fleet import Fleet
from looop.fsio import open_private, private_lock
from looop.paths import DataDir
from looop.procenv import child_env
from looop.procs import is_running
from looop.recovery import recover
from looop.supervisor import ChildSpec, Intensity, Link, Supervisor, children_of, tell_quietly
from looop.upstatus import StatusWriter, read_status

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
log = logging.getLogger("looop")


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


@dataclass
class Tree:
    """The live refs other actors look up (a restarted child gets a new ref)."""

    refs: dict[str, pykka.ActorRef[Any]] = field(default_factory=dict)

    def keep(self, name: str, ref: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        self.refs[name] = ref
        return ref

    def get(self, name: str) -> pykka.ActorRef[Any]:
        ref = self.refs.get(name)
        if ref is None or not ref.is_alive():
            raise pykka.ActorDeadError(f"{name} is not running")
        return ref


class Daemon:
    """One `up` process: holds the flock, runs the tree until told to stop or the tree gives up."""

    def __init__(self, dd: DataDir, config: Config) -> None:
        self.dd = dd
        self.config = config
        self.stop_requested = threading.Event()
        self.exit_code = 0
        self.tree = Tree()
        self.status = StatusWriter(dd, os.getpid())
        self.intensity = Intensity(config.max_restarts, config.restart_period)
        self.fleet = Fleet(dd, lambda: self.tree.get("workers"))

    def _escalated(self, why: str) -> None:
        self.exit_code = 1
        self.stop_requested.set()

    def _specs(self) -> list[ChildSpec]:
        dd, tree, events = self.dd, self.tree, self.status.supervisor_event
        handlers = {
            "shutdown": self._on_shutdown,
            "sensor": self._on_sensor,
            "worker_start": self.fleet.start,
            "worker_kill": self.fleet.kill,
            "worker_resume": self.fleet.resume,
        }

        def mailbox(link: Link) -> pykka.ActorRef[Any]:
            return tree.keep("mailbox", MailboxActor.start(dd, handlers, link, self.fleet.refresh))

        def sensors(link: Link) -> pykka.ActorRef[Any]:
            return tree.keep("sensors", Supervisor.start("sensors", [], self.intensity, events, link=link))

        def pulse(link: Link) -> pykka.ActorRef[Any]:
            ref = PulseActor.start(dd, self.config, lambda: tree.get("sensors"), self.status.update, link)
            return tree.keep("pulse", ref)

        def workers(link: Link) -> pykka.ActorRef[Any]:
            return tree.keep("workers", Supervisor.start("workers", [], self.intensity, events, link=link))

        # stopped in reverse: workers first, the mailbox last
        return [
            ChildSpec("mailbox", mailbox),
            ChildSpec("sensors", sensors),
            ChildSpec("pulse", pulse),
            ChildSpec("workers", workers),
        ]

    def _on_shutdown(self, _request: dict[str, Any]) -> dict[str, Any]:
        live = self.fleet.live_ids()
        self.stop_requested.set()
        stopping = ["pulse", "sensors", "mailbox"]
        if live:
            stopping.append(f"{len(live)} worker{'s' if len(live) != 1 else ''} ({', '.join(live)})")
        return {"ok": True, "pid": os.getpid(), "stopping": stopping}

    def _on_sensor(self, request: dict[str, Any]) -> dict[str, Any]:
        tell_quietly(self.tree.get("pulse"), RunOne(str(request["name"])))
        return {"ok": True}

    def run(self, ready: int | None) -> int:
        """Start the tree, report ready, block until stopped; return the process's exit code."""
        for corpse in recover(self.dd):
            log.warning("recovered worker %s: %s", corpse.session, corpse.how)
        top = Supervisor.start(
            "looop", self._specs(), self.intensity, self.status.supervisor_event, self._escalated
        )
        try:
            children_of(top, timeout=READY_TIMEOUT)  # answered once on_start has started every child
        except (pykka.ActorDeadError, pykka.Timeout):
            self.exit_code = 1
        else:
            self.status.update(status="up")
            journal.record(self.dd, "up", f"pid {os.getpid()}", "started", who="looop")
            _signal_ready(ready, f"up {os.getpid()}")
            while not self.stop_requested.wait(3600):
                pass
        self.status.update(status="stopping")
        self.fleet.terminate_all("looop is stopping", self.config.kill_grace)
        with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
            top.stop(block=True, timeout=STOP_TIMEOUT)
        pykka.ActorRegistry.stop_all(block=True, timeout=STOP_TIMEOUT)
        how = "stopped" if self.exit_code == 0 else "gave up after repeated crashes"
        self.status.update(status="down", stopped=time.time())
        journal.record(self.dd, "down", f"pid {os.getpid()}", how, who="looop")
        return self.exit_code


def _signal_ready(fd: int | None, message: str) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (message + "\n").encode())
        os.close(fd)


def _lock(dd: DataDir) -> fasteners.InterProcessLock:
    return private_lock(dd.daemon_lock)


def run_foreground(dd: DataDir) -> int:
    """`looop up --foreground`: take the flock, run until SIGTERM/SIGINT, release everything."""
    ready_env = os.environ.pop("LOOOP_READY_FD", None)
    ready = int(ready_env) if ready_env else None
    try:
        config = load_config(dd.config)
    except LooopError as exc:
        _signal_ready(ready, f"error {exc.message}")
        raise
    os.umask(0o077)  # what up, its sensors and its workers create stays private to this user
    lock = _lock(dd)
    if not lock.acquire(blocking=False):
        pid = read_status(dd).get("pid", "unknown")
        _signal_ready(ready, f"already {pid}")
        raise AlreadyUp(pid)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        daemon = Daemon(dd, config)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: daemon.stop_requested.set())
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        return daemon.run(ready)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control.socket_path(dd))
        lock.release()


def start_detached(dd: DataDir) -> int:
    """`looop up`: start the process in its own session with output to `up.log`; return its pid
    once it holds the flock and its tree is running."""
    load_config(dd.config)  # a bad config fails here, with its own exit code
    if is_up(dd):
        raise AlreadyUp(read_status(dd).get("pid", "unknown"))
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
    """`looop down`: ask the process to stop, wait for it to release the flock, say what stopped."""
    if not dd.daemon_lock.exists() or not is_up(dd):
        return "looop is not up"
    status = read_status(dd)
    pid = status.get("pid")
    reply = control.request(dd, {"op": "shutdown"}, timeout=10)
    if reply is None and isinstance(pid, int) and is_running(pid, status.get("process_start")):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_up(dd):
        if time.monotonic() > deadline:
            if isinstance(pid, int) and is_running(pid, status.get("process_start")):
                os.kill(pid, signal.SIGKILL)
            raise NotRunning(f"looop (pid {pid}) did not stop within {timeout:g}s and was killed")
        time.sleep(0.05)
    stopped = ", ".join(reply.get("stopping", [])) if reply else "the process"
    return f"looop is down (pid {pid}): stopped {stopped}"
