"""Ending every process of one worker's run: the agent's process group and whatever left it,
found by the mark each carries in its environment (`LOOOP_RUN_ID`), wherever it went.

A plain class, owned by the worker's session actor (`looop.actors.session`): the sweep runs in a
thread of its own (ending takes up to the kill grace), or in the caller's for a cleanup.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from looop.base.processes import KILL_WAIT, Ended, await_gone, end_processes
from looop.store.childenv import run_marks

SPARED_SLACK = 10.0  # how long a spared `_ kill` may take to hear its reply and exit, past the grace


class RunSweep:
    """Ends the processes of one run once; `ended` says what that took, once it is done."""

    def __init__(self, run: str, kill_grace: float, spawn: Callable[[Callable[[], None]], object]) -> None:
        self.marks = run_marks(run)
        self.kill_grace = kill_grace
        self._spawn = spawn
        self._started = False
        self.ended: Ended | None = None
        self._done = threading.Event()  # set with `ended`, for a cleanup that cannot hear `swept`

    def start(self, leader: int, spare: tuple[int, ...], swept: Callable[[], None]) -> None:
        """Sweep in a thread of its own (once), which calls `swept` when none is left. With
        `spare` (the worker's own `_ kill`, waiting for its reply), those get time to exit by
        themselves after, then the same end."""
        if self._started or not leader:
            return

        def sweep() -> None:
            try:
                self.ended = end_processes(self.marks, self.kill_grace, leader, spare)
            finally:
                self._done.set()  # a cleanup waiting for it must not wait in vain
            swept()
            if spare:  # they exit once they have their reply: give them the time, however loaded
                await_gone(spare, self.kill_grace + SPARED_SLACK)
                end_processes(self.marks, self.kill_grace)

        self._spawn(sweep)
        self._started = True

    def finish(self, leader: int) -> None:
        """In the caller's thread (a cleanup, stopping): wait for the sweep under way, or sweep."""
        if self._started:  # its `swept` cannot be heard now
            self._done.wait(self.kill_grace + 2 * KILL_WAIT)
        elif leader:
            self.ended = end_processes(self.marks, self.kill_grace, leader, ())
