"""A worker's dialogs followed as asks: a known dialog drawn on its screen (`profiles.shown_dialog`)
becomes an ask of the worker's, and its answer is typed into the dialog while it is still shown.

A plain class, owned by the worker's session actor (`looop.actors.session`), which calls it from
its own thread with what it last heard from the pty: the screen's text and whether the agent
is active. It keeps the dialog's ask until that is answered, withdrawn or gone.
"""

from __future__ import annotations

import contextlib
import time

from looop.base.errors import LooopError
from looop.store import journal
from looop.store.asks import cancel_ask, collect_answer, open_ask
from looop.store.paths import DataDir
from looop.workers.profiles import Dialog, Profile, shown_dialog, shows_blocked
from looop.workers.pty_session import PtySession

DIALOG_GONE = 3.0  # off the screen this long, a dialog's ask is withdrawn
DIALOG_SETTLE = 10.0  # a dialog just answered that is still drawn is not asked about again


class DialogAsks:
    """The dialog on one worker's screen and its ask, from its first showing to its answer typed."""

    def __init__(
        self,
        dd: DataDir,
        session: str,
        profile: Profile,
        pty: PtySession,
        run: str,
        ask_deadline: float | None,
    ) -> None:
        self.dd = dd
        self.session = session
        self.profile = profile
        self.pty = pty
        self.run = run  # this run of the session: its asks carry it
        self.ask_deadline = ask_deadline
        self._dialog: tuple[str, str] | None = None  # the known dialog on screen: (name, concern)
        self._dialog_ask: tuple[str, Dialog] | None = None  # its ask, until answered
        self._typed: tuple[tuple[str, str], float] | None = None  # the dialog last answered, when
        self._asked_at = -DIALOG_SETTLE  # when an ask of this worker was last seen pending
        self._dialog_seen = 0.0  # when the dialog of the open ask was last on the screen
        self._dialog_answer: str | None = None  # its answer, until typed

    def ask_seen(self) -> None:
        """An ask of this worker's is under way, or just settled (its hook's, for a hooked dialog)."""
        self._asked_at = time.monotonic()

    def check(self, screen: str, active: bool | None, pending_ask: str | None) -> None:
        """A known dialog on the screen becomes an ask of this worker's (once per showing)."""
        shown = shown_dialog(self.profile, screen)
        if self._dialog_ask is not None:
            self._follow(shown)
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
        if pending_ask:
            return  # the agent's own hook asks about it already (`_ dialog`)
        hook_runs = dialog.hooked and self.profile.reads_settings
        if hook_runs and (active is not False or time.monotonic() - self._asked_at < DIALOG_SETTLE):
            return  # its hook may be filing its ask, or just had it answered: look again when quiet
        self._dialog = (dialog.name, concern)
        try:
            ask = open_ask(
                self.dd,
                self.session,
                dialog.question,
                concern or None,
                list(dialog.keys),
                self.ask_deadline,
                run=self.run,
            )
        except LooopError as exc:
            journal.record(self.dd, "dialog", self.session, f"{dialog.name}: cannot ask ({exc})", who="looop")
            return
        self._dialog_ask = (ask.id, dialog)
        self._dialog_seen = time.monotonic()
        journal.record(self.dd, "dialog", self.session, f"{dialog.name} dialog: asked {ask.id}", who="looop")

    def _follow(self, shown: tuple[Dialog, str] | None) -> None:
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
            cooked = self.profile.raw_mode and self.pty.canonical()
            if self._dialog_answer is not None and not cooked:
                self._type_answer(ask_id, dialog, self._dialog_answer)
            return
        if now - self._dialog_seen < DIALOG_GONE:
            return
        self._dialog_ask, self._dialog = None, None
        if self._dialog_answer is not None:
            self._dialog_answer = None
            journal.record(
                self.dd, "dialog", self.session, f"{ask_id}: the dialog went away, not typed", who="looop"
            )
            return
        with contextlib.suppress(LooopError):
            cancel_ask(self.dd, ask_id, f"the {dialog.name} dialog is no longer on the worker's screen")

    def deliver(self, screen: str) -> None:
        """Take the answer to the dialog's ask once it is answered, and type it when the dialog
        is on the screen (see `_follow`)."""
        if self._dialog_ask is None or self._dialog_answer is not None:
            return
        ask_id, _ = self._dialog_ask
        try:
            answer = collect_answer(self.dd, ask_id)
        except LooopError:  # cancelled (or unreadable): the dialog stays for someone to see
            self._dialog_ask = None
            return
        if answer is not None:
            self._dialog_answer = answer
            self._follow(shown_dialog(self.profile, screen))

    def _type_answer(self, ask_id: str, dialog: Dialog, answer: str) -> None:
        self._dialog_ask, self._dialog_answer = None, None
        keys = dialog.keys.get(answer)
        if keys is None:
            journal.record(self.dd, "dialog", self.session, f"{ask_id}: no keys for {answer!r}", who="looop")
            return
        self.pty.type(keys)
        if self._dialog is not None:
            self._typed = (self._dialog, time.monotonic())
        journal.record(
            self.dd, "dialog", self.session, f"{dialog.name} dialog: typed {answer!r} ({ask_id})", who="looop"
        )

    def blocked_by(self, screen: str, active: bool | None) -> list[str] | None:
        """The screen's last lines when the agent sits quiet at a dialog nobody is asked about."""
        if active is not False or self._dialog_ask is not None:
            return None
        if not shows_blocked(self.profile, screen):
            return None
        return last_lines(screen)


def last_lines(screen: str) -> list[str]:
    """The last non-empty lines of a rendered screen, for the state file."""
    return [line for line in screen.splitlines() if line.strip()][-12:]


def dialog_in_the_way(profile: Profile, screen: str) -> str | None:
    """The dialog on `screen` that would take typed keys as its answer (Enter picks its chosen
    option), known to the profile or not; None when there is none."""
    shown = shown_dialog(profile, screen)
    if shown is not None:
        return f"its agent shows its {shown[0].name} dialog"
    if shows_blocked(profile, screen):
        return "its agent shows a dialog"
    return None
