"""The `up` process's control socket: JSON lines over a private unix socket.

Files stay the source of truth; the socket only makes waiting instant and lets verbs reach the
daemon. Every client call falls back (returns None) when the daemon is not there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from looop.errors import CodedError, NotRunning
from looop.locate import socket_file
from looop.paths import DataDir
from looop.watch import wait_until

T = TypeVar("T")

MAX_LINE = 1 << 20


def socket_path(dd: DataDir) -> Path:
    """`.control.sock` in the data dir, or a private runtime dir when that path is too long."""
    return Path(socket_file(str(dd.root)))


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def read_line(conn: socket.socket) -> dict[str, Any] | None:
    """One JSON object from `conn`, or None when it closes first or sends junk."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data.extend(chunk)
        if len(data) > MAX_LINE:
            return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def request(dd: DataDir, message: dict[str, Any], timeout: float | None) -> dict[str, Any] | None:
    """Send one request and wait up to `timeout` for its reply; None if the daemon is unreachable,
    goes away, or does not answer in time."""
    path = socket_path(dd)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(5.0)
        conn.connect(os.fsencode(path))
        conn.sendall(encode(message))
        conn.settimeout(timeout)
        return read_line(conn)
    except (OSError, TimeoutError):
        return None
    finally:
        conn.close()


def call(dd: DataDir, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """A request that needs the `up` process: its reply, `NotRunning` when it is not up, or the
    daemon's own error with its exit code."""
    reply = request(dd, message, timeout)
    if reply is None:
        raise NotRunning("looop is not up (start it with `looop up`)")
    if not reply.get("ok"):
        code = reply.get("code")
        raise CodedError(str(reply.get("error", "the request failed")), code if isinstance(code, int) else 1)
    return reply


def wait_via_daemon(
    dd: DataDir,
    message: dict[str, Any],
    directories: Callable[[], Iterable[Path]],
    check: Callable[[], T | None],
    timeout: float | None,
) -> T | None:
    """`check()` once it is not None: woken by the `up` process over the socket while it answers,
    else by watching `directories()` ourselves. None after `timeout`. The files decide, never the
    reply: a wake-up only means "look again"."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return None
        reply = request(dd, message, remaining)
        if reply is None or not reply.get("ok"):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            return wait_until(directories, check, remaining)


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux SO_PEERCRED), or None where unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def listen(dd: DataDir) -> socket.socket:
    """Bind the control socket with mode 0600, replacing a stale one."""
    path = socket_path(dd)
    if path.parent != dd.root:  # a runtime dir; never recreate a data dir deleted under `up`
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        server.bind(os.fsencode(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    server.listen(128)
    server.settimeout(1.0)
    return server


def send_quietly(conn: socket.socket, message: dict[str, Any]) -> None:
    """Reply and close; a client that went away is no error."""
    with contextlib.suppress(OSError):
        conn.sendall(encode(message))
    with contextlib.suppress(OSError):
        conn.close()


def send_raw(conn: socket.socket, data: bytes) -> None:
    """Send a raw reply (a status line, then output) and close; see `looop.fastclient`."""
    with contextlib.suppress(OSError):
        conn.sendall(data)
    with contextlib.suppress(OSError):
        conn.close()


def is_closed(conn: socket.socket) -> bool:
    """True when the client hung up (it sends nothing after its request)."""
    try:
        conn.setblocking(False)
        try:
            return conn.recv(1, socket.MSG_PEEK) == b""
        finally:
            conn.setblocking(True)
    except BlockingIOError:
        return False
    except OSError:
        return True
