"""The fleet: the workers' supervisor, and the one owner of their lifecycle.

It starts, queues, kills and tells workers for the socket server, which hands it each request
with its reply (`WorkerVerb`), and replies when the outcome is known: a start once its agent has
spawned, a kill once its worker's end is recorded. Nothing here waits: preparing a start (a git
worktree) runs in a thread that tells `_Prepared` back, each session actor tells `Spawned` and
`Finished`, and a start queued behind `max_workers` starts when a worker's `Finished` frees its
slot. Its session actors are temporary children: a worker that ends is never restarted.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka

from looop.actors.session import Finished, Refresh, SessionActor, SessionSpec, Spawned, Tell, Terminate
from looop.base.errors import Conflict, LooopError, NotFound
from looop.base.ids import check_text
from looop.daemon.channels import Reply, failure
from looop.daemon.launch import Launch, check_start, prepare_start, resumable, session_of
from looop.store import budget, journal
from looop.store.config import load_config
from looop.store.paths import DataDir
from looop.store.spend import spend_by_session
from looop.store.worker_records import WorkerRecord, live_record, read_record
from looop.supervisor import (
    ChildExited,
    ChildSpec,
    EventSink,
    Intensity,
    Link,
    Restart,
    Supervisor,
    tell_later,
    tell_quietly,
)
from looop.workers.profiles import check_message
from looop.world.protocol import WorkerKill, WorkerRequest, WorkerTell
from looop.world.state_shape import State

SPAWN_TIMEOUT = 30.0
ENDED_SLACK = 10.0  # past the kill grace, for the end to be recorded


@dataclass(frozen=True)
class WorkerVerb:
    """A worker verb from the socket (worker_start, worker_resume, worker_kill or worker_tell)
    and where its one reply goes."""

    request: WorkerRequest
    reply: Reply


@dataclass(frozen=True)
class RefreshWorkers:
    """Asked after each settled change, with the state as the root agent sees it: tell each live
    worker its pending ask, claims and spend, and enforce the budget. The reply names the
    workers with a new ask, each of which calls `rendered(id)` once its screen is written."""

    state: State
    rendered: Callable[[str], None]


@dataclass(frozen=True)
class LiveWorkers:
    """Asked: the ids of the workers that run, sorted."""


@dataclass(frozen=True)
class EndAll:
    """End every live worker at once (each gets its kill grace, then SIGKILL); `done` is set to
    their ids once every end is recorded. Sent by the pulse's main thread, which waits on `done`."""

    reason: str
    done: pykka.ThreadingFuture[list[str]]


@dataclass(frozen=True)
class _Prepared:
    start: _Start
    spec: SessionSpec | None
    error: Exception | None


@dataclass(frozen=True)
class _Due:
    """A reply's time is up (a spawn, a kill): `reply` hears `why` unless it heard already."""

    reply: Reply
    why: LooopError


@dataclass(frozen=True)
class _Start:
    session: str
    task: str
    request: Launch
    reply: Reply
    resumed: WorkerRecord | None


@dataclass
class _Worker:
    """A worker from its start request to its recorded end."""

    start: _Start
    spec: SessionSpec | None = None  # once prepared
    ref: pykka.ActorRef[Any] | None = None  # once its actor is started
    pid: int = 0  # once its agent has spawned
    killers: list[Reply] = field(default_factory=list)  # kills waiting for its end
    kill: Terminate | None = None  # asked for before its actor was started


