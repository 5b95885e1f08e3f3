"""One actor per worker session: starts its agent in a pty, keeps `sessions/ID/state.json`, ends it.

A temporary child of the fleet (the workers' supervisor, `looop.actors.fleet`), which it tells
when its agent has spawned (`Spawned`) and when the worker's end is recorded (`Finished`): a worker that
ends, however it ends, is recorded and never restarted by itself. The pty belongs to a thread of
the actor's (`pty_session.PtySession.pump`), which tells the actor what happens; the actor is the
only writer of the state file. It owns the plain parts that do the rest: `dialog_asks.DialogAsks`,
`typist.Typist` and `run_sweep.RunSweep` (in `looop.workers`); its messages are `session_messages`'.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pykka

from looop.base.errors import Conflict, LooopError
from looop.base.files import write_json
from looop.base.processes import KILL_WAIT, start_time
from looop.daemon.channels import Reply, failure
from looop.daemon.session_messages import Finished, Refresh, SessionSpec, Spawned, Tell, Terminate
from looop.store import journal
from looop.store.asks import cancel_asks_of
from looop.store.claims import release_claims_of
from looop.store.paths import DataDir
from looop.store.spend import cost_totals
from looop.store.worker_records import WorkerRecord, new_record, set_live_state
from looop.supervisor import Link, SupervisedActor, tell_later, tell_quietly
from looop.workers.dialog_asks import DialogAsks, dialog_in_the_way, last_lines
from looop.workers.profiles import typed_message
from looop.workers.pty_session import Exit, PtySession, Screen, SpawnError
from looop.workers.run_sweep import RunSweep
from looop.workers.transcript import Transcript
from looop.workers.typist import Told, Typist

__all__ = [
    "RENDER_WAIT",
    "Finished",
    "Refresh",
    "SessionActor",
    "SessionSpec",
    "Spawned",
    "Tell",
    "Terminate",
]

log = logging.getLogger(__name__)

RENDER_WAIT = 2.0  # the most a new ask waits for its worker's screen to be written
ASK_WAIT = 10.0  # the most the typist waits for this actor to say whether a dialog is up
TOLD_WAIT = 30.0  # for the typist to submit a told message: past it, the reply says "still queued"


@dataclass(frozen=True)
class _ToldDue:
    """A told message's TOLD_WAIT is over: if it is still queued, say so."""

    reply: Reply
    still_queued: dict[str, Any]  # the reply that says so


@dataclass(frozen=True)
class _InTheWay:
    """The typist asks: what on the screen, rendered now, would take a typed key as its answer?"""


@dataclass(frozen=True)
class _Activity:
    active: bool
    last_output: float


@dataclass(frozen=True)
class _Exited:
    exit: Exit


@dataclass(frozen=True)
class _Swept:
    """No process of the run is left (`RunSweep.ended` says what that took)."""


@dataclass(frozen=True)
class _ScreenChanged:
    text: str


@dataclass(frozen=True)
class _Tick:
    pass


