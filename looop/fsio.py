"""Crash-safe file primitives: atomic writes, tolerant JSON reads, appends, and the store lock."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from looop.errors import CorruptFile

if TYPE_CHECKING:  # fasteners costs a reader ~10 ms of imports: only writers load it
    import fasteners

FILE_MODE = 0o600
DIR_MODE = 0o700
JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
SCHEMA_VERSION = 1


def fsync_dir(path: Path) -> None:
    """Persist a rename or unlink inside `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:  # a write or fsync names no file: say which (a full disk, a quota)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Atomically write `value` (stamped with the schema version) as readable JSON."""
    atomic_write(path, orjson.dumps({"v": SCHEMA_VERSION, **value}, option=JSON_OPTIONS))


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


def append_line(path: Path, line: str) -> None:
    """Append one line durably; O_APPEND keeps concurrent appenders from overwriting each other."""
    data = (line.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
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


def tail_lines(path: Path, count: int, block: int = 8192) -> list[str]:
    """The last `count` lines of a text file, read from its end."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= count:
            start = max(0, end - block)
            handle.seek(start)
            data = handle.read(end - start) + data
            end = start
    lines = data.decode(errors="replace").splitlines()
    return lines[-count:] if count else []


def private_lock(path: Path) -> fasteners.InterProcessLock:
    """A fasteners lock whose file is created 0600 (fasteners would follow the umask)."""
    import fasteners

    with contextlib.suppress(FileNotFoundError):  # the directory may not exist yet
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    return fasteners.InterProcessLock(str(path))


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
    """Create `path` (and parents) private to this user."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
