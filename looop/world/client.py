"""The client of the pulse's control socket: JSON lines over a private unix socket.

Files stay the source of truth; the socket only makes waiting instant and lets verbs reach the
daemon. Every read is bounded: the daemon sends a blank line every KEEPALIVE seconds on each
connection whose reply is pending, and a client that hears nothing for SILENCE seconds treats
the daemon as not answering (waits then watch the files alone; verbs that need it fail saying so).
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, overload

import orjson

from looop.base.errors import CodedError, InvalidInput, LooopError, NotAnswering, NotRunning
from looop.base.watching import POLL_INTERVAL, DirWatcher
from looop.store.paths import NOISE, DataDir
from looop.world.protocol import (
    MAX_LINE,
    Killed,
    Request,
    Started,
    Told,
    WorkerKill,
    WorkerRequest,
    WorkerResume,
    WorkerStart,
    WorkerTell,
    encode,
    socket_path,
    too_large,
)

T = TypeVar("T")

SILENCE = 6.0
"""A client that hears nothing (not even a keepalive) for this long stops trusting the socket."""
GRACE = 6.0
"""How long after the last change its own watch saw a client waits for the daemon's word before
it looks itself (the daemon missed the change). Longer than the daemon holds a wake after the
last change (a burst settling, a new ask's screen written); counted from the last change, not the
first, for a change the daemon rightly kept quiet about (a worker's state) may come just before
an ask whose screen is still being written. At most `GRACE_MOST` after the first."""
GRACE_MOST = 30.0

# the client ------------------------------------------------------------------------------------


def _daemon(dd: DataDir) -> str:
    """`looop (pid N)` as the status file names the `up` process, for messages."""
    from looop.store.pulse_record import read_status

    pid = read_status(dd).get("pid")
    return f"looop (pid {pid})" if isinstance(pid, int) else "looop"


def _unreachable(dd: DataDir) -> LooopError:
    """Why nothing accepts on the socket: looop is not up, or its process runs without serving it
    (its tree died, say of a full disk, or the socket file was removed)."""
    from looop.store.pulse_record import read_status

    status = read_status(dd)
    if status.get("running"):
        return NotAnswering(
            f"looop (pid {status.get('pid')}) runs but does not serve {socket_path(dd)} "
            f"(see {dd.log}; `looop down`, then `looop up`)"
        )
    return NotRunning("looop is not up (start it with `looop up`)")


def _silent(dd: DataDir) -> NotAnswering:
    return NotAnswering(f"{_daemon(dd)} is not answering (stopped or wedged?)")


def _connect(dd: DataDir) -> socket.socket:
    """A connection to the `up` process; `NotRunning` when nothing listens on the socket."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(SILENCE)
    try:
        conn.connect(os.fsencode(socket_path(dd)))
    except TimeoutError:  # its backlog is full: it has not accepted for a long while
        conn.close()
        raise _silent(dd) from None
    except OSError:
        conn.close()
        raise _unreachable(dd) from None
    return conn


class _Closed(Exception):
    """The daemon closed the connection before its reply was complete."""


class _Replies:
    """The reply line on a client's connection, the daemon's blank keepalive lines skipped."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = bytearray()

    def receive(self) -> dict[str, Any] | None:
        """Read once (bounded by the socket's timeout): the reply once it is complete, else None.

        `_Closed` when the daemon hung up first or sent something that is not a JSON object."""
        chunk = self.conn.recv(1 << 16)
        if not chunk:
            raise _Closed
        self.buffer += chunk
        del self.buffer[: len(self.buffer) - len(self.buffer.lstrip(b"\n"))]
        end = self.buffer.find(b"\n")
        if end < 0:
            return None
        try:
            value = orjson.loads(self.buffer[:end])
        except orjson.JSONDecodeError:
            raise _Closed from None
        if not isinstance(value, dict):
            raise _Closed
        return value


def exchange(dd: DataDir, message: Request, timeout: float | None) -> dict[str, Any]:
    """Send one request and return its reply.

    `NotRunning` when nothing listens (looop is not up); `InvalidInput` for a request above
    MAX_LINE; `NotAnswering` when the daemon is silent for SILENCE seconds (keepalives count as
    heard), has not replied after `timeout`, or closes the connection without a reply."""
    data = encode(message)
    if len(data) > MAX_LINE:
        raise InvalidInput(too_large(len(data)))
    deadline = None if timeout is None else time.monotonic() + timeout
    conn = _connect(dd)
    try:
        view = memoryview(data)
        for start in range(0, len(data), 1 << 20):  # SILENCE bounds each MiB, not the whole prompt
            conn.sendall(view[start : start + (1 << 20)])
        replies = _Replies(conn)
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise NotAnswering(f"{_daemon(dd)} did not reply within {timeout:g}s")
            conn.settimeout(SILENCE if remaining is None else min(SILENCE, remaining))
            try:
                reply = replies.receive()
            except TimeoutError:
                if remaining is not None and remaining <= SILENCE:
                    continue  # the deadline, not the silence: say so above
                raise _silent(dd) from None
            if reply is not None:
                return reply
    except TimeoutError:  # sending: it stopped reading
        raise _silent(dd) from None
    except (_Closed, OSError) as exc:
        why = f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""
        raise NotAnswering(f"{_daemon(dd)} closed the connection without a reply{why}") from None
    finally:
        conn.close()


def request(dd: DataDir, message: Request, timeout: float | None) -> dict[str, Any] | None:
    """Send one request and wait up to `timeout` for its reply; None if the daemon is unreachable,
    goes away, or does not answer in time."""
    try:
        return exchange(dd, message, timeout)
    except LooopError:
        return None


@overload
def call(dd: DataDir, message: WorkerStart | WorkerResume, timeout: float | None) -> Started: ...
@overload
def call(dd: DataDir, message: WorkerKill, timeout: float | None) -> Killed: ...
@overload
def call(dd: DataDir, message: WorkerTell, timeout: float | None) -> Told: ...
def call(dd: DataDir, message: WorkerRequest, timeout: float | None) -> Any:
    """A worker verb, which needs the `up` process: the success reply of its op, or the error
    that says why there is none (see `exchange`), or the daemon's own error with its exit code."""
    reply = exchange(dd, message, timeout)
    if not reply.get("ok"):
        code = reply.get("code")
        raise CodedError(str(reply.get("error", "the request failed")), code if isinstance(code, int) else 1)
    return reply


def _subscribe(dd: DataDir, message: Request) -> socket.socket | None:
    """A connection with `message` sent on it, or None when the daemon cannot take it."""
    try:
        conn = _connect(dd)
    except LooopError:
        return None
    try:
        conn.sendall(encode(message))
    except OSError:
        conn.close()
        return None
    return conn


def wait_via_daemon(
    dd: DataDir,
    message: Request,
    directories: Callable[[], Iterable[Path]],
    check: Callable[[], T | None],
    timeout: float | None,
    recheck: float | None = None,
) -> T | None:
    """`check()` once it is not None; None after `timeout` (checked once more then).

    While the `up` process answers, only its word wakes the caller: it lets a burst of changes
    settle and shows a new ask once its worker's screen is written. When it does not answer
    (not up, or silent for SILENCE seconds: stopped, wedged) the caller watches `directories()`
    itself, and looks again every `recheck` seconds (facts no file event announces: a process
    gone). The files decide, never the reply: a wake-up only means "look again"."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with DirWatcher(NOISE) as watcher:
        conn = _subscribe(dd, message)
        replies = None if conn is None else _Replies(conn)
        heard = looked = time.monotonic()
        # when our own watch first and last saw a change the daemon has not woken us for
        unsaid: tuple[float, float] | None = None
        look, resubscribe = True, False
        try:
            while True:
                if look:
                    looked, unsaid = time.monotonic(), None
                    watcher.watch(d for d in directories() if d.is_dir())
                    result = check()
                    if result is not None:
                        return result
                if resubscribe:  # once woken and nothing was news for us: wait anew
                    resubscribe = False
                    conn = _subscribe(dd, message)
                    replies = None if conn is None else _Replies(conn)
                    heard = time.monotonic()
                now = time.monotonic()
                remaining = None if deadline is None else deadline - now
                if remaining is not None and remaining <= 0:
                    return check()
                bounds = [remaining, None if watcher.event_driven else POLL_INTERVAL]
                if conn is None:
                    bounds += [recheck and looked + recheck - now]
                else:
                    bounds += [heard + SILENCE - now]
                    if unsaid is not None:
                        bounds += [min(unsaid[1] + GRACE, unsaid[0] + GRACE_MOST) - now]
                known = [b for b in bounds if b is not None]
                readable = [fd for fd in (watcher.fileno(), -1 if conn is None else conn.fileno()) if fd >= 0]
                ready, _, _ = select.select(readable, [], [], max(0.0, min(known)) if known else None)
                # polling, `wait(0)` lists the directories again; inotify, it reads the queued events
                changed = (not watcher.event_driven or watcher.fileno() in ready) and watcher.wait(0)
                now = time.monotonic()
                if changed:
                    unsaid = (now if unsaid is None else unsaid[0], now)
                due = recheck is not None and now - looked >= recheck
                # while the daemon answers, its word (the burst settled, the screen written);
                # past GRACE, our own look all the same: the files decide, whatever it missed
                overdue = unsaid is not None and (now - unsaid[1] >= GRACE or now - unsaid[0] >= GRACE_MOST)
                look = overdue or (conn is None and (changed or due))
                if conn is None or replies is None:
                    continue
                if conn.fileno() in ready:
                    heard = time.monotonic()
                    try:
                        reply = replies.receive()
                    except (_Closed, OSError):
                        reply = {"ok": False}
                    if reply is not None:  # woken (look again, and wait anew) or refused
                        conn.close()
                        conn = replies = None
                        resubscribe = bool(reply.get("ok"))
                        look = True
                elif time.monotonic() - heard >= SILENCE:
                    conn.close()  # not answering: the files alone from now on
                    conn = replies = None
                    look = True
        finally:
            if conn is not None:
                conn.close()
