"""One actor per worker session: starts its agent in a pty, keeps `sessions/ID/state.json`, ends it.

A temporary child of the fleet (the workers' supervisor, `looop.actors.fleet`), which it tells
when its agent has spawned (`Spawned`) and when the worker's end is recorded (`Finished`): a worker that
ends, however it ends, is recorded and never restarted by itself. The pty belongs to a thread of
the actor's (`pty_session.PtySession.pump`), which tells the actor what happens; the actor is the
only writer of the state file.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pykka

from looop.base.errors import Conflict, LooopError
from looop.base.files import write_json
from looop.base.processes import KILL_WAIT, Ended, await_gone, end_processes, start_time
from looop.daemon.channels import Reply, failure
from looop.store import journal
from looop.store.asks import cancel_ask, cancel_asks_of, collect_answer, open_ask
from looop.store.claims import release_claims_of
from looop.store.paths import DataDir
from looop.store.spend import cost_totals
from looop.store.worker_records import COUNTERS
from looop.supervisor import Link, SupervisedActor, tell_later, tell_quietly
from looop.workers.profiles import GENERIC, Dialog, Profile, shown_dialog, shows_blocked, typed_message
from looop.workers.pty_session import Exit, PtySession, Screen, SpawnError
from looop.workers.transcript import Transcript

SPARED_SLACK = 10.0  # how long a spared `_ kill` may take to hear its reply and exit, past the grace
DIALOG_GONE = 3.0  # off the screen this long, a dialog's ask is withdrawn
DIALOG_SETTLE = 10.0  # a dialog just answered that is still drawn is not asked about again
log = logging.getLogger(__name__)

RENDER_WAIT = 2.0  # the most a new ask waits for its worker's screen to be written
ECHO_WAIT = 2.0  # the most a told message waits for the agent to redraw before its submit key
RAW_WAIT = 10.0  # the most it waits for a raw-mode agent to take its terminal (Node TUIs: 1-3 s at start)
ASK_WAIT = 10.0  # the most the typist waits for this actor to say whether a dialog is up
TOLD_WAIT = 30.0  # for the typist to submit a told message: past it, the reply says "still queued"


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
    profile: Profile = GENERIC  # its dialogs, busy markers and screen chrome
    ask_deadline: float | None = None  # for the asks its dialogs become
    env_keys: tuple[str, ...] = ()  # set by the config's `env` and --env: journaled by name only


@dataclass(frozen=True)
class Spawned:
    """Told the fleet once: the agent runs as `pid`, or could not be started (`error`)."""

    session: str
    pid: int
    error: str | None = None


@dataclass(frozen=True)
class Finished:
    """Told the fleet once, when the worker's end is recorded: its final record, and what ending
    every process of its run took."""

    session: str
    final: dict[str, Any]
    swept: Ended | None


@dataclass(frozen=True)
class Terminate:
    """End every process of the worker's run: SIGTERM, then SIGKILL after the grace period.
    `spare` are left alone: the worker's own `_ kill`, which waits for the reply."""

    reason: str
    by: str
    spare: tuple[int, ...] = ()


@dataclass(frozen=True)
class Refresh:
    """Facts from other files changed: the worker's oldest pending ask, its claims, its spend.
    When the pending ask is new, `rendered` is called once the worker's screen shows what it
    printed before asking (the root agent is shown the ask after that)."""

    pending_ask: str | None
    claims: tuple[str, ...]
    cost: dict[str, float]
    rendered: Callable[[], None] | None = None


@dataclass(frozen=True)
class Tell:
    """`_ worker tell`: type `text` (checked: `profiles.check_message`) into the agent and submit
    it. `reply` hears once its submit key went, or why not (a dialog up, the worker ending, its
    text typed but not submitted); past TOLD_WAIT, that it is still queued."""

    text: str
    by: str
    reply: Reply


@dataclass(frozen=True)
class _ToldDue:
    """A told message's TOLD_WAIT is over: if it is still queued, say so."""

    reply: Reply
    characters: int


