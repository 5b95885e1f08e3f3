"""Readers' cursors: which world each reader of `_ wait` last saw.

A cursor file holds a world hash. The facts behind a hash (`looop.world.wakes`) are kept beside, in
`cursors/.seen/HASH.json`, for every state looop printed lately (`_ state`, `_ wait`): with them a
reader is woken only by facts it has not seen. The newest KEEP_SEEN are kept, and those of every
cursor. A hash whose facts are gone (pruned, never kept, unwritable) still works: then any
difference wakes, and every fact is news.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import orjson

from looop.base.errors import LooopError
from looop.base.files import atomic_write, ensure_dir
from looop.base.ids import is_valid_id
from looop.store.paths import DataDir

KEEP_SEEN = 64  # fact sets kept: far more than readers that lag behind at once
HEX = frozenset("0123456789abcdef")
Facts = frozenset[str]  # as `looop.world.wakes` makes them


def is_world_hash(value: str) -> bool:
    return len(value) == 16 and set(value) <= HEX


def read_cursor(dd: DataDir, name: str | None) -> str:
    """The hash reader `name` last saw ("" when none, or when the file holds no hash)."""
    try:
        value = dd.cursor(name).read_text(errors="replace").strip()
    except OSError:
        return ""
    return value if is_world_hash(value) else ""


def _cursor_hashes(dd: DataDir) -> set[str]:
    hashes = {read_cursor(dd, None)}
    with contextlib.suppress(OSError):
        hashes |= {read_cursor(dd, p.name) for p in dd.cursors.iterdir() if is_valid_id(p.name)}
    return hashes


def advance(dd: DataDir, name: str | None, world_hash: str) -> None:
    """Record that reader `name` has seen `world_hash` (once it has printed the state)."""
    path = dd.cursor(name)
    if name is not None:
        ensure_dir(path.parent)
    atomic_write(path, (world_hash + "\n").encode())


def remember(dd: DataDir, world_hash: str, facts: Facts) -> None:
    """Keep the facts behind `world_hash` (a printed state's), and forget the oldest beyond
    KEEP_SEEN that no cursor holds. A cache: when it cannot be written, nothing fails."""
    with contextlib.suppress(OSError, LooopError):
        path = dd.seen_facts(world_hash)
        if path.exists():
            os.utime(path)  # printed again: keep it
            return
        ensure_dir(path.parent)
        atomic_write(path, orjson.dumps(sorted(facts)), durable=False)  # a cache: see above
        entries = sorted(path.parent.iterdir(), key=_age)
        if len(entries) <= KEEP_SEEN:
            return
        held = _cursor_hashes(dd)
        for old in entries[KEEP_SEEN:]:
            if old.name.removesuffix(".json") not in held:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()


def _age(path: Path) -> int:
    """Newest first, for sorting; a file gone meanwhile sorts last."""
    try:
        return -path.stat().st_mtime_ns
    except OSError:
        return 0


def recall(dd: DataDir, world_hash: str) -> Facts | None:
    """The facts behind `world_hash`, None when they are not kept (or unreadable: then any
    difference counts, which loses nothing)."""
    if not is_world_hash(world_hash):
        return None
    try:
        value = orjson.loads(dd.seen_facts(world_hash).read_bytes())
    except (OSError, orjson.JSONDecodeError, LooopError):
        return None
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        return None
    return frozenset(value)
