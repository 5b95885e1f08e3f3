"""The `up` process's side of the worker verbs: start, kill, refresh and stop session actors.

Its methods run in the socket server's request threads and in the server actor itself; they
`tell` session actors and wait on their handles' events, so a slow worker never blocks the server
(which only `tell`s: a worker with a new ask tells it back when its screen is written).
"""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import pykka

from looop.actors.session import (
    Refresh,
    SessionActor,
    SessionHandle,
    SessionSpec,
    Tell,
    Terminate,
    Told,
)
from looop.base.errors import ConfigError, Conflict, InvalidInput, LooopError, NotFound
from looop.base.files import atomic_write, ensure_dir, replace, write_json
from looop.base.ids import check_session_id, check_text
from looop.store import budget, journal
from looop.store.childenv import env_problem, looop_bin, worker_env
from looop.store.config import Config, load_config
from looop.store.notices import notify
from looop.store.paths import DataDir
from looop.store.spend import spend_by_session
from looop.store.worker_records import live_record, read_record
from looop.supervisor import ChildSpec, Link, Restart, start_child, tell_quietly
from looop.workers.contract import RESUMED, WorkerFiles, agent_argv, worker_prompt
from looop.workers.profiles import check_message, filled_settings, profile_of
from looop.workers.sandbox import Sandbox, prepare

SPAWN_TIMEOUT = 30.0
QUEUE_POLL = 0.25
ENDED_SLACK = 10.0
TELL_WAIT = 10.0  # for the session actor to take a told message (it never waits on the agent)
TOLD_WAIT = 30.0  # for its typist to submit it: `_ worker tell` replies "still queued" after