class SessionActor(SupervisedActor):
    """Babysits one worker: its state is `starting`, then `running`/`idle`/`asking`, then
    `exited` (on its own), `killed` (by the root agent, itself, or looop) or `dead`."""

    def __init__(self, dd: DataDir, spec: SessionSpec, link: Link) -> None:
        super().__init__(link)
        self.dd = dd
        self.spec = spec
        self.fleet = link.supervisor
        self.pty = PtySession(
            spec.argv,
            spec.env,
            spec.cwd,
            Transcript(dd.transcript(spec.id)),
            Screen(dd.screen(spec.id)),
            spec.idle_after,
            spec.profile.busy_markers,
        )
        self._active: bool | None = None  # None until the first output
        self._stalled = False
        self._kill: Terminate | None = None
        self._screen_text = ""
        self._dialogs = DialogAsks(dd, spec.id, spec.profile, self.pty, spec.run, spec.ask_deadline)
        self._typist = Typist(
            dd,
            spec.id,
            spec.profile,
            self.pty,
            self._ask_in_the_way,
            lambda run: self.spawn(run, f"typist-{spec.id}"),
        )
        self._exit: Exit | None = None
        self._exited = threading.Event()
        self._exit_seen: Exit | None = None  # the pump's news, once the actor has had it
        self._sweep = RunSweep(spec.run, spec.kill_grace, lambda run: self.spawn(run, f"sweep-{spec.id}"))
        self._finished = False
        self._written: WorkerRecord = {}
        self._record = new_record(
            dd,
            spec.id,
            argv=spec.argv,
            cwd=spec.cwd,
            sandbox=spec.sandbox,
            agent_session=spec.agent_session,
            profile=spec.profile.name,
            run=spec.run,
            screen_skip=spec.profile.screen_skip,
        )

    # lifecycle --------------------------------------------------------------------------------

    def started(self) -> None:
        try:
            pid = self.pty.spawn()
        except SpawnError as exc:
            self._record.update({"state": "dead", "ended": time.time(), "end_reason": exc.message})
            self._write()
            journal.record(self.dd, "worker start", self.spec.id, f"failed: {exc.message}", who="looop")
            self._finished = True
            tell_quietly(self.fleet, Spawned(self.spec.id, 0, exc.message))
            tell_quietly(self.fleet, Finished(self.spec.id, dict(self._record), None))
            self.stop()
            return
        self._record.update(
            {"pid": pid, "pgid": pid, "process_start": start_time(pid), "alive": True, "up_pid": os.getpid()}
        )
        self._write()
        detail = f"pid {pid} in {self.spec.cwd}"
        if self.spec.env_keys:
            detail += f"; env: {', '.join(self.spec.env_keys)}"  # names only: values may be secrets
        journal.record(self.dd, "worker start", self.spec.id, detail, who="looop")
        tell_quietly(self.fleet, Spawned(self.spec.id, pid))
        self.spawn(self._pump, f"session-{self.spec.id}")

    def _pump(self) -> None:
        me = self.actor_ref
        exit_status = self.pty.pump(
            lambda active, at: tell_quietly(me, _Activity(active, at)),
            lambda: tell_quietly(me, _Tick()),
            lambda text: tell_quietly(me, _ScreenChanged(text)),
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
        self._sweep.finish(self.pty.pid)  # stopping, so this thread has nothing else to do
        self._exited.wait(KILL_WAIT)
        self._finish(self._exit or Exit(None, signal.SIGKILL))

    # messages ---------------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        if isinstance(message, _Activity):
            self._active = message.active
            self._record["last_output"] = message.last_output
            self._stalled = False
            self._check_dialog()
            self._update_live_state()
        elif isinstance(message, _Tick):
            self._check_stall()
            self._check_dialog()  # one held back (see `Dialog.hooked`) may be due now
        elif isinstance(message, _ScreenChanged):
            self._screen_text = message.text
            self._check_dialog()
            self._update_live_state()
        elif isinstance(message, Refresh):
            new_ask = message.pending_ask and message.pending_ask != self._record["pending_ask"]
            if new_ask and not self.pty.render_now(RENDER_WAIT):  # the root sees what led to it
                log.warning("%s: screen not written within %ss of its ask", self.spec.id, RENDER_WAIT)
            if message.rendered is not None:
                message.rendered()
            if message.pending_ask or self._record["pending_ask"]:
                self._dialogs.ask_seen()
            self._record.update(
                {"pending_ask": message.pending_ask, "claims": list(message.claims), "cost": message.cost}
            )
            if not self._finished:
                self._dialogs.deliver(self._screen_text)
            self._update_live_state()
        elif isinstance(message, Tell):
            try:
                self._tell(message)
            except LooopError as exc:  # a message this agent cannot take: its teller hears why
                message.reply(failure(exc, "worker_tell"))
        elif isinstance(message, _ToldDue):
            message.reply(message.still_queued)  # dropped when the typist has replied already
        elif isinstance(message, _InTheWay):
            return self._in_the_way()
        elif isinstance(message, Terminate):
            self._terminate(message)
        elif isinstance(message, _Exited):
            self._exit_seen = message.exit
            self._start_sweep(())  # what the agent left behind, if it ended by itself
            self._settle()
        elif isinstance(message, _Swept):
            self._settle()
        else:
            super().handle(message)

    def _tell(self, message: Tell) -> None:
        """Queue a message for the typist thread (a pty write waits while the agent does not read
        its input: never in this thread), which journals what became of it and replies."""
        if self._finished or self._kill is not None or self._exit_seen is not None:
            raise Conflict(f"worker {self.spec.id} is ending: nothing to type into")
        keys = typed_message(self.spec.profile, message.text)
        if self._in_the_way() is not None:
            raise Conflict(
                f"worker {self.spec.id}'s agent shows a dialog: a message typed now would answer it;"
                " answer its ask (or see its screen.txt) first"
            )
        told = {"ok": True, "id": self.spec.id, "characters": len(message.text), "submitted": True}
        self._typist.put(Told(keys, message.text, message.by, self._told(message.reply, told)))
        # past TOLD_WAIT (earlier messages still typing, an agent not reading its input) it says so
        tell_later(self.actor_ref, TOLD_WAIT, _ToldDue(message.reply, {**told, "submitted": False}))

    def _in_the_way(self) -> str | None:
        """What would take a told message's keys as its answer (Enter picks a dialog's chosen
        option), on the screen as it is now, not as last rendered; or that the worker is ending."""
        if self._finished or self._kill is not None or self._exit_seen is not None:
            return "the worker is ending"
        self.pty.render_now(RENDER_WAIT)
        return dialog_in_the_way(self.spec.profile, self.pty.screen.text)

    def _told(self, reply: Reply, told: dict[str, Any]) -> Callable[[str | None], None]:
        """What tells a message's teller `told` once the typist submitted it (None), else why not."""

        def done(error: str | None) -> None:
            reply(told if error is None else failure(Conflict(error), "worker_tell"))

        return done

    def _ask_in_the_way(self) -> str | None:
        """`_in_the_way`, asked of this actor from the typist thread (the screen and the worker's
        state are the actor's)."""
        try:
            return cast("str | None", self.actor_ref.ask(_InTheWay(), timeout=ASK_WAIT))
        except pykka.ActorDeadError:
            return "the worker is ending"
        except pykka.Timeout:
            return f"its session did not say within {ASK_WAIT:g}s whether a dialog is up"
        except Exception as exc:  # raised in the actor: no key goes blind
            return f"its session could not say whether a dialog is up ({exc})"

    def _update_live_state(self) -> None:
        if self._finished:
            return
        blocked = self._dialogs.blocked_by(self._screen_text, self._active)
        set_live_state(self._record, active=self._active, stalled=self._stalled, blocked_by=blocked)
        self._write()

    def _check_dialog(self) -> None:
        if not self._finished:
            self._dialogs.check(self._screen_text, self._active, self._record["pending_ask"])

    def _check_stall(self) -> None:
        """Stalled: no output and no verb call for `stall_after` seconds while not asking."""
        if self._finished or self._stalled or self._record["pending_ask"] or self._active is False:
            return  # an idle worker is not stalled: its finished turn woke the root already
        last = max(self._record["last_output"] or self._record["started"], self._last_verb())
        quiet = time.time() - last
        if quiet < self.spec.stall_after:
            return
        self._stalled = True
        self._record["last_screen"] = last_lines(self._screen_text)
        journal.record(self.dd, "worker stalled", self.spec.id, f"nothing for {quiet:.0f}s", who="looop")
        self._update_live_state()

    def _last_verb(self) -> float:
        """When the worker last called a looop verb (the CLI touches the file)."""
        try:
            return self.dd.last_verb(self.spec.id).stat().st_mtime
        except OSError:
            return 0.0

    def _terminate(self, request: Terminate) -> None:
        if self._finished or self._kill is not None or self._exit_seen is not None:
            return  # ending already; whoever asked waits for the end all the same
        self._kill = request
        journal.record(
            self.dd, "worker kill", self.spec.id, f"by {request.by}: {request.reason}", who=request.by
        )
        self._start_sweep(request.spare)

    def _start_sweep(self, spare: tuple[int, ...]) -> None:
        """End every process of the run in a thread, which tells `_Swept` when none is left."""
        me = self.actor_ref
        self._sweep.start(self.pty.pid, spare, lambda: tell_quietly(me, _Swept()))

    def _settle(self) -> None:
        """Record the end once the agent has exited and nothing of its run is left."""
        if self._exit_seen is not None and self._sweep.ended is not None and not self._finished:
            self._finish(self._exit_seen)
            self.stop()

    def _finish(self, exit_status: Exit) -> None:
        """Record the end once: state, exit status, undelivered asks cancelled (answered ones too),
        claims released, journaled."""
        if self._finished:
            return
        self._finished = True
        if self._kill is not None:
            state, reason = "killed", self._kill.reason
            self._record["killed_by"] = self._kill.by
        elif exit_status.signal is not None:
            state, reason = "dead", exit_status.describe()
        else:
            state, reason = "exited", exit_status.describe()
        self._record.update(
            {
                "state": state,
                "alive": False,
                "ended": time.time(),
                "end_reason": reason,
                "exit_code": exit_status.code,
                "signal": None if exit_status.signal is None else signal.Signals(exit_status.signal).name,
                "pending_ask": None,
                "claims": [],
                "cost": cost_totals(self.dd, self.spec.id),
            }
        )
        if self.pty.transcript.error:
            self._record["transcript_error"] = self.pty.transcript.error
        why = f"worker {self.spec.id} {state}"
        # its asks and claims go first: no reader ever sees an ended worker with a pending ask
        cancelled = cancel_asks_of(self.dd, self.spec.id, why)
        released = release_claims_of(self.dd, self.spec.id, why)
        self._write()
        detail = f"{state}: {reason} ({exit_status.describe()})"
        if cancelled:
            detail += f"; cancelled asks {', '.join(cancelled)}"
        if released:
            detail += f"; released {', '.join(released)}"
        swept = self._sweep.ended
        if swept is not None and swept.count:
            detail += f"; {swept.describe()}"
        if swept is not None and swept.left:
            detail += f" ({swept.left} would not end)"
        journal.record(self.dd, "worker end", self.spec.id, detail, who="looop")
        self._typist.close()
        tell_quietly(self.fleet, Finished(self.spec.id, dict(self._record), swept))

    def _write(self) -> None:
        """Rewrite the state file when the record changed (every write wakes the socket server)."""
        if self._record == self._written:
            return
        with contextlib.suppress(OSError):  # a full disk must not take the babysitter down
            write_json(self.dd.session_state(self.spec.id), self._record)
            self._written = copy.deepcopy(self._record)
