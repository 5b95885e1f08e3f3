"""A job queue served by one thread of its own: slow work (a notify hook, a worktree's removal)
taken off the threads that must never wait for it (the pulse's actors)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("looop")


class Background:
    """Runs jobs one at a time, in the order given, on a daemon thread started at the first job.

    One thread, not a pool: jobs keep their order (notices reach the human as they happened) and
    at most one slow child process runs per queue, whatever the burst. Bounded: past `limit`
    jobs queued or running, `submit` refuses; a job whose `key` is queued or running is not
    queued again. A job that raises is logged; the thread goes on."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self._limit = limit
        self._changed = threading.Condition()
        self._jobs: deque[tuple[str | None, Callable[[], object]]] = deque()  # the first is running
        self._keys: set[str] = set()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], object], key: str | None = None) -> bool:
        """Queue `job`; False (not queued) when the queue is full or `key` is queued already."""
        with self._changed:
            if len(self._jobs) >= self._limit or (key is not None and key in self._keys):
                return False
            self._jobs.append((key, job))
            if key is not None:
                self._keys.add(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            self._changed.notify_all()
        return True

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for every job to be done; return how many are not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._jobs and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return len(self._jobs)

    def _serve(self) -> None:
        while True:
            with self._changed:
                while not self._jobs:
                    self._changed.wait()
                key, job = self._jobs[0]
            try:
                job()
            except Exception:
                log.exception("%s: a job failed", self.name)
            finally:
                with self._changed:
                    self._jobs.popleft()
                    if key is not None:
                        self._keys.discard(key)
                    self._changed.notify_all()
