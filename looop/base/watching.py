"""Block until files change: inotify through libc on Linux; elsewhere, or with LOOOP_WATCH=poll,
by listing the watched directories every POLL_INTERVAL.

No extra dependency: the three inotify calls are reached with ctypes. The fallback polls rather
than using kqueue (macOS, BSD), because kqueue watches one open descriptor per file or directory,
and telling what changed inside a directory means listing it again anyway; a listing with one
stat per entry of a few small directories costs little five times a second.
"""

from __future__ import annotations

import os
import select
import stat
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
POLL_SETTING = "LOOOP_WATCH"  # "poll": list the directories even where inotify works
EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of name


def is_noise(name: str, noise: frozenset[str]) -> bool:
    """True for a dot file (temp and lock files) or an entry named in `noise`: changes that can
    never move what anyone waits on."""
    return name.startswith(".") or name in noise


def relevant(events: bytes, noise: frozenset[str]) -> bool:
    """True when a buffer of inotify events holds one that is not noise."""
    offset = 0
    while offset + EVENT_HEADER.size <= len(events):
        _, _, _, length = EVENT_HEADER.unpack_from(events, offset)
        name = events[offset + EVENT_HEADER.size : offset + EVENT_HEADER.size + length].rstrip(b"\0")
        offset += EVENT_HEADER.size + length
        if not name or not is_noise(name.decode(errors="replace"), noise):
            return True  # an unnamed event is about a watched directory itself, or an overflow
    return False


_LIBC = linux_libc() if symbol("inotify_init1") else None

# a directory as a listing saw it: its own inode, and each entry's inode (a file's also its
# modification time and size; a subdirectory's not: inotify does not see into it either)
Listing = tuple[int, dict[str, tuple[int, ...]]]


def listing(directory: Path, noise: frozenset[str]) -> Listing | None:
    """What polling compares, noise left out; None when the directory is not there."""
    entries: dict[str, tuple[int, ...]] = {}
    try:
        own = os.stat(directory).st_ino
        with os.scandir(directory) as found:
            for entry in found:
                if is_noise(entry.name, noise):
                    continue
                try:
                    facts = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                is_dir = stat.S_ISDIR(facts.st_mode)
                entries[entry.name] = (
                    (facts.st_ino,) if is_dir else (facts.st_ino, facts.st_mtime_ns, facts.st_size)
                )
    except OSError:
        return None
    return own, entries


class DirWatcher:
    """Watches directories for entries created, written, renamed or deleted (not below them)."""

    def __init__(self, noise: frozenset[str] = frozenset()) -> None:
        self._noise = noise
        self._fd = -1
        self._seen: dict[Path, Listing] = {}  # polling: each watched directory as last listed
        if _LIBC is not None and os.environ.get(POLL_SETTING) != "poll":
            self._fd = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)  # -1 (out of them): poll

    @property
    def event_driven(self) -> bool:
        """True with inotify; False when polling: then `wait(0)` lists the directories again."""
        return self._fd >= 0

    def fileno(self) -> int:
        """The inotify descriptor, readable when events are queued (for `select`); -1 when polling."""
        return self._fd

    def watch(self, directories: Iterable[Path]) -> None:
        """Add watches; re-adding a watched directory is cheap, a replaced one gets a new watch.
        Polling lists a directory when it is first watched: what changes after is seen."""
        for directory in directories:
            if _LIBC is not None and self._fd >= 0:
                _LIBC.inotify_add_watch(self._fd, os.fsencode(directory), WATCH_MASK)
            elif directory not in self._seen and (now := listing(directory, self._noise)) is not None:
                self._seen[directory] = now

    def wait(self, timeout: float | None) -> bool:
        """Block until an event that is not noise, or `timeout`. True when something happened."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._fd < 0:
            return self._poll(deadline)
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if not ready:
                return False
            if self._drain():
                return True

    def _poll(self, deadline: float | None) -> bool:
        """List the watched directories every POLL_INTERVAL until one differs, or `deadline`."""
        while True:
            if self._relisted():
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            time.sleep(POLL_INTERVAL if remaining is None else min(POLL_INTERVAL, remaining))

    def _relisted(self) -> bool:
        """List each watched directory again; True if one differs. One that is gone is no longer
        watched (as an inotify watch ends with its directory); `watch` may add it again."""
        changed = False
        for directory, before in list(self._seen.items()):
            now = listing(directory, self._noise)
            if now is None:
                del self._seen[directory]
            else:
                self._seen[directory] = now
            changed = changed or now != before
        return changed

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
