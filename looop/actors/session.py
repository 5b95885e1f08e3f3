"""One actor per worker session: starts its agent in a pty, keeps `sessions/ID/state.json`, ends it.

A temporary child of the workers supervisor: a worker that ends, however it ends, is recorded
and never restarted by itself. The pty belongs to a thread of the actor's (`babysit.PtySession.
pump`), which tells the actor what happens; the actor is the only writer of the state file.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looop import journal
from looop.babysit import Exit, PtySession, Screen, SpawnError, Transcript
from looop.claims import release_claims_of
from looop.costs import cost_totals
from looop.fsio import write_json
from looop.mailbox import cancel_asks_of
from looop.paths import DataDir
from looop.procs import start_time
from looop.supervisor import Link, SupervisedActor, tell_quietly

RENDER_WAIT = 2.0  # the most a new ask waits for its worker's screen to be written


@dataclass(frozen=True)
class SessionSpec:
    """Everything needed to start one worker, prepared before its actor starts."""

    id: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    sandbox: dict[str, Any]
    idle_after: float
    kill_grace: float
    stall_after: float
    agent_session: str
    run: str  # this run of the session (`LOOOP_RUN_ID`); its asks carry it
    screen_skip: tuple[str, ...] = ()  # regexes of screen lines `status` passes over (status bars)


@dataclass
class SessionHandle:
    """What the fleet (in other threads) learns about a session: set once, then only read."""

    spawned: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    pid: int = 0
    error: str | None = None
    final: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Terminate:
    """End the worker's process group: SIGTERM, then SIGKILL after the grace period."""

    reason: str
    by: str


@dataclass(frozen=True)
class Refresh:
    """Facts from other files changed: the worker's oldest pending ask, its claims, its spend.
    Asked (not told) when the pending ask is new: the reply comes once the worker's screen
    shows what it printed before asking."""

    pending_ask: str | None
    claims: tuple[str, ...]
    cost: dict[str, float]


@dataclass(frozen=True)
class _Activity:
    active: bool
    last_output: float


@dataclass(frozen=True)
class _Exited:
    exit: Exit


@dataclass(frozen=True)
class _KillNow:
    pass


@dataclass(frozen=True)
class _Tick:
    pass


