"""The typist of a worker's told messages (`_ worker tell`): one thread types each message into
the agent's pty, then the profile's submit key, one message at a time, in the order told.

A plain class, owned by the worker's session actor (`looop.actors.session`): a pty write waits
while the agent does not read its input, so it never happens in the actor's thread. Right before
the text and before the submit key, it asks whoever owns the screen (`in_the_way`) whether a
dialog is up that would take the keys as its answer.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from dataclasses import dataclass

from looop.base.errors import LooopError
from looop.store import journal
from looop.store.paths import DataDir
from looop.workers.profiles import Profile
from looop.workers.pty_session import PtySession

ECHO_WAIT = 2.0  # the most a told message waits for the agent to redraw before its submit key
RAW_WAIT = 10.0  # the most it waits for a raw-mode agent to take its terminal (Node TUIs: 1-3 s at start)


@dataclass(frozen=True)
class Told:
    """One message to type: `keys` as typed (`profiles.typed_message`); `done` hears None once
    its submit key went, else why not (called from the typist's thread)."""

    keys: str
    text: str
    by: str
    done: Callable[[str | None], None]


class Typist:
    """Types told messages in a thread of its own, started (by `spawn`) at the first message."""

    def __init__(
        self,
        dd: DataDir,
        session: str,
        profile: Profile,
        pty: PtySession,
        in_the_way: Callable[[], str | None],
        spawn: Callable[[Callable[[], None]], object],
    ) -> None:
        self.dd = dd
        self.session = session
        self.profile = profile
        self.pty = pty
        self.in_the_way = in_the_way  # what on the screen, rendered now, would take a typed key
        self._spawn = spawn
        self._started = False
        self._queue: queue.SimpleQueue[Told | None] = queue.SimpleQueue()  # told messages, in order

    def put(self, told: Told) -> None:
        """Queue a message, starting the thread if it is not running yet."""
        self._queue.put(told)
        if not self._started:
            self._started = True
            self._spawn(self._run)

    def close(self) -> None:
        """The thread, if any, stops after the messages queued (typing into an ended pty fails quietly)."""
        self._queue.put(None)

    def _run(self) -> None:
        """Each told message, then the submit key; journals each and tells whoever told it."""
        while (told := self._queue.get()) is not None:
            error: str | None = f"worker {self.session}: its session ended before typing it"
            try:
                try:
                    problem = self._type_one(told.keys)
                except Exception as exc:  # crashes its actor (`spawn`): its caller hears why
                    error = f"worker {self.session}: typing failed ({exc!r})"
                    raise
                error = None
                if problem is not None:
                    error = f"worker {self.session}: {problem}"
                    if problem.startswith("typed"):
                        error += " (the text may sit in its input box)"
                text = journal.one_line(told.text, 120)
                with contextlib.suppress(LooopError, OSError):  # a full disk must not end the worker
                    journal.record(
                        self.dd,
                        "worker tell",
                        self.session,
                        text if problem is None else f"{problem}: {text}",
                        who=told.by,
                    )
            finally:  # whoever told it must not wait in vain
                told.done(error)

    def _type_one(self, keys: str) -> str | None:
        """Type one message and its submit key; None once both went, else why not. A raw-mode
        agent (the profile's `raw_mode`) is typed into only once its terminal is raw: typed while
        still cooked (a Node TUI starting), the kernel would echo the text and turn the submit
        key into a newline. A dialog that appeared since the message was queued would take the
        keys (Enter is "Yes" at Claude Code's): `in_the_way` is asked before each."""
        raw = self.profile.raw_mode
        if raw and (ready := self.pty.await_raw(RAW_WAIT)) is not True:
            if ready is None:
                return "not typed: its agent has ended"
            return f"not typed: its agent did not take its terminal (raw mode) within {RAW_WAIT:g}s"
        if (blocking := self.in_the_way()) is not None:
            return f"not typed: {blocking}"
        self.pty.type_echoed(keys, ECHO_WAIT)
        if raw and self.pty.await_raw(RAW_WAIT) is not True:
            return "typed but not submitted: its agent's terminal left raw mode"
        if (blocking := self.in_the_way()) is not None:
            return f"typed but not submitted: {blocking}"
        self.pty.type(self.profile.submit)
        return None
