"""Block until files change: inotify through libc on Linux, a short poll elsewhere.

No extra dependency: the three inotify calls are reached with ctypes.
"""

from __future__ import annotations

import os
import select
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from looop.base.libc import linux_libc, symbol

T = TypeVar("T")

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_ONLYDIR = 0x01000000
WATCH_MASK = (
    IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
POLL_INTERVAL = 0.2
EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of name


def is_noise(name: bytes, noise: frozenset[str]) -> bool:
    """True for a dot file (temp and lock files) or an entry named in `noise`: changes that can
    never move what anyone waits on."""
    text = name.decode(errors="replace")
    return text.startswith(".") or text in noise


def relevant(events: bytes, noise: frozenset[str]) -> bool:
    """True when a buffer of inotify events holds one that is not noise."""
    offset = 0
    while offset + EVENT_HEADER.size <= len(events):
        _, _, _, length = EVENT_HEADER.unpack_from(events, offset)
        name = events[offset + EVENT_HEADER.size : offset + EVENT_HEADER.size + length].rstrip(b"\0")
        offset += EVENT_HEADER.size + length
        if not name or not is_noise(name, noise):
            return True  # an unnamed event is about a watched directory itself, or an overflow
    return False


_LIBC = linux_libc() if symbol("inotify_init1") else None


class DirWatcher:
    """Watches directories for entries created, written, renamed or deleted."""

    def __init__(self, noise: frozenset[str] = frozenset()) -> None:
        self._noise = noise
        self._fd = -1
        if _LIBC is not None:
            self._fd = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)

    @property
    def event_driven(self) -> bool:
        return self._fd >= 0

    def fileno(self) -> int:
        """The inotify descriptor, readable when events are queued (for `select`); -1 when polling."""
        return self._fd

    def watch(self, directories: Iterable[Path]) -> None:
        """Add watches; re-adding a watched directory is cheap, a replaced one gets a new watch."""
        if _LIBC is None or self._fd < 0:
            return
        for directory in directories:
            _LIBC.inotify_add_watch(self._fd, os.fsencode(directory), WATCH_MASK)

    def wait(self, timeout: float | None) -> bool:
        """Block until an event that is not noise, or `timeout`. True when something happened."""
        if self._fd < 0:
            time.sleep(POLL_INTERVAL if timeout is None else min(POLL_INTERVAL, max(timeout, 0)))
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                return False
            if self._drain():
                return True

    def _drain(self) -> bool:
        """Read every queued event; True if one of them matters."""
        found = False
        while True:
            try:
                events = os.read(self._fd, 65536)
            except BlockingIOError:
                return found
            if not events:
                return found
            found = found or relevant(events, self._noise)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DirWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(
    directories: Callable[[], Iterable[Path]],
    check: Callable[[], T | None],
    timeout: float | None,
) -> T | None:
    """Return `check()` once it is not None, re-checking on every change below `directories()`.

    Watches are added before each check, so a change between the check and the block is not lost.
    Returns None when `timeout` seconds pass first.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    with DirWatcher() as watcher:
        while True:
            watcher.watch(d for d in directories() if d.is_dir())
            result = check()
            if result is not None:
                return result
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            watcher.wait(remaining)
