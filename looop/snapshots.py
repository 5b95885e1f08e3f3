"""Publishing a beat: the new `snapshots/` is built beside the old one and swapped in at once."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
from pathlib import Path

from looop.fsio import DIR_MODE, atomic_write, fsync_dir

RENAME_EXCHANGE = 2
AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    return bool(result == 0)


def new_beat_dir(live: Path, beat: int) -> Path:
    """A fresh directory beside `live` for the next beat's readings."""
    staging = live.with_name(f".{live.name}.beat-{beat}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=DIR_MODE)  # not its parents: a data dir deleted under `up` stays deleted
    return staging


def publish(live: Path, staging: Path) -> None:
    """Make `staging` the live snapshots dir; readers see the old beat or the new one, never a mix."""
    for entry in staging.iterdir():
        with open(entry, "rb") as handle:
            os.fsync(handle.fileno())
    if live.exists() and _exchange(staging, live):
        shutil.rmtree(staging, ignore_errors=True)
    else:
        old = live.with_name(f".{live.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.rename(live, old)
        os.rename(staging, live)
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(live.parent)


def write_reading(directory: Path, name: str, reading: str) -> None:
    """One sensor's reading, written atomically."""
    atomic_write(directory / f"{name}.txt", reading.encode())


def clean_stale(live: Path) -> None:
    """Remove beat dirs a killed process left behind."""
    for stale in live.parent.glob(f".{live.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)
