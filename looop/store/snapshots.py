"""Publishing a beat: the new `snapshots/` is built beside the old one and swapped in at once."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from looop.base.files import atomic_write, ensure_dir, fsync_dir, remove_tree, replace
from looop.base.libc import linux_libc, symbol

RENAME_EXCHANGE = 2
AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where it is not available."""
    libc = linux_libc()
    if libc is None or not symbol("renameat2"):
        return False
    result = libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    return bool(result == 0)


def new_beat_dir(live: Path, beat: int) -> Path:
    """A fresh directory beside `live` for the next beat's readings."""
    staging = live.with_name(f".{live.name}.beat-{beat}")
    remove_tree(staging)
    ensure_dir(staging)
    return staging


def publish(live: Path, staging: Path) -> None:
    """Make `staging` the live snapshots dir; readers see the old beat or the new one, never a mix."""
    for entry in staging.iterdir():
        with open(entry, "rb") as handle:
            os.fsync(handle.fileno())
    if live.exists() and _exchange(staging, live):
        remove_tree(staging)
    else:
        old = live.with_name(f".{live.name}.old")
        remove_tree(old)
        with contextlib.suppress(FileNotFoundError):
            replace(live, old)
        replace(staging, live)
        remove_tree(old)
    fsync_dir(live.parent)


def write_reading(directory: Path, name: str, reading: str) -> None:
    """One sensor's reading, written atomically."""
    atomic_write(directory / f"{name}.txt", reading.encode())


def clean_stale(live: Path) -> None:
    """Remove beat dirs a killed process left behind."""
    for stale in live.parent.glob(f".{live.name}.*"):
        with contextlib.suppress(OSError):
            remove_tree(stale)