class FleetActor(Supervisor):
    """The workers supervisor: its children are the session actors, by worker id."""

    def __init__(self, dd: DataDir, intensity: Intensity, events: EventSink, link: Link) -> None:
        super().__init__("workers", [], intensity, events, link=link)
        self.dd = dd
        self._workers: dict[str, _Worker] = {}  # starting or running
        self._queue: deque[_Start] = deque()  # waiting for a slot (--queue)
        self._parked: dict[str, _Prepared] = {}  # prepared while its ended namesake still stops
        self._asks_told: dict[str, str] = {}  # the pending ask each worker was last told
        self._ending: list[tuple[set[str], list[str], EndAll]] = []  # left, all, the request

    def handle(self, message: Any) -> Any:
        if isinstance(message, WorkerVerb):
            try:
                self._verb(message)
            except Exception as exc:
                message.reply(failure(exc, message.request["op"]))
        elif isinstance(message, _Prepared):
            self._prepared(message)
        elif isinstance(message, Spawned):
            self._spawned(message)
        elif isinstance(message, Finished):
            self._finished(
                message.session, message.final, None if message.swept is None else message.swept.count
            )
        elif isinstance(message, _Due):
            message.reply(failure(message.why, "worker"))
        elif isinstance(message, RefreshWorkers):
            return self._refresh(message.state, message.rendered)
        elif isinstance(message, LiveWorkers):
            return sorted(s for s, w in self._workers.items() if w.pid)
        elif isinstance(message, EndAll):
            self._end_all(message)
        else:
            return super().handle(message)
        return None

    def _child_exited(self, message: ChildExited) -> None:
        super()._child_exited(message)
        worker = self._workers.get(message.name)
        if worker is not None and worker.ref is not None and not worker.ref.is_alive():
            # it stopped without telling its end (a crash in its cleanup): the files say it
            self._finished(message.name, read_record(self.dd, message.name) or {}, None)
        parked = self._parked.pop(message.name, None)
        if parked is not None:
            self._prepared(parked)

    # verbs ------------------------------------------------------------------------------------

    def _verb(self, verb: WorkerVerb) -> None:
        request, session = verb.request, session_of(verb.request)
        if request["op"] == "worker_kill":
            self._kill(session, request, verb.reply)
        elif request["op"] == "worker_tell":
            self._tell(session, request, verb.reply)
        else:
            resumed = resumable(self.dd, session) if request["op"] == "worker_resume" else None
            self._launch(_Start(session, check_start(request), request, verb.reply, resumed))

    def _launch(self, start: _Start) -> None:
        """Reserve a slot and prepare the worker off this thread, or queue it (--queue)."""
        config = load_config(self.dd.config)
        if (spent := budget.fleet_spent(config.budget, spend_by_session(self.dd)[1])) is not None:
            raise Conflict(f"not started: {spent.describe()}; raise `budget` in the config to go on")
        session = start.session
        if (worker := self._workers.get(session)) is not None:
            raise Conflict(f"worker {session} is already running (pid {worker.pid or '?'})")
        if (record := live_record(self.dd, session)) is not None:
            raise Conflict(f"worker {session} is already running (pid {record.get('pid')})")
        if len(self._workers) >= config.max_workers:
            if not (start.request["op"] == "worker_start" and start.request["queue"]):
                raise Conflict(
                    f"{len(self._workers)} workers run, as many as `max_workers` allows: end one,"
                    " raise it, or use --queue"
                )
            if all(q.session != session for q in self._queue):
                journal.record(
                    self.dd, "worker start", session, f"queued: {config.max_workers} workers run", who="looop"
                )
            self._queue.append(start)
            return
        self._workers[session] = _Worker(start)
        me = self.actor_ref

        def prepare() -> None:
            try:
                spec = prepare_start(self.dd, session, start.task, config, start.request, start.resumed)
            except Exception as exc:  # told back: a bad request is no crash of the fleet
                me.tell(_Prepared(start, None, exc))
            else:
                me.tell(_Prepared(start, spec, None))

        threading.Thread(target=prepare, name=f"prepare-{session}", daemon=True).start()

    def _prepared(self, prepared: _Prepared) -> None:
        start, spec = prepared.start, prepared.spec
        worker = self._workers[start.session]
        if spec is None:
            start.reply(failure(prepared.error or LooopError("not prepared"), "worker_start"))
            self._finished(start.session, {"state": "never started"}, None)
            return
        if start.session in self._children:  # its ended namesake is still on its way out
            self._parked[start.session] = prepared
            return
        dd = self.dd
        child = ChildSpec(start.session, lambda link: SessionActor.start(dd, spec, link), Restart.TEMPORARY)
        worker.spec, worker.ref = spec, self._start(child)
        if worker.kill is not None:
            worker.ref.tell(worker.kill)
        late = LooopError(f"worker {start.session} did not start within {SPAWN_TIMEOUT:g}s")
        tell_later(self.actor_ref, SPAWN_TIMEOUT, _Due(start.reply, late))

    def _spawned(self, spawned: Spawned) -> None:
        worker = self._workers.get(spawned.session)
        if worker is None:
            return
        if spawned.error is not None:
            worker.start.reply(failure(LooopError(spawned.error), "worker_start"))
            return
        worker.pid = spawned.pid
        cwd = "" if worker.spec is None else str(worker.spec.cwd)
        worker.start.reply({"ok": True, "id": spawned.session, "pid": spawned.pid, "cwd": cwd})

    def _finished(self, session: str, final: Mapping[str, Any], processes: int | None) -> None:
        worker = self._workers.pop(session, None)
        if worker is None:
            return
        for killer in worker.killers:
            killer({**_ended(session, final), "processes": processes or 0})
        self._settle_ending()
        self._start_queued()

    def _start_queued(self) -> None:
        """Start what waits for a slot, in order, as long as there are slots."""
        while self._queue and len(self._workers) < load_config(self.dd.config).max_workers:
            start = self._queue.popleft()
            try:
                self._launch(start)
            except Exception as exc:
                start.reply(failure(exc, "worker_start"))

    def _kill(self, session: str, request: WorkerKill, reply: Reply) -> None:
        """`_ worker kill` (by the root agent) and `_ kill` (a worker ending itself)."""
        by = check_text(request.get("by") or "root", "the caller")
        reason = check_text(
            request.get("reason") or ("ended itself" if by == session else "killed"), "the reason"
        )
        worker = self._workers.get(session)
        queued = [start for start in self._queue if start.session == session]
        if worker is None and queued:
            for start in queued:
                self._queue.remove(start)
                start.reply(
                    failure(Conflict(f"worker {session} was taken off the queue: {reason}"), "worker_start")
                )
            journal.record(
                self.dd, "worker kill", session, f"by {by}: {reason} (taken off the queue)", who=by
            )
            reply({"ok": True, "id": session, "state": "taken off the queue"})
            return
        if worker is None:
            record = read_record(self.dd, session)
            if record is None:
                raise NotFound(f"no worker {session!r} (see `looop _ state`)")
            reply({"ok": True, "id": session, "already": True, "state": record.get("state")})
            return
        # a worker ending itself: its `_ kill` is one of the run's processes, and is spared (it
        # exits after the reply); everything else of the run has ended before the reply
        caller = request.get("caller", 0)
        spare = (caller,) if by == session and caller > 0 else ()
        worker.killers.append(reply)
        self._terminate(worker, Terminate(reason, by, spare))
        grace = request.get("grace") or load_config(self.dd.config).kill_grace
        late = LooopError(f"worker {session} did not end within {grace + ENDED_SLACK:g}s")
        tell_later(self.actor_ref, grace + ENDED_SLACK, _Due(reply, late))

    def _tell(self, session: str, request: WorkerTell, reply: Reply) -> None:
        """`_ worker tell`: the worker's session actor types the message and replies."""
        text, by = check_message(request["message"]), check_text(request["by"], "the caller")
        worker = self._workers.get(session)
        if (worker is not None and not worker.pid) or any(q.session == session for q in self._queue):
            raise Conflict(f"worker {session} is starting: tell it once `_ worker start` returned")
        if worker is None or worker.ref is None:
            record = read_record(self.dd, session)
            if record is None:
                raise NotFound(f"no worker {session!r} (see `looop status`)")
            raise Conflict(
                f"worker {session} has ended ({record.get('state')}): nothing to type into"
                f" (`_ worker resume {session}` starts it again with its conversation)"
            )
        try:
            worker.ref.tell(Tell(text, by, reply))
        except pykka.ActorDeadError:
            raise Conflict(f"worker {session} has ended: nothing to type into") from None

    # the world --------------------------------------------------------------------------------

    def _refresh(self, state: State, rendered: Callable[[str], None]) -> list[str]:
        live = {s: w.ref for s, w in self._workers.items() if w.ref is not None}
        if not live:
            return []
        pending = {w["id"]: w["pending_ask"] for w in state["workers"]}
        held: dict[str, list[str]] = {}
        for claim in state["claims"]:
            held.setdefault(claim["holder"], []).append(claim["resource"])
        spent = state["spend"]["by_session"]
        asked = []
        self._asks_told = {s: a for s, a in self._asks_told.items() if s in live}
        for session, ref in live.items():
            ask = pending.get(session)
            new = ask is not None and self._asks_told.get(session) != ask
            if new:
                self._asks_told[session] = str(ask)
            done = (lambda s=session: rendered(s)) if new else None
            try:
                ref.tell(Refresh(ask, tuple(held.get(session, ())), spent.get(session, {}), done))
            except pykka.ActorDeadError:  # ended meanwhile: no screen to wait for
                continue
            if new:
                asked.append(session)
        self._enforce_budget(live, state)
        return asked

    def _enforce_budget(self, live: dict[str, pykka.ActorRef[Any]], state: State) -> None:
        """Notify each new 80 %/100 % crossing once; stop a live worker past its own budget.
        A broken config counts as none (the state reports it)."""
        limits = state["limits"]["budget"]
        if not limits:
            return
        found = budget.crossings(limits, state["spend"]["by_session"], state["spend"]["total"])
        budget.announce(self.dd, found)
        for crossing in found:
            if crossing.level == 100 and crossing.scope in live:
                live[crossing.scope].tell(Terminate(f"over budget: {crossing.describe()}", "looop"))

    # the end ----------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Stopped or crashed: each worker is told why before its actor is stopped (and ends it)."""
        why = "looop is stopping" if self.failure is None else f"its fleet crashed: {self.failure!r}"
        for worker in self._workers.values():
            if worker.ref is not None:
                tell_quietly(worker.ref, Terminate(why, "looop"))
        super().cleanup()  # stops them: each records its end
        _refuse([*self._queue, *(w.start for w in self._workers.values() if not w.pid)], why)
        for session, worker in self._workers.items():
            for killer in worker.killers:
                killer(_ended(session, read_record(self.dd, session) or {}))

    def _end_all(self, end: EndAll) -> None:
        _refuse(self._queue, end.reason)
        self._queue.clear()
        for worker in self._workers.values():
            self._terminate(worker, Terminate(end.reason, "looop"))
        self._ending.append((set(self._workers), sorted(self._workers), end))
        self._settle_ending()

    def _settle_ending(self) -> None:
        for left, ids, end in self._ending:
            left &= self._workers.keys()
            if not left:
                end.done.set(ids)
        self._ending = [e for e in self._ending if e[0]]

    def _terminate(self, worker: _Worker, terminate: Terminate) -> None:
        """End the worker now, or as soon as its actor is started."""
        if worker.ref is None:
            worker.kill = worker.kill or terminate
        else:
            worker.ref.tell(terminate)


def _ended(session: str, final: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to a kill, from the worker's final record."""
    return {"ok": True, "id": session, "state": final.get("state"), "how": final.get("signal")}


def _refuse(starts: Iterable[_Start], why: str) -> None:
    """Answer starts that will not happen (queued, or still being prepared), saying why."""
    for start in starts:
        start.reply(failure(Conflict(f"worker {start.session} not started: {why}"), "worker_start"))
