"""The C library, loaded once and only on Linux: for the calls Python's os module lacks
(inotify for watching files, renameat2 for swapping snapshot dirs)."""

from __future__ import annotations

import ctypes
import functools
import sys


@functools.cache
def linux_libc() -> ctypes.CDLL | None:
    """The running process's C library on Linux, with errno kept; None elsewhere or if unloadable."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def symbol(name: str) -> bool:
    """Does the C library have `name` (an older libc may lack renameat2)?"""
    libc = linux_libc()
    return libc is not None and hasattr(libc, name)
