"""The server's side of the control socket: binding it, reading one request per connection,
and each pending request's channel (keepalives, then its one reply)."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import orjson

from looop.base.errors import InvalidInput, LooopError, StorageError
from looop.store.paths import DataDir
from looop.world.protocol import MAX_LINE, encode, socket_path, too_large

log = logging.getLogger(__name__)

Reply = Callable[[dict[str, Any]], None]
"""Sends a request's one reply (`Channel.reply`: later calls are dropped); any thread may call it."""

REQUEST_TIMEOUT = 30.0
"""Server side: how long a client may take over each read of its request line."""
SEND_TIMEOUT = 10.0
"""Server side: how long a reply may take to leave when the client does not read it."""


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux SO_PEERCRED), or None where unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def peer_pid(conn: socket.socket) -> int | None:
    """The pid of the process at the other end (Linux SO_PEERCRED), or None where unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    pid = int(struct.unpack("3i", creds)[0])
    return pid if pid > 0 else None


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


def read_request(conn: socket.socket) -> dict[str, Any]:
    """The request line from `conn`, each read bounded by its timeout (TimeoutError).

    `InvalidInput` for a line above MAX_LINE (read to its end first, so that the client is still
    listening for the reply that says why) or one that is not a JSON object; EOFError when the
    client hangs up first."""
    data = bytearray()
    size = 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise EOFError
        end = chunk.find(b"\n")
        piece = chunk if end < 0 else chunk[: end + 1]
        size += len(piece)
        if size <= MAX_LINE:
            data += piece
        if end >= 0:
            break
    if size > MAX_LINE:
        raise InvalidInput(too_large(size))
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidInput("expected one JSON object per line")
    return value


def send_quietly(conn: socket.socket, message: dict[str, Any]) -> None:
    """Reply and close; a client that went away is no error."""
    _send_and_close(conn, encode(message))


def _send_and_close(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(data)
    with contextlib.suppress(OSError):
        conn.close()


def _ready_now(conn: socket.socket, events: int) -> bool:
    """True when `conn` is ready for `events` at once (poll: any fd number, unlike select)."""
    poller = select.poll()
    poller.register(conn, events)
    return bool(poller.poll(0))


def is_closed(conn: socket.socket) -> bool:
    """True when the client hung up (it sends nothing after its request)."""
    try:
        return _ready_now(conn, select.POLLIN) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class Channel:
    """The daemon's side of one request: a blank keepalive line now and then, then one reply.

    Thread-safe: a handler's thread replies while the server sends keepalives."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.done = False
        self._lock = threading.Lock()

    def keepalive(self) -> None:
        """Tell a waiting client the daemon still hears it; never blocks (a full buffer skips one)."""
        with self._lock:
            if self.done:
                return
            with contextlib.suppress(OSError, ValueError):
                if _ready_now(self.conn, select.POLLOUT):
                    self.conn.send(b"\n")

    def reply(self, message: dict[str, Any]) -> None:
        """The one reply, then close; later replies and keepalives are dropped."""
        with self._lock:
            if self.done:
                return
            self.done = True
        _send_and_close(self.conn, encode(message))

    def closed(self) -> bool:
        return self.done or is_closed(self.conn)


def failure(exc: Exception, op: object) -> dict[str, Any]:
    """The reply to a request that raised: looop's own errors as they are, an OSError named as
    the entry names it, anything else logged as the bug it is."""
    if isinstance(exc, LooopError):
        return {"ok": False, "error": exc.message, "code": exc.exit_code}
    if isinstance(exc, OSError):  # a full disk, a missing directory
        target = f" {exc.filename}" if exc.filename else ""
        return {
            "ok": False,
            "error": f"cannot access{target}: {exc.strerror or exc}",
            "code": StorageError.exit_code,
        }
    log.error("request %r failed", op, exc_info=exc)
    return {"ok": False, "error": f"looop failed: {exc!r}", "code": 1}
