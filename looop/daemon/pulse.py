"""The pulse (the `up` process): the supervision tree, its lifetime, and `up`/`down` from the outside.

`up` never lives on doing nothing: it runs until told to stop, or until it must give up, and then
exits 1 after saying why where it still can (up.log always, the journal and a notice when the
data dir takes writes, else the config's notify hook). It gives up when its tree's top supervisor
ends (repeated crashes, or any crash of the top), or when its data dir or lock file is deleted or
replaced. A write that fails (a full disk) is not a reason: status, journal and snapshot writes
are best effort and retried (see `looop.store.pulse_record.StatusWriter` and the pulse).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fasteners
import pykka

from looop.actors.beat import BeatActor, RunOne
from looop.actors.fleet import ENDED_SLACK, EndAll, FleetActor, LiveWorkers, RefreshWorkers, WorkerVerb
from looop.actors.server import ServerActor
from looop.base.background import Background
from looop.base.errors import Conflict, LooopError, StorageError
from looop.base.files import open_private, private_lock, read_json, write_json
from looop.base.processes import is_running, start_time
from looop.daemon.channels import Reply
from looop.daemon.faults import fault_handlers
from looop.daemon.recovery import REAP_QUEUE, recover
from looop.store.childenv import child_env
from looop.store.config import Config, load_config
from looop.store.notices import HOOK_TIMEOUT, KILL_GRACE, hooks_off_thread, notify, run_hook
from looop.store.paths import DataDir
from looop.store.pulse_record import StatusWriter, read_status
from looop.supervisor import (
    ChildSpec,
    Escalated,
    Intensity,
    Link,
    Supervisor,
    children_of,
    stop_child,
    tell_quietly,
)
from looop.world import client, protocol
from looop.world.state_shape import State

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
EXIT_SLACK = 10.0
HOME_CHECK = 1.0  # how often the main thread checks that the tree and the data dir are still there
NAME_WAIT = 5.0  # how long a losing `up` waits for the flock's holder to write its pid
FLEET_WAIT = 10.0  # for the fleet to answer a question (it never waits on anything itself)
WORKER_OPS = ("worker_start", "worker_resume", "worker_kill", "worker_tell")
HOOK_DRAIN = 2 * (HOOK_TIMEOUT + KILL_GRACE)  # at the end, for an escalation's hook and the last words'
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

    def __init__(self, dd: DataDir, config: Config, lock_file: Identity | None = None) -> None:
        self.dd = dd
        self.config = config
        self.stop_requested = threading.Event()
        self.exit_code = 0
        self.why: str | None = None  # why it gave up
        self._tell_human = False  # the reason to give up has not been notified yet
        self._home: tuple[int, ...] = _identity(dd.root)[:2]  # a dir's ctime changes with its entries
        self._lock_file: tuple[int, ...] = lock_file or _identity(dd.daemon_lock)
        self.tree = Tree()
        self.status = StatusWriter(dd, os.getpid())
        self.intensity = Intensity(config.max_restarts, config.restart_period)
        self.reaper = Background("reaper", REAP_QUEUE)  # the beat's, kept across its restarts

    def _escalated(self, error: BaseException) -> None:
        """The top supervisor ended by a crash (after stopping its children)."""
        if isinstance(error, Escalated):  # its escalate event has journaled and notified
            self._give_up(f"gave up after repeated crashes: {error}", tell=False)
        else:
            self._give_up(f"gave up: the supervision tree crashed: {error!r}")

    def _give_up(self, why: str, tell: bool = True) -> None:
        if self.why is None:
            log.error("looop (pid %s) %s", os.getpid(), why)
            self.why, self._tell_human, self.exit_code = why, tell, 1
        self.stop_requested.set()

    def home_lost(self) -> str | None:
        """Why the data dir this process serves is not there any more (deleted or replaced, or its
        lock file is), else None."""
        for what, path, known in (
            ("data dir", self.dd.root, self._home),
            ("lock file", self.dd.daemon_lock, self._lock_file),
        ):
            try:
                now = _identity(path)[: len(known)]
            except (FileNotFoundError, NotADirectoryError):
                return f"the {what} {path} is gone"
            except OSError:
                continue  # cannot tell (say EACCES): not a reason to give up
            if now != known:
                return f"the {what} {path} was replaced"
        return None

    def _specs(self) -> list[ChildSpec]:
        dd, tree, events = self.dd, self.tree, self.status.supervisor_event
        handlers = {"shutdown": self._on_shutdown, "sensor": self._on_sensor, **fault_handlers(tree.get)}
        routes = dict.fromkeys(WORKER_OPS, self._to_fleet)

        def server(link: Link) -> pykka.ActorRef[Any]:
            return tree.keep("server", ServerActor.start(dd, handlers, link, self._refresh_workers, routes))

        def sensors(link: Link) -> pykka.ActorRef[Any]:
            return tree.keep("sensors", Supervisor.start("sensors", [], self.intensity, events, link=link))

        def beat(link: Link) -> pykka.ActorRef[Any]:
            ref = BeatActor.start(
                dd, self.config, lambda: tree.get("sensors"), self.status.update, self.reaper, link
            )
            return tree.keep("beat", ref)

        def workers(link: Link) -> pykka.ActorRef[Any]:
            return tree.keep("workers", FleetActor.start(dd, self.intensity, events, link))

        def at_home(factory: Callable[[Link], pykka.ActorRef[Any]]) -> Callable[[Link], pykka.ActorRef[Any]]:
            def start(link: Link) -> pykka.ActorRef[Any]:
                lost = self.home_lost()  # never (re)start into a data dir that is not ours any more
                if lost is not None:
                    raise StorageError(lost)
                return factory(link)

            return start

        # stopped in reverse: workers first, the socket server last
        return [
            ChildSpec("server", at_home(server)),
            ChildSpec("sensors", at_home(sensors)),
            ChildSpec("beat", at_home(beat)),
            ChildSpec("workers", at_home(workers)),
        ]

    def _to_fleet(self, request: dict[str, Any], reply: Reply) -> None:
        """Hand a worker verb to the fleet, which replies (never waited for here)."""
        try:
            self.tree.get("workers").tell(WorkerVerb(str(request["op"]), request, reply))
        except pykka.ActorDeadError:
            reply({"ok": False, "error": "looop's fleet is restarting: try again in a moment", "code": 1})

    def _refresh_workers(self, state: State, rendered: Callable[[str], None]) -> list[str]:
        """After a settled change (in the socket server's look thread): the fleet tells each
        worker its news and names those with a new ask, whose screens are being written."""
        try:
            asked = self.tree.get("workers").ask(RefreshWorkers(state, rendered), timeout=FLEET_WAIT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return []
        return list(asked)

    def _on_shutdown(self, _request: dict[str, Any]) -> dict[str, Any]:
        try:
            live = list(self.tree.get("workers").ask(LiveWorkers(), timeout=FLEET_WAIT))
        except (pykka.ActorDeadError, pykka.Timeout):
            live = []
        self.status.update(status="stopping")  # before `down` hears back: an `up` now waits for us
        self.stop_requested.set()
        stopping = ["the beat", "the sensors", "the socket server"]
        if live:
            stopping.append(f"{len(live)} worker{'s' if len(live) != 1 else ''} ({', '.join(live)})")
        return {"ok": True, "pid": os.getpid(), "stopping": stopping}

    def _on_sensor(self, request: dict[str, Any]) -> dict[str, Any]:
        tell_quietly(self.tree.get("beat"), RunOne(str(request["name"])))
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
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            self._give_up(f"gave up: the supervision tree did not start ({exc!r})")
        else:
            self.status.update(status="up")
            self.status.journal("up", f"pid {os.getpid()}", "started")
            _signal_ready(ready, f"up {os.getpid()}")
            while not self.stop_requested.wait(HOME_CHECK):
                lost = self.home_lost()
                if lost is not None:
                    self._give_up(f"gave up: {lost}")
                elif not top.is_alive():  # ended without a crash it could report (pykka's stop_all)
                    self._give_up("gave up: the supervision tree stopped")
        lost = self.home_lost()  # then nothing more is written there: it may be someone else's now
        if lost is None:
            self.status.update(status="stopping")
        else:  # first what writes there by itself (beats, the socket), then the workers
            for name in ("beat", "sensors", "server"):
                with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                    stop_child(top, name)
        try:
            done: pykka.ThreadingFuture[list[str]] = pykka.ThreadingFuture()
            self.tree.get("workers").tell(EndAll("looop is stopping", done))
            done.get(timeout=self.config.kill_grace + ENDED_SLACK)
        except (pykka.ActorDeadError, pykka.Timeout):
            pass  # stopping the tree ends whatever is left, each session actor its worker
        except Exception:
            log.exception("could not end the workers")
        with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
            top.stop(block=True, timeout=STOP_TIMEOUT)
        pykka.ActorRegistry.stop_all(block=True, timeout=STOP_TIMEOUT)
        how = self.why or "stopped"
        if lost is None:
            self.status.update(status="down", stopped=time.time())
            self.status.journal("down", f"pid {os.getpid()}", how)
        if self._tell_human:
            self._last_words(f"looop (pid {os.getpid()}) {how}", lost is None)
        log.warning("looop (pid %s) is down: %s", os.getpid(), how)
        return self.exit_code

    def _last_words(self, message: str, home: bool) -> None:
        """Tell the human why `up` gave up: a notice when the data dir takes one, else the hook
        alone (from the config read at start: the file may be gone). Failures only get logged."""
        if home:
            try:
                notify(self.dd, message, who="looop")
                return
            except Exception as exc:
                log.warning("could not record the notice %r: %s", message, exc)
        if self.config.notify:
            error = run_hook(self.config.notify, message)
            if error:
                log.warning("the notify hook failed: %s", error)


def _signal_ready(fd: int | None, message: str) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (message + "\n").encode())
        os.close(fd)


def _lock(dd: DataDir) -> fasteners.InterProcessLock:
    return private_lock(dd.daemon_lock)


Identity = tuple[int, int, int]
"""What tells a file from another made at the same path: device, inode (which a new file may
reuse at once) and its change time (which nothing changes on a lock file after it is made)."""


def _identity(path: Path) -> Identity:
    return _identity_of(os.stat(path))


def _identity_of(info: os.stat_result) -> Identity:
    return info.st_dev, info.st_ino, info.st_ctime_ns


def _write_holder(dd: DataDir, lock: fasteners.InterProcessLock) -> Identity:
    """Say who holds the flock (right after taking it); return the held lock file's identity."""
    pid = os.getpid()
    write_json(dd.daemon_pid, {"pid": pid, "process_start": start_time(pid)})
    return _identity_of(os.fstat(lock.lockfile.fileno()))


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
        _signal_ready(ready, f"error {exc.message}")
        raise
    os.umask(0o077)  # what up, its sensors and its workers create stays private to this user
    lock = _lock(dd)
    while not lock.acquire(blocking=False):
        try:
            pid = running_holder(dd)  # waits while the holder is stopping
        except LooopError as exc:
            _signal_ready(ready, f"error {exc.message}")
            raise
        if pid is not None:
            _signal_ready(ready, f"already {pid}")
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