class SessionActor(SupervisedActor):
    """Babysits one worker: its state is `starting`, then `running`/`idle`/`asking`, then
    `exited` (on its own), `killed` (by the root agent, itself, or looop) or `dead`."""

    def __init__(self, dd: DataDir, spec: SessionSpec, handle: SessionHandle, link: Link) -> None:
        super().__init__(link)
        self.dd = dd
        self.spec = spec
        self.outcome = handle
        self.pty = PtySession(
            spec.argv,
            spec.env,
            spec.cwd,
            Transcript(dd.transcript(spec.id)),
            Screen(dd.screen(spec.id)),
            spec.idle_after,
        )
        self._active: bool | None = None  # None until the first output
        self._stalled = False
        self._kill: Terminate | None = None
        self._exit: Exit | None = None
        self._exited = threading.Event()
        self._finished = False
        self._written: dict[str, Any] = {}
        self._record: dict[str, Any] = {
            "id": spec.id,
            "command": [_shown(arg, dd.prompt(spec.id)) for arg in spec.argv],
            "cwd": str(spec.cwd),
            "sandbox": spec.sandbox,
            "agent_session": spec.agent_session,
            "run": spec.run,
            "started": time.time(),
            "state": "starting",
            "alive": False,
            "pid": None,
            "pgid": None,
            "process_start": None,
            "exit_code": None,
            "signal": None,
            "ended": None,
            "end_reason": None,
            "killed_by": None,
            "last_output": None,
            "pending_ask": None,
            "claims": [],
            "cost": {},
            "transcript": str(dd.transcript(spec.id)),
            "screen": str(dd.screen(spec.id)),
            "screen_skip": list(spec.screen_skip),
            "prompt": str(dd.prompt(spec.id)),
            "up_pid": None,
            "up_process_start": None,
        }

    # lifecycle --------------------------------------------------------------------------------

    def started(self) -> None:
        try:
            pid = self.pty.spawn()
        except SpawnError as exc:
            self.outcome.error = exc.message
            self._record.update(state="dead", ended=time.time(), end_reason=exc.message)
            self._write()
            journal.record(self.dd, "worker start", self.spec.id, f"failed: {exc.message}", who="looop")
            self.outcome.ended.set()
            self.outcome.spawned.set()
            self._finished = True
            self.stop()
            return
        self._record.update(pid=pid, pgid=pid, process_start=start_time(pid), alive=True, up_pid=os.getpid())
        self._write()
        self.outcome.pid = pid
        journal.record(self.dd, "worker start", self.spec.id, f"pid {pid} in {self.spec.cwd}", who="looop")
        self.outcome.spawned.set()
        self.spawn(self._pump, f"session-{self.spec.id}")

    def _pump(self) -> None:
        me = self.actor_ref
        exit_status = self.pty.pump(
            lambda active, at: tell_quietly(me, _Activity(active, at)), lambda: tell_quietly(me, _Tick())
        )
        self._exit = exit_status
        self._exited.set()
        tell_quietly(me, _Exited(exit_status))

    def cleanup(self) -> None:
        """On a stop (looop down) or a crash of this actor: end the worker and record it."""
        if self._finished:
            return
        if self._kill is None:
            why = (
                "looop is stopping" if self.failure is None else f"its looop actor crashed: {self.failure!r}"
            )
            self._kill = Terminate(why, "looop")
        if self.pty.pid and not self._exited.is_set():
            self.pty.signal_group(signal.SIGTERM)
            if not self._exited.wait(self.spec.kill_grace):
                self.pty.signal_group(signal.SIGKILL)
                self._exited.wait(5.0)
        self._finish(self._exit or Exit(None, signal.SIGKILL))

    # messages ---------------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        if isinstance(message, _Activity):
            self._active = message.active
            self._record["last_output"] = message.last_output
            self._stalled = False
            self._update_live_state()
        elif isinstance(message, _Tick):
            self._check_stall()
        elif isinstance(message, Refresh):
            if message.pending_ask and message.pending_ask != self._record["pending_ask"]:
                self.pty.render_now(RENDER_WAIT)  # the root sees the screen that led to the ask
            self._record.update(
                pending_ask=message.pending_ask, claims=list(message.claims), cost=message.cost
            )
            self._update_live_state()
        elif isinstance(message, Terminate):
            self._terminate(message)
        elif isinstance(message, _KillNow):
            if not self._exited.is_set():
                self.pty.signal_group(signal.SIGKILL)
        elif isinstance(message, _Exited):
            self._finish(message.exit)
            self.stop()
        else:
            super().handle(message)

    def _update_live_state(self) -> None:
        if self._finished:
            return
        if self._record["pending_ask"]:
            state = "asking"
        elif self._stalled:
            state = "stalled"
        elif self._active is None:
            state = "starting"
        else:
            state = "running" if self._active else "idle"
        self._record["state"] = state
        self._write()

    def _check_stall(self) -> None:
        """Stalled: no output and no verb call for `stall_after` seconds while not asking."""
        if self._finished or self._stalled or self._record["pending_ask"]:
            return
        last = max(self._record["last_output"] or self._record["started"], self._last_verb())
        quiet = time.time() - last
        if quiet < self.spec.stall_after:
            return
        self._stalled = True
        lines = [line for line in self.pty.screen.text.splitlines() if line.strip()]
        self._record["last_screen"] = lines[-12:]
        journal.record(self.dd, "worker stalled", self.spec.id, f"nothing for {quiet:.0f}s", who="looop")
        self._update_live_state()

    def _last_verb(self) -> float:
        """When the worker last called a looop verb (the CLI touches the file)."""
        try:
            return self.dd.last_verb(self.spec.id).stat().st_mtime
        except OSError:
            return 0.0

    def _terminate(self, request: Terminate) -> None:
        if self._finished or self._kill is not None:
            return
        self._kill = request
        journal.record(
            self.dd, "worker kill", self.spec.id, f"by {request.by}: {request.reason}", who=request.by
        )
        self.pty.signal_group(signal.SIGTERM)
        timer = threading.Timer(self.spec.kill_grace, tell_quietly, [self.actor_ref, _KillNow()])
        timer.daemon = True
        timer.start()

    def _finish(self, exit_status: Exit) -> None:
        """Record the end once: state, exit status, undelivered asks cancelled (answered ones too),
        claims released, journaled."""
        if self._finished:
            return
        self._finished = True
        self.pty.signal_group(signal.SIGKILL)  # whatever the leader left running in its group
        if self._kill is not None:
            state, reason = "killed", self._kill.reason
            self._record["killed_by"] = self._kill.by
        elif exit_status.signal is not None:
            state, reason = "dead", exit_status.describe()
        else:
            state, reason = "exited", exit_status.describe()
        self._record.update(
            state=state,
            alive=False,
            ended=time.time(),
            end_reason=reason,
            exit_code=exit_status.code,
            signal=None if exit_status.signal is None else signal.Signals(exit_status.signal).name,
            pending_ask=None,
            claims=[],
            cost=cost_totals(self.dd, self.spec.id),
        )
        if self.pty.transcript.error:
            self._record["transcript_error"] = self.pty.transcript.error
        self._write()
        why = f"worker {self.spec.id} {state}"
        cancelled = cancel_asks_of(self.dd, self.spec.id, why)
        released = release_claims_of(self.dd, self.spec.id, why)
        detail = f"{state}: {reason} ({exit_status.describe()})"
        if cancelled:
            detail += f"; cancelled asks {', '.join(cancelled)}"
        if released:
            detail += f"; released {', '.join(released)}"
        journal.record(self.dd, "worker end", self.spec.id, detail, who="looop")
        self.outcome.final = dict(self._record)
        self.outcome.ended.set()

    def _write(self) -> None:
        """Rewrite the state file when the record changed (every write wakes the mailbox)."""
        if self._record == self._written:
            return
        with contextlib.suppress(OSError):  # a full disk must not take the babysitter down
            write_json(self.dd.session_state(self.spec.id), self._record)
            self._written = copy.deepcopy(self._record)


def _shown(argument: str, prompt_file: Path) -> str:
    """An argument as the record shows it: a prompt passed inline is named, not repeated."""
    if len(argument) <= 200:
        return argument
    return f"<{len(argument)} characters of prompt; see {prompt_file}>"
