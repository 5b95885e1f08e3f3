"""Crash-safe file primitives: atomic writes, tolerant JSON reads, appends, and the store lock;
the one rule for trusting a file, and writes that never follow a link out of a data dir."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from looop.base.errors import CorruptFile, StorageError

if TYPE_CHECKING:  # fasteners costs a reader ~10 ms of imports: only writers load it
    import fasteners

FILE_MODE = 0o600
DIR_MODE = 0o700
JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
SCHEMA_VERSION = 1


_confined: set[str] = set()  # data dir roots: nothing written below one follows a symbolic link


def why_untrusted(info: os.stat_result) -> str | None:
    """Why a file or directory with this `stat` is not this user's alone to change, or None.

    The rule for everything looop runs, reads settings from, or writes into: owned by this user
    (root included: owned by root) and not writable by group or others."""
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if info.st_uid != os.getuid():
        return f"owned by another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by other users"
    return None


def confine(root: Path) -> None:
    """From now on, refuse to write below `root` through a symbolic link (see `_open_parent`)."""
    _confined.add(os.path.abspath(root))


def _split(path: Path) -> tuple[str, list[str]] | None:
    """(the confining root, the parts of `path` below it), or None when no root holds `path`."""
    full = os.path.abspath(path)
    roots = [r for r in _confined if full.startswith(r.rstrip(os.sep) + os.sep)]
    if not roots:
        return None
    root = max(roots, key=len)
    return root, full[len(root.rstrip(os.sep)) + 1 :].split(os.sep)


def _refuse_link(dir_fd: int, name: str, shown: str) -> None:
    """Raise `StorageError` if `name` in `dir_fd` is a symbolic link."""
    try:
        target = os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return
    raise link_refused(shown, target)


def link_refused(shown: str, target: str) -> StorageError:
    """The one refusal of a symbolic link where looop would write (`shown` below the data dir)."""
    return StorageError(f"refusing to write through a symbolic link: {shown} -> {target}")


def _open_parent(path: Path) -> tuple[int, str]:
    """An fd of `path`'s directory and `path`'s name in it.

    Below a data dir the directory is reached from the root one component at a time without
    following a link (a link there is refused), so that what is written cannot land outside.
    Elsewhere the directory is opened as named."""
    split = _split(path)
    if split is None:
        return os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY), path.name
    root, parts = split
    return _walk(root, parts[:-1], create=False), parts[-1]


def _walk(root: str, parts: list[str], create: bool) -> int:
    """An fd of `root/parts...`, each part opened without following a link; `create` makes
    missing directories (0700) on the way."""
    if create:
        os.makedirs(root, DIR_MODE, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, part in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, DIR_MODE, dir_fd=fd)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    _refuse_link(fd, part, "/".join(parts[: depth + 1]))
                # name the full path (a dir_fd call names only the part): the user must find it
                raise OSError(exc.errno, exc.strerror, os.path.join(root, *parts[: depth + 1])) from None
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _shown(path: Path) -> str:
    split = _split(path)
    return "/".join(split[1]) if split else str(path)


def fsync_dir(path: Path) -> None:
    """Persist a rename or unlink inside `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE, durable: bool = True) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, never a mix;
    `durable` False skips the fsyncs, for a cache whose loss after a crash costs nothing."""
    dir_fd, name = _open_parent(path)
    try:
        tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                if durable:
                    os.fsync(handle.fileno())
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        if durable:
            os.fsync(dir_fd)
    except OSError as exc:  # a write or fsync names no file: say which (a full disk, a quota)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        os.close(dir_fd)


def write_json(path: Path, value: Mapping[str, Any]) -> None:
    """Atomically write `value` as readable JSON, stamped with this looop's schema version: what it
    writes is in its own schema, whichever one a record it rewrites was read from."""
    atomic_write(path, orjson.dumps({**value, "v": SCHEMA_VERSION}, option=JSON_OPTIONS))


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; raise `CorruptFile` (never a parser traceback) when it is not one."""
    data = path.read_bytes()
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptFile(str(path), f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CorruptFile(str(path), "expected a JSON object")
    return value


def open_private(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """`os.open(path, flags | O_CREAT | O_NOFOLLOW)`, reached as `_open_parent` does; a link at
    `path` itself is refused with `StorageError` too."""
    dir_fd, name = _open_parent(path)
    try:
        return os.open(name, flags | os.O_CREAT | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _refuse_link(dir_fd, name, _shown(path))
        raise
    finally:
        os.close(dir_fd)


def append_line(path: Path, line: str) -> None:
    """Append one line durably; O_APPEND keeps concurrent appenders from overwriting each other."""
    data = (line.rstrip("\n") + "\n").encode()
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except OSError as exc:  # os.write names no file: say which
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        os.close(fd)


def replace(source: Path, target: Path) -> None:
    """`os.replace` with both ends reached as `_open_parent` does."""
    src_fd, src_name = _open_parent(source)
    try:
        dst_fd, dst_name = _open_parent(target)
        try:
            os.replace(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def remove(path: Path) -> None:
    """Unlink `path` (a link itself, never what it points to); a missing file is fine."""
    dir_fd, name = _open_parent(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def remove_tree(path: Path) -> None:
    """Remove the directory `path` and everything in it, never following a link (a link is
    removed, not what it points to); a missing one is fine."""
    try:
        dir_fd, name = _open_parent(path)
    except FileNotFoundError:
        return
    try:
        _remove_entry(dir_fd, name)
    finally:
        os.close(dir_fd)


def _remove_entry(dir_fd: int, name: str) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)  # a file or a link: gone without looking through it
        return
    try:
        for entry in os.listdir(fd):
            _remove_entry(fd, entry)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=dir_fd)


MAX_TAIL_LINE = 512 * 1024  # a tail reads at most this much per line asked for (looop writes none longer)


def tail_lines(path: Path, count: int, block: int = 65536, max_line: int = MAX_TAIL_LINE) -> list[str]:
    """The last `count` lines of a text file, read from its end in linear time: each block once,
    and at most `(count + 1) * max_line` bytes (a line longer than that is left out)."""
    if count <= 0:
        return []
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    limit = (count + 1) * max_line
    chunks: list[bytes] = []
    with handle:
        end = handle.seek(0, os.SEEK_END)
        newlines = taken = 0
        while end > 0 and newlines <= count and taken < limit:
            start = max(0, end - block)
            handle.seek(start)
            chunk = handle.read(end - start)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
            taken += len(chunk)
            end = start
    data = b"".join(reversed(chunks))
    if end > 0:  # the first line read is cut: it began before the bytes read
        cut = data.find(b"\n")
        data = b"" if cut < 0 else data[cut + 1 :]
    return data.decode(errors="replace").splitlines()[-count:]


def private_lock(path: Path) -> fasteners.InterProcessLock:
    """A fasteners lock whose file is created 0600 (fasteners would follow the umask), and whose
    acquire raises FileNotFoundError when its directory is gone (fasteners would recreate it: a
    data dir deleted under a running `up` must stay deleted)."""
    with contextlib.suppress(FileNotFoundError):  # the directory may not exist yet
        os.close(open_private(path, os.O_WRONLY))
    return _lock_class()(str(path))


@functools.cache
def _lock_class() -> type[fasteners.InterProcessLock]:
    import fasteners

    class NoMkdirLock(fasteners.InterProcessLock):  # type: ignore[misc]
        lockfile: Any

        def _do_open(self) -> None:
            if self.lockfile is None or self.lockfile.closed:
                self.lockfile = open(self.path, "a")  # noqa: SIM115 - held open while locked

    return NoMkdirLock


class StoreLock:
    """The data dir's mutation lock: inter-process (fcntl) and, inside one process, per thread.

    fcntl locks belong to the process, so a second acquire from another thread would succeed
    silently and a nested release would drop the lock: a thread lock and a depth count guard both.
    """

    _locks: ClassVar[dict[Path, StoreLock]] = {}
    _locks_guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self._thread_lock = threading.RLock()
        self._process_lock = private_lock(path)
        self._depth = 0

    @classmethod
    def for_path(cls, path: Path) -> StoreLock:
        with cls._locks_guard:
            lock = cls._locks.get(path)
            if lock is None:
                lock = cls._locks[path] = cls(path)
            return lock

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._process_lock.acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._process_lock.release()


def ensure_dir(path: Path) -> None:
    """Create `path` (and parents) private to this user; below a data dir, never through a link."""
    split = _split(path)
    if split is None:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    else:
        os.close(_walk(*split, create=True))


Identity = tuple[int, int, int]
"""What tells a file from another made at the same path: device, inode (which a new file may
reuse at once) and its change time (which nothing changes on a lock file after it is made)."""


def identity(path: Path) -> Identity:
    return identity_of(os.stat(path))


def identity_of(info: os.stat_result) -> Identity:
    return info.st_dev, info.st_ino, info.st_ctime_ns
