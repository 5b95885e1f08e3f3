"""Open a data dir: create it private, seed it once from the embedded files, seed the config."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from looop.base.errors import StorageError
from looop.base.files import (
    DIR_MODE,
    StoreLock,
    atomic_write,
    confine,
    ensure_dir,
    link_refused,
    open_private,
    why_untrusted,
)
from looop.store.config import seed_config
from looop.store.paths import DataDir

SEED_FILES = ("PLAYBOOK.md", "goals/setup.md", "goals/playbook-daily.md", "sensors/today.sh")


def seed_bytes(name: str) -> bytes:
    """The embedded content of one seed file (works from a wheel and from a single binary)."""
    unpacked = getattr(sys, "_MEIPASS", None)
    if unpacked:  # the single binary carries them as data files (see packaging/binary.sh)
        return (Path(unpacked) / "looop" / "seeds" / name).read_bytes()
    from importlib import resources  # only a fresh data dir needs it

    node = resources.files("looop.seeds")
    for part in name.split("/"):
        node = node.joinpath(part)
    return node.read_bytes()


def open_data_dir(data_dir: DataDir | None = None) -> DataDir:
    """Return a ready data dir: created with mode 0700 and seeded once, never overwriting a file.

    A data dir another user owns is refused (its files would steer this user's looop); nothing
    written below it follows a symbolic link (`fsio.confine`)."""
    dd = data_dir or DataDir.from_env()
    confine(dd.root)
    if _checked_root(dd) and dd.seeded_marker.exists() and dd.config.exists():
        _check_journal(dd)
        return dd
    try:
        ensure_dir(dd.root)
        _checked_root(dd)
        os.close(open_private(dd.store_lock, os.O_WRONLY))
        with StoreLock.for_path(dd.store_lock).held():
            for directory in dd.directories():
                ensure_dir(directory)
            if not dd.seeded_marker.exists():
                _seed(dd.root)
                atomic_write(dd.seeded_marker, b"seeded by looop\n")
            seed_config(dd.config)
    except PermissionError as exc:
        raise StorageError(f"cannot create the data dir {dd.root}: {exc.strerror}") from None
    _check_journal(dd)
    return dd


def _check_journal(dd: DataDir) -> None:
    """Every move is journaled: a journal that cannot take a line (a link planted there, no
    permission) fails the verb before it moves anything, not after."""
    os.close(open_private(dd.journal, os.O_WRONLY | os.O_APPEND))


def _checked_root(dd: DataDir) -> bool:
    """Refuse a data dir (or one of its directories) that another user owns or may write into:
    its files steer this user's looop, and what is planted there between two verbs would be
    trusted. One that is only readable by others is made private again. False when there is
    no data dir yet."""
    try:
        info = os.stat(dd.root)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageError(f"cannot open the data dir {dd.root}: {exc.strerror}") from None
    problem = why_untrusted(info)
    if problem:
        raise StorageError(f"refusing the data dir {dd.root}: it is {problem}")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(dd.root, DIR_MODE)  # ours, left readable by others by a umask or a chmod
    for directory in dd.directories()[1:]:
        try:
            inner = os.lstat(directory)
        except FileNotFoundError:
            continue
        shown = directory.relative_to(dd.root)
        if stat.S_ISLNK(inner.st_mode):  # said as the writers say it
            raise link_refused(str(shown), os.readlink(directory))
        problem = why_untrusted(inner)
        if problem:
            raise StorageError(f"refusing the data dir {dd.root}: {shown}/ is {problem}")
    return True


def _seed(root: Path) -> None:
    for name in SEED_FILES:
        target = root / name
        if target.exists():
            continue
        mode = 0o700 if name.endswith(".sh") else 0o600
        atomic_write(target, seed_bytes(name), mode=mode)