@dataclass(frozen=True)
class _Typing:
    keys: str  # the text as typed (`profiles.typed_message`)
    text: str
    by: str
    reply: Reply


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
    ended: Ended


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
        self._dialog: tuple[str, str] | None = None  # the known dialog on screen: (name, concern)
        self._dialog_ask: tuple[str, Dialog] | None = None  # its ask, until answered
        self._typed: tuple[tuple[str, str], float] | None = None  # the dialog last answered, when
        self._asked_at = -DIALOG_SETTLE  # when an ask of this worker was last seen pending
        self._dialog_seen = 0.0  # when the dialog of the open ask was last on the screen
        self._dialog_answer: str | None = None  # its answer, until typed
        self._exit: Exit | None = None
        self._exited = threading.Event()
        self._exit_seen: Exit | None = None  # the pump's news, once the actor has had it
        self._sweeper: threading.Thread | None = None
        self._swept: Ended | None = None
        self._swept_event = threading.Event()  # set with `_swept`, for a cleanup that cannot get `_Swept`
        self._finished = False
        self._typing: queue.SimpleQueue[_Typing | None] = queue.SimpleQueue()  # told messages, in order
        self._typist: threading.Thread | None = None
        self._written: dict[str, Any] = {}
        self._record: dict[str, Any] = {
            "id": spec.id,
            "command": [_shown(arg, dd.prompt(spec.id)) for arg in spec.argv],
            "cwd": str(spec.cwd),
            "sandbox": spec.sandbox,
            "agent_session": spec.agent_session,
            "profile": spec.profile.name,
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
            **dict.fromkeys(COUNTERS.values(), 0),
            "claims": [],
            "cost": {},
            "transcript": str(dd.transcript(spec.id)),
            "screen": str(dd.screen(spec.id)),
            "screen_skip": list(spec.profile.screen_skip),
            "prompt": str(dd.prompt(spec.id)),
            "up_pid": None,
            "up_process_start": None,
        }

    # lifecycle --------------------------------------------------------------------------------

    def started(self) -> None:
        try:
            pid = self.pty.spawn()
        except SpawnError as exc:
            self._record.update(state="dead", ended=time.time(), end_reason=exc.message)
            self._write()
            journal.record(self.dd, "worker start", self.spec.id, f"failed: {exc.message}", who="looop")
            self._finished = True
            tell_quietly(self.fleet, Spawned(self.spec.id, 0, exc.message))
            tell_quietly(self.fleet, Finished(self.spec.id, dict(self._record), None))
            self.stop()
            return
        self._record.update(pid=pid, pgid=pid, process_start=start_time(pid), alive=True, up_pid=os.getpid())
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
        if self._sweeper is not None:  # under way in its thread; its message cannot come now
            self._swept_event.wait(self.spec.kill_grace + 2 * KILL_WAIT)
        elif self.pty.pid:  # stopping, so this thread has nothing else to do
            self._swept = self._end_run(())
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
                self._asked_at = time.monotonic()  # an ask under way, or just settled
            self._record.update(
                pending_ask=message.pending_ask, claims=list(message.claims), cost=message.cost
            )
            self._deliver_dialog_answer()
            self._update_live_state()
        elif isinstance(message, Tell):
            try:
                self._tell(message)
            except LooopError as exc:  # a message this agent cannot take: its teller hears why
                message.reply(failure(exc, "worker_tell"))
        elif isinstance(message, _ToldDue):
            reply = {"ok": True, "id": self.spec.id, "characters": message.characters, "submitted": False}
            message.reply(reply)  # dropped when the typist has replied already
        elif isinstance(message, _InTheWay):
            return self._in_the_way()
        elif isinstance(message, Terminate):
            self._terminate(message)
        elif isinstance(message, _Exited):
            self._exit_seen = message.exit
            self._sweep(())  # what the agent left behind, if it ended by itself
            self._settle()
        elif isinstance(message, _Swept):
            self._swept = message.ended
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
        self._typing.put(_Typing(keys, message.text, message.by, message.reply))
        if self._typist is None:
            self._typist = self.spawn(self._type_told, f"typist-{self.spec.id}")
        # past TOLD_WAIT (earlier messages still typing, an agent not reading its input) it says so
        tell_later(self.actor_ref, TOLD_WAIT, _ToldDue(message.reply, len(message.text)))

    def _in_the_way(self) -> str | None:
        """What would take a told message's keys as its answer (Enter picks a dialog's chosen
        option), on the screen as it is now, not as last rendered; or that the worker is ending."""
        if self._finished or self._kill is not None or self._exit_seen is not None:
            return "the worker is ending"
        self.pty.render_now(RENDER_WAIT)
        screen = self.pty.screen.text
        shown = shown_dialog(self.spec.profile, screen)
        if shown is not None:
            return f"its agent shows its {shown[0].name} dialog"
        if shows_blocked(self.spec.profile, screen):
            return "its agent shows a dialog"
        return None

    def _type_told(self) -> None:
        """The typist thread: each told message, then the profile's submit key, one at a time;
        journals each and replies to whoever told it."""
        while (typing := self._typing.get()) is not None:
            error: str | None = f"worker {self.spec.id}: its session ended before typing it"
            try:
                try:
                    problem = self._type_one(typing.keys)
                except Exception as exc:  # crashes this actor (`spawn`): its caller hears why
                    error = f"worker {self.spec.id}: typing failed ({exc!r})"
                    raise
                error = None
                if problem is not None:
                    error = f"worker {self.spec.id}: {problem}"
                    if problem.startswith("typed"):
                        error += " (the text may sit in its input box)"
                told = journal.one_line(typing.text, 120)
                with contextlib.suppress(LooopError, OSError):  # a full disk must not end the worker
                    journal.record(
                        self.dd,
                        "worker tell",
                        self.spec.id,
                        told if problem is None else f"{problem}: {told}",
                        who=typing.by,
                    )
            finally:  # whoever told it must not wait in vain
                if error is None:
                    typing.reply(
                        {"ok": True, "id": self.spec.id, "characters": len(typing.text), "submitted": True}
                    )
                else:
                    typing.reply(failure(Conflict(error), "worker_tell"))

    def _type_one(self, keys: str) -> str | None:
        """Type one message and its submit key; None once both went, else why not. A raw-mode
        agent (the profile's `raw_mode`) is typed into only once its terminal is raw: typed while
        still cooked (a Node TUI starting), the kernel would echo the text and turn the submit
        key into a newline. Right before the text and before the submit key, this actor renders
        the screen and says whether a dialog is up (one that appeared since `_tell` looked would
        take the keys: Enter is "Yes" at Claude Code's)."""
        raw = self.spec.profile.raw_mode
        if raw and (ready := self.pty.await_raw(RAW_WAIT)) is not True:
            if ready is None:
                return "not typed: its agent has ended"
            return f"not typed: its agent did not take its terminal (raw mode) within {RAW_WAIT:g}s"
        if (blocking := self._ask_in_the_way()) is not None:
            return f"not typed: {blocking}"
        self.pty.type_echoed(keys, ECHO_WAIT)
        if raw and self.pty.await_raw(RAW_WAIT) is not True:
            return "typed but not submitted: its agent's terminal left raw mode"
        if (blocking := self._ask_in_the_way()) is not None:
            return f"typed but not submitted: {blocking}"
        self.pty.type(self.spec.profile.submit)
        return None

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
        blocked = self._blocked_by()
        if self._record["pending_ask"]:
            state = "asking"
        elif blocked:
            state = "blocked"
        elif self._stalled:
            state = "stalled"
        elif self._active is None:
            state = "starting"
        else:
            state = "running" if self._active else "idle"
        previous = self._record["state"]
        if state != previous and (state != "idle" or previous == "running"):
            counter = COUNTERS.get(state)  # a finished turn, a dialog nobody is asked, a stall
            if counter is not None:
                self._record[counter] += 1
        self._record["state"] = state
        if blocked:
            self._record["blocked_by"] = blocked
        else:
            self._record.pop("blocked_by", None)
        self._write()

    # dialogs ----------------------------------------------------------------------------------

    def _check_dialog(self) -> None:
        """A known dialog on the screen becomes an ask of this worker's (once per showing)."""
        if self._finished:
            return
        shown = shown_dialog(self.spec.profile, self._screen_text)
        if self._dialog_ask is not None:
            self._follow_dialog(shown)
            return
        if shown is None:
            self._dialog = None
            return
        dialog, concern = shown
        if self._dialog == (dialog.name, concern):
            return
        typed = self._typed
        if (
            typed is not None
            and typed[0] == (dialog.name, concern)
            and time.monotonic() - typed[1] < DIALOG_SETTLE
        ):
            return  # the agent is still redrawing the dialog it was just answered
        if self._record["pending_ask"]:
            return  # the agent's own hook asks about it already (`_ dialog`)
        hook_runs = dialog.hooked and self.spec.profile.reads_settings
        if hook_runs and (self._active is not False or time.monotonic() - self._asked_at < DIALOG_SETTLE):
            return  # its hook may be filing its ask, or just had it answered: look again when quiet
        self._dialog = (dialog.name, concern)
        try:
            ask = open_ask(
                self.dd,
                self.spec.id,
                dialog.question,
                concern or None,
                list(dialog.keys),
                self.spec.ask_deadline,
                run=self.spec.run,
            )
        except LooopError as exc:
            journal.record(self.dd, "dialog", self.spec.id, f"{dialog.name}: cannot ask ({exc})", who="looop")
            return
        self._dialog_ask = (ask.id, dialog)
        self._dialog_seen = time.monotonic()
        journal.record(self.dd, "dialog", self.spec.id, f"{dialog.name} dialog: asked {ask.id}", who="looop")

    def _follow_dialog(self, shown: tuple[Dialog, str] | None) -> None:
        """While the dialog's ask is open: type its answer once there is one and the dialog is
        on the screen; once the dialog has been off the screen for `DIALOG_GONE` (answered in
        the pty by hand, or by the agent's hook), cancel the ask, or drop an answer not typed:
        it must not be typed into whatever the screen shows by then. A redraw that hides the
        dialog for a moment does not count."""
        assert self._dialog_ask is not None
        ask_id, dialog = self._dialog_ask
        now = time.monotonic()
        if shown is not None and shown[0].name == dialog.name:
            self._dialog_seen = now
            # a raw-mode agent still starting (drawn, its terminal still cooked) would get the
            # keys as a line, Enter as a newline: type them at a later look, once it is raw
            cooked = self.spec.profile.raw_mode and self.pty.canonical()
            if self._dialog_answer is not None and not cooked:
                self._type_answer(ask_id, dialog, self._dialog_answer)
            return
        if now - self._dialog_seen < DIALOG_GONE:
            return
        self._dialog_ask, self._dialog = None, None
        if self._dialog_answer is not None:
            self._dialog_answer = None
            journal.record(
                self.dd, "dialog", self.spec.id, f"{ask_id}: the dialog went away, not typed", who="looop"
            )
            return
        with contextlib.suppress(LooopError):
            cancel_ask(self.dd, ask_id, f"the {dialog.name} dialog is no longer on the worker's screen")

    def _deliver_dialog_answer(self) -> None:
        """Take the answer to the dialog's ask once it is answered, and type it when the dialog
        is on the screen (see `_follow_dialog`)."""
        if self._dialog_ask is None or self._dialog_answer is not None or self._finished:
            return
        ask_id, _ = self._dialog_ask
        try:
            answer = collect_answer(self.dd, ask_id)
        except LooopError:  # cancelled (or unreadable): the dialog stays for someone to see
            self._dialog_ask = None
            return
        if answer is not None:
            self._dialog_answer = answer
            self._follow_dialog(shown_dialog(self.spec.profile, self._screen_text))

    def _type_answer(self, ask_id: str, dialog: Dialog, answer: str) -> None:
        self._dialog_ask, self._dialog_answer = None, None
        keys = dialog.keys.get(answer)
        if keys is None:
            journal.record(self.dd, "dialog", self.spec.id, f"{ask_id}: no keys for {answer!r}", who="looop")
            return
        self.pty.type(keys)
        if self._dialog is not None:
            self._typed = (self._dialog, time.monotonic())
        journal.record(
            self.dd, "dialog", self.spec.id, f"{dialog.name} dialog: typed {answer!r} ({ask_id})", who="looop"
        )

    def _blocked_by(self) -> list[str] | None:
        """The screen's last lines when the agent sits quiet at a dialog nobody is asked about."""
        if self._active is not False or self._dialog_ask is not None:
            return None
        if not shows_blocked(self.spec.profile, self._screen_text):
            return None
        return self._last_lines()

    def _last_lines(self) -> list[str]:
        """The last non-empty lines of the screen the pump last rendered, for the state file."""
        return [line for line in self._screen_text.splitlines() if line.strip()][-12:]

    def _check_stall(self) -> None:
        """Stalled: no output and no verb call for `stall_after` seconds while not asking."""
        if self._finished or self._stalled or self._record["pending_ask"] or self._active is False:
            return  # an idle worker is not stalled: its finished turn woke the root already
        last = max(self._record["last_output"] or self._record["started"], self._last_verb())
        quiet = time.time() - last
        if quiet < self.spec.stall_after:
            return
        self._stalled = True
        self._record["last_screen"] = self._last_lines()
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
        self._sweep(request.spare)

    def _marks(self) -> dict[str, str]:
        """What every process of this run carries in its environment, wherever it went."""
        return {"LOOOP_RUN_ID": self.spec.run}  # unique; kept under another data dir too

    def _end_run(self, spare: tuple[int, ...]) -> Ended:
        return end_processes(self._marks(), self.spec.kill_grace, self.pty.pid or None, spare)

    def _sweep(self, spare: tuple[int, ...]) -> None:
        """End every process of the run (the agent's group and whatever left it) in a thread of
        its own, which tells `_Swept` when none is left. With `spare` (the worker's own `_ kill`,
        waiting for its reply), those get time to exit by themselves after, then the same end."""
        if self._sweeper is not None or not self.pty.pid:
            return
        me = self.actor_ref

        def sweep() -> None:
            try:
                self._swept = ended = self._end_run(spare)
            finally:
                self._swept_event.set()  # a cleanup waiting for it must not wait in vain
            tell_quietly(me, _Swept(ended))
            if spare:  # they exit once they have their reply: give them the time, however loaded
                await_gone(spare, self.spec.kill_grace + SPARED_SLACK)
                end_processes(self._marks(), self.spec.kill_grace)

        self._sweeper = self.spawn(sweep, f"sweep-{self.spec.id}")

    def _settle(self) -> None:
        """Record the end once the agent has exited and nothing of its run is left."""
        if self._exit_seen is not None and self._swept is not None and not self._finished:
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
        if self._swept is not None and self._swept.count:
            detail += f"; {self._swept.describe()}"
        if self._swept is not None and self._swept.left:
            detail += f" ({self._swept.left} would not end)"
        journal.record(self.dd, "worker end", self.spec.id, detail, who="looop")
        self._typing.put(None)  # the typist, if any, stops (typing into the ended pty fails quietly)
        tell_quietly(self.fleet, Finished(self.spec.id, dict(self._record), self._swept))

    def _write(self) -> None:
        """Rewrite the state file when the record changed (every write wakes the socket server)."""
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
