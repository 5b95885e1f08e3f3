"""The pulse (the `up` process): its supervision tree and its lifetime (`looop.daemon.updown` starts
and stops it from the outside).

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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from looop.actors.beat import BeatActor, RunOne
from looop.actors.fleet import ENDED_SLACK, EndAll, FleetActor, LiveWorkers, RefreshWorkers, WorkerVerb
from looop.actors.server import ServerActor
from looop.base.background import Background
from looop.base.errors import StorageError
from looop.base.files import Identity, identity
from looop.daemon.channels import Reply
from looop.daemon.faults import fault_handlers
from looop.daemon.recovery import REAP_QUEUE, recover
from looop.store.config import Config
from looop.store.notices import notify, run_hook
from looop.store.paths import DataDir
from looop.store.pulse_record import StatusWriter
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
from looop.world.protocol import WORKER_OPS, Request, WorkerRequest
from looop.world.state_shape import State

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
HOME_CHECK = 1.0  # how often the main thread checks that the tree and the data dir are still there
FLEET_WAIT = 10.0  # for the fleet to answer a question (it never waits on anything itself)
log = logging.getLogger("looop")


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
        self._home: tuple[int, ...] = identity(dd.root)[:2]  # a dir's ctime changes with its entries
        self._lock_file: tuple[int, ...] = lock_file or identity(dd.daemon_lock)
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
                now = identity(path)[: len(known)]
            except (FileNotFoundError, NotADirectoryError):
                return f"the {what} {path} is gone"
            except OSError:
                continue  # cannot tell (say EACCES): not a reason to give up
            if now != known:
                return f"the {what} {path} was replaced"
        return None

    def _specs(self) -> list[ChildSpec]:
        dd, tree, events = self.dd, self.tree, self.status.supervisor_event
        handlers = {"shutdown": self._on_shutdown, "sensor": self._on_sensor}
        routes = dict.fromkeys(WORKER_OPS, self._to_fleet)
        faults = fault_handlers(tree.get)

        def server(link: Link) -> pykka.ActorRef[Any]:
            ref = ServerActor.start(dd, handlers, link, self._refresh_workers, routes, faults)
            return tree.keep("server", ref)

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

    def _to_fleet(self, request: WorkerRequest, reply: Reply) -> None:
        """Hand a worker verb to the fleet, which replies (never waited for here)."""
        try:
            self.tree.get("workers").tell(WorkerVerb(request, reply))
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

    def _on_shutdown(self, _request: Request) -> dict[str, Any]:
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

    def _on_sensor(self, request: Request) -> dict[str, Any]:
        assert request["op"] == "sensor"  # the server hands it only its own op
        tell_quietly(self.tree.get("beat"), RunOne(request["name"]))
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
            signal_ready(ready, f"up {os.getpid()}")
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


def signal_ready(fd: int | None, message: str) -> None:
    """Tell the `looop up` that started this process how it went, once (the readiness pipe)."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (message + "\n").encode())
        os.close(fd)