class Fleet:
    """The live session actors by worker id, and the verbs that act on them."""

    def __init__(self, dd: DataDir, supervisor: Callable[[], pykka.ActorRef[Any]]) -> None:
        self.dd = dd
        self._supervisor = supervisor
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[pykka.ActorRef[Any], SessionHandle]] = {}
        self._starting: set[str] = set()
        self._asks_told: dict[str, str] = {}  # the pending ask each session was last told (server only)

    def live_ids(self) -> list[str]:
        with self._lock:
            return sorted(s for s, (_, h) in self._sessions.items() if not h.ended.is_set())

    # verbs ------------------------------------------------------------------------------------

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        """`_ worker start`: prepare the sandbox and prompt, start the actor, wait for the spawn."""
        return self._launch(request, resumed=None)

    def resume(self, request: dict[str, Any]) -> dict[str, Any]:
        """`_ worker resume`: start an ended worker again in its sandbox, with its conversation."""
        session = check_session_id(str(request.get("id", "")), "worker id")
        record = read_record(self.dd, session)
        if record is None:
            raise NotFound(f"no worker {session!r} (see `looop status`)")
        if not record.get("agent_session"):
            raise Conflict(f"worker {session} has no agent session id to resume")
        config = load_config(self.dd.config)
        if profile_of(config.interactive, config.resume, config.profiles).resume is None:
            raise InvalidInput("the config has no `resume` command (see `looop --help`)")
        return self._launch(request, resumed=record)

    def _launch(self, request: dict[str, Any], resumed: dict[str, Any] | None) -> dict[str, Any]:
        session = check_session_id(str(request.get("id", "")), "worker id")
        # a request may come from any client: refuse what a worker's argv or files cannot carry
        task = check_text(str(request.get("prompt", "")), "the prompt")
        for key in ("cwd", "worktree"):
            if request.get(key) is not None:
                check_text(str(request[key]), f"--{key}")
        _check_env(request.get("env"))
        config = load_config(self.dd.config)
        if (spent := budget.fleet_spent(config.budget, spend_by_session(self.dd)[1])) is not None:
            raise Conflict(f"not started: {spent.describe()}; raise `budget` in the config to go on")
        queued = False
        while (previous := self._reserve(session, config.max_workers, bool(request.get("queue")))) is False:
            if not queued:
                queued = True
                journal.record(
                    self.dd, "worker start", session, f"queued: {config.max_workers} workers run", who="looop"
                )
            time.sleep(QUEUE_POLL)
        try:
            if previous is not None:
                previous[0].actor_stopped.wait(ENDED_SLACK)  # the ended actor is still on its way out
            spec = self._prepare(session, task, config, request, resumed)  # may run git: not under the lock
            handle = SessionHandle()
            child = ChildSpec(
                session, lambda link: _start_actor(self.dd, spec, handle, link), Restart.TEMPORARY
            )
            ref = start_child(self._supervisor(), child)
            with self._lock:
                self._sessions[session] = (ref, handle)
        finally:
            with self._lock:
                self._starting.discard(session)
        if not handle.spawned.wait(SPAWN_TIMEOUT):
            raise LooopError(f"worker {session} did not start within {SPAWN_TIMEOUT:g}s")
        if handle.error:
            raise LooopError(handle.error)
        return {"ok": True, "id": session, "pid": handle.pid, "cwd": str(spec.cwd)}

    def _reserve(
        self, session: str, cap: int, queue: bool
    ) -> tuple[pykka.ActorRef[Any], SessionHandle] | Literal[False] | None:
        """Count `session` in as starting, in one step with the checks: `Conflict` if it runs or
        starts already, or if `cap` workers run without --queue; False to wait for a slot.
        Returns its previous, ended session (None if none)."""
        with self._lock:  # held briefly: the server's refresh takes it too
            previous = self._sessions.get(session)
            if session in self._starting or (previous is not None and not previous[1].ended.is_set()):
                pid = previous[1].pid if previous else "?"
                raise Conflict(f"worker {session} is already running (pid {pid})")
            if (record := live_record(self.dd, session)) is not None:
                raise Conflict(f"worker {session} is already running (pid {record.get('pid')})")
            running = sum(not h.ended.is_set() for _, h in self._sessions.values()) + len(self._starting)
            if running < cap:
                self._starting.add(session)
                return previous
        if not queue:
            raise Conflict(
                f"{running} workers run, as many as `max_workers` allows: end one, raise it, or use --queue"
            )
        return False

    def _prepare(
        self, session: str, task: str, config: Config, request: dict[str, Any], resumed: dict[str, Any] | None
    ) -> SessionSpec:
        """Everything that can fail on bad input happens here, before any actor exists."""
        dd = self.dd
        try:
            profile = profile_of(config.interactive, config.resume, config.profiles)
        except ConfigError as exc:
            raise ConfigError(f"{dd.config}: {exc.message}") from None
        if resumed is None:
            command = profile.command
            ensure_dir(dd.session(session))
            cwd, repo = request.get("cwd"), request.get("worktree")
            sandbox = prepare(
                dd, session, None if cwd is None else str(cwd), None if repo is None else str(repo)
            )
            agent_session = str(uuid.uuid4())
        else:
            command = profile.resume or profile.command
            sandbox = Sandbox.restore(resumed.get("sandbox") or {"cwd": resumed.get("cwd")})
            agent_session = str(resumed["agent_session"])
            how = f"{resumed.get('state')}: {resumed.get('end_reason')}"
            task = RESUMED.format(how=how) + (f"\n{task.strip()}\n" if task.strip() else "")
        extra = {**(config.env or {}), **(request.get("env") or {})}  # --env over the config's
        if resumed is not None:
            missing = profile.missing_conversation({**os.environ, **extra}, sandbox.cwd, agent_session)
            if missing is not None:
                raise Conflict(
                    f"worker {session} has no conversation to resume ({missing} does not exist: its"
                    " agent ended before it began one); start it again with `_ worker start`"
                )
        looop = looop_bin(dd)
        prompt = worker_prompt(session, task, dd.root, dd.reports, looop, sandbox.note())
        files = WorkerFiles(
            dd.prompt(session), dd.contract(session), dd.agent_settings(session), dd.session(session)
        )
        argv = sandbox.wrapper + agent_argv(command, prompt, files, agent_session)
        atomic_write(dd.prompt(session), prompt.full.encode())
        atomic_write(dd.contract(session), prompt.contract.encode())
        settings = filled_settings(profile, looop, session)
        if settings is not None:
            write_json(dd.agent_settings(session), settings)
        run = uuid.uuid4().hex  # this run's own: an ask of an earlier run of the id is not its
        if read_record(dd, session) is not None:
            transcript, previous = dd.transcript(session), dd.previous_transcript(session)
            if transcript.exists():
                replace(transcript, previous)
            journal.record(
                dd,
                "worker start",
                session,
                ("resuming it" if resumed else "reusing an ended session's id")
                + f"; its previous transcript is now {previous.name}",
                who="looop",
            )
        return SessionSpec(
            session,
            argv,
            sandbox.cwd,
            worker_env(dd, session, run, extra),
            sandbox.public(),
            config.idle_after,
            config.kill_grace,
            config.stall_after,
            agent_session,
            run,
            profile,
            config.ask_deadline,
            tuple(extra),
        )

    def kill(self, request: dict[str, Any]) -> dict[str, Any]:
        """`_ worker kill` (by the root agent) and `_ kill` (a worker ending itself)."""
        session = check_session_id(str(request.get("id", "")), "worker id")
        by = check_text(str(request.get("by") or "root"), "the caller")
        reason = check_text(
            str(request.get("reason") or ("ended itself" if by == session else "killed")), "the reason"
        )
        with self._lock:
            entry = self._sessions.get(session)
        if entry is None or entry[1].ended.is_set():
            record = read_record(self.dd, session)
            if record is None:
                raise NotFound(f"no worker {session!r} (see `looop _ state`)")
            return {"ok": True, "id": session, "already": True, "state": record.get("state")}
        ref, handle = entry
        # a worker ending itself: its `_ kill` is one of the run's processes, and is spared (it
        # exits after the reply); everything else of the run has ended before the reply
        caller = request.get("caller")
        spare = (caller,) if by == session and isinstance(caller, int) and caller > 0 else ()
        tell_quietly(ref, Terminate(reason, by, spare))
        grace = float(request.get("grace") or 0) or load_config(self.dd.config).kill_grace
        if not handle.ended.wait(grace + ENDED_SLACK):
            raise LooopError(f"worker {session} did not end within {grace + ENDED_SLACK:g}s")
        final = handle.final
        swept = handle.swept
        return {
            "ok": True,
            "id": session,
            "state": final.get("state"),
            "how": final.get("signal"),
            "processes": 0 if swept is None else swept.count,
        }

    def tell(self, request: dict[str, Any]) -> dict[str, Any]:
        """`_ worker tell`: have a live worker's session actor type a message into its agent."""
        session = check_session_id(str(request.get("id", "")), "worker id")
        text = check_message(str(request.get("message", "")))
        by = check_text(str(request.get("by") or "root"), "the caller")
        with self._lock:
            entry = self._sessions.get(session)
            starting = session in self._starting
        if starting:
            raise Conflict(f"worker {session} is starting: tell it once `_ worker start` returned")
        if entry is None or entry[1].ended.is_set():
            record = read_record(self.dd, session)
            if record is None:
                raise NotFound(f"no worker {session!r} (see `looop status`)")
            raise Conflict(
                f"worker {session} has ended ({record.get('state')}): nothing to type into"
                f" (`_ worker resume {session}` starts it again with its conversation)"
            )
        try:
            told = entry[0].ask(Tell(text, by), block=False).get(timeout=TELL_WAIT)
        except pykka.ActorDeadError:
            raise Conflict(f"worker {session} has ended: nothing to type into") from None
        except pykka.Timeout:
            raise LooopError(
                f"worker {session}'s session did not take the message within {TELL_WAIT:g}s"
            ) from None
        assert isinstance(told, Told)
        # the reply comes once the submit key went, or the typist gave the message up; past
        # TOLD_WAIT (earlier messages still typing, an agent not reading its input) it says so
        submitted = told.done.wait(TOLD_WAIT)
        if told.error is not None:
            raise Conflict(told.error)
        return {"ok": True, "id": session, "characters": len(text), "submitted": submitted}

    def refresh(self, state: dict[str, Any], rendered: Callable[[str], None]) -> list[str]:
        """Files changed: tell each live session its pending ask and claims, and enforce the
        budget, all from `state`, the state exactly as the root agent sees it. A session with a
        new pending ask writes its screen first and then calls `rendered` with its id: the
        sessions returned, so that the root agent is shown the ask with the screen behind it."""
        with self._lock:
            live = {s: ref for s, (ref, h) in self._sessions.items() if not h.ended.is_set()}
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
            done = functools.partial(rendered, session) if new else None
            try:
                ref.tell(Refresh(ask, tuple(held.get(session, ())), spent.get(session, {}), done))
            except pykka.ActorDeadError:  # ended meanwhile: no screen to wait for
                continue
            if new:
                asked.append(session)
        self._enforce_budget(live, state)
        return asked

    def _enforce_budget(self, live: dict[str, pykka.ActorRef[Any]], state: dict[str, Any]) -> None:
        """Notify each new 80 %/100 % crossing once; stop a live worker past its own budget.
        A broken config counts as none (the state reports it)."""
        limits = state["limits"]["budget"]
        if not limits:
            return
        found = budget.crossings(limits, state["spend"]["by_session"], state["spend"]["total"])
        for crossing in budget.new_notices(self.dd, found):
            consequence = ""
            if crossing.level == 100:
                consequence = "; new workers are refused" if crossing.scope == "fleet" else "; it is stopped"
            journal.record(self.dd, "budget", crossing.scope, crossing.describe() + consequence, who="looop")
            notify(self.dd, crossing.describe() + consequence, who="looop")
        for crossing in found:
            if crossing.level == 100 and crossing.scope in live:
                tell_quietly(live[crossing.scope], Terminate(f"over budget: {crossing.describe()}", "looop"))

    def terminate_all(self, reason: str, grace: float) -> list[str]:
        """SIGTERM every live worker at once and wait for them (SIGKILL after `grace`)."""
        with self._lock:
            live = [(s, ref, h) for s, (ref, h) in self._sessions.items() if not h.ended.is_set()]
        for _, ref, _ in live:
            tell_quietly(ref, Terminate(reason, "looop"))
        deadline = time.monotonic() + grace + ENDED_SLACK
        for _, _, handle in live:
            handle.ended.wait(max(0.0, deadline - time.monotonic()))
        return [s for s, _, _ in live]


def _check_env(env: object) -> None:
    """A request's `env` ({KEY: VALUE} from --env), refused whole if one entry cannot be set."""
    if env is None:
        return
    if not isinstance(env, dict):
        raise InvalidInput("--env: expected KEY=VALUE")
    for key, value in env.items():
        problem = env_problem(key, value)
        if problem is not None:
            raise InvalidInput(f"--env {problem}")


def _start_actor(dd: DataDir, spec: SessionSpec, handle: SessionHandle, link: Link) -> pykka.ActorRef[Any]:
    return SessionActor.start(dd, spec, handle, link)
