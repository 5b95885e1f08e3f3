"""The mailbox: serves the control socket and wakes waiters the instant the world changes."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from looop import control
from looop.actions import state_output
from looop.errors import LooopError, StorageError
from looop.fsio import atomic_write
from looop.paths import DataDir
from looop.state import gather
from looop.supervisor import Link, SupervisedActor, tell_quietly
from looop.tick import watched_dirs
from looop.watch import DirWatcher

WATCH_TICK = control.KEEPALIVE
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """A request read from the socket, with the channel to reply on."""

    channel: control.Channel
    request: dict[str, Any]


@dataclass(frozen=True)
class Changed:
    """Something under the data dir changed."""


@dataclass(frozen=True)
class Keepalive:
    """Time to tell every client still waiting for its reply that the daemon hears it."""


Handler = Callable[[dict[str, Any]], dict[str, Any]]
World = Callable[[], dict[str, Any]]
"""The state as `gather` reads it, read at most once per change however many need it."""


@dataclass(frozen=True)
class _WorldWaiter:
    """A `_ wait` blocked until the world hash differs from `since`; `as_json` None means it wants
    only the hash (and gathers itself), else the printed state in that format."""

    channel: control.Channel
    since: str
    as_json: bool | None


def _identity(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_dev, info.st_ino, info.st_ctime_ns  # an inode number alone may be reused


def _format(request: dict[str, Any]) -> bool:
    return request.get("format") != "text"


class MailboxActor(SupervisedActor):
    """Holds the waiters of `_ wait` and `_ ask`; other requests go to `handlers` by their `op`."""

    def __init__(
        self,
        dd: DataDir,
        handlers: dict[str, Handler],
        link: Link,
        on_change: Callable[[World], bool] | None = None,
    ) -> None:
        super().__init__(link)
        self.dd = dd
        self.handlers = handlers
        self.on_change = on_change
        self._server: socket.socket | None = None
        self._bound: tuple[int, int, int] | None = None  # the socket file it bound
        self._closing = threading.Event()
        self._world_waiters: list[_WorldWaiter] = []
        self._answer_waiters: list[tuple[control.Channel, str]] = []
        self._pending: list[control.Channel] = []  # every request not yet replied to

    def started(self) -> None:
        self._server = control.listen(self.dd)
        self._bound = _identity(os.stat(control.socket_path(self.dd)))
        self.spawn(self._accept_loop, "mailbox-accept")
        self.spawn(self._watch_loop, "mailbox-watch")

    def cleanup(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            path = control.socket_path(self.dd)
            with contextlib.suppress(FileNotFoundError):
                if _identity(os.stat(path)) == self._bound:  # not a new `up`'s (our data dir went)
                    os.unlink(path)
        for channel in [w.channel for w in self._world_waiters] + [c for c, _ in self._answer_waiters]:
            channel.reply({"ok": False, "error": "looop is going down"})

    def handle(self, message: Any) -> Any:
        if isinstance(message, Incoming):
            if message.channel.closed():
                return None  # the client gave up (we were stopped, say): carry nothing out for it
            self._pending = [c for c in self._pending if not c.done] + [message.channel]
            self._incoming(message.channel, message.request)
        elif isinstance(message, Keepalive):
            self._pending = [c for c in self._pending if not c.done]
            for channel in self._pending:
                channel.keepalive()
        elif isinstance(message, Changed):
            self._changed()
        else:
            super().handle(message)

    def _changed(self) -> None:
        """Let `on_change` see the world (it has a new ask's screen written first), then wake
        whoever waits for it."""
        world: World = functools.cache(lambda: gather(self.dd))
        if self.on_change is not None and self.on_change(world):
            world = functools.cache(lambda: gather(self.dd))  # screens were written: read again
        self._check(world)

    # threads ----------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        server = self._server
        assert server is not None
        while not self._closing.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closing.is_set():
                    return
                raise
            # a client that connects and sends nothing must not hold up the next one
            reader = threading.Thread(
                target=self._read_request, args=(conn,), name="mailbox-read", daemon=True
            )
            reader.start()

    def _read_request(self, conn: socket.socket) -> None:
        """Read one connection's request (each read bounded) and hand it to the actor."""
        try:
            if control.peer_uid(conn) not in (None, os.getuid()):
                control.send_quietly(conn, {"ok": False, "error": "refused: another user"})
                return
            conn.settimeout(control.REQUEST_TIMEOUT)
            request = control.read_request(conn)
            if (caller := control.peer_pid(conn)) is not None:
                request["caller"] = caller  # the kernel's word beats the client's
        except LooopError as exc:
            control.send_quietly(conn, {"ok": False, "error": exc.message, "code": exc.exit_code})
            return
        except (OSError, EOFError):
            conn.close()
            return
        conn.settimeout(control.SEND_TIMEOUT)
        tell_quietly(self.actor_ref, Incoming(control.Channel(conn), request))

    def _watch_loop(self) -> None:
        me = self.actor_ref
        kept_alive = time.monotonic()
        with DirWatcher() as watcher:
            while not self._closing.is_set():
                watcher.watch(d for d in watched_dirs(self.dd) if d.is_dir())
                if watcher.wait(WATCH_TICK):
                    tell_quietly(me, Changed())
                if time.monotonic() - kept_alive >= control.KEEPALIVE:
                    kept_alive = time.monotonic()
                    tell_quietly(me, Keepalive())

    # requests ---------------------------------------------------------------------------------

    def _incoming(self, conn: control.Channel, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op in ("wait", "wait_print"):
            # wait_print: reply with the state as `_ wait` prints it (see looop.fastclient)
            shown = _format(request) if op == "wait_print" else None
            self._world_waiters.append(_WorldWaiter(conn, str(request.get("since", "")), shown))
            self._changed()  # an ask filed since the last change is not shown before its screen
        elif op == "state":
            threading.Thread(target=self._serve_state, args=(conn, _format(request)), daemon=True).start()
        elif op == "answer":
            self._answer_waiters.append((conn, str(request.get("ask", ""))))
            self._check()
        elif op == "ping":
            conn.reply({"ok": True, "pid": os.getpid()})
        elif isinstance(op, str) and op in self.handlers:
            # a handler may wait (a worker starting or ending): never on the mailbox's thread
            threading.Thread(
                target=self._serve, args=(conn, self.handlers[op], request), name=f"mailbox-{op}", daemon=True
            ).start()
        else:
            conn.reply({"ok": False, "error": f"unknown op {op!r}"})

    @staticmethod
    def _serve(conn: control.Channel, handler: Handler, request: dict[str, Any]) -> None:
        try:
            reply = handler(request)
        except LooopError as exc:
            reply = {"ok": False, "error": exc.message, "code": exc.exit_code}
        except OSError as exc:  # a full disk, a missing directory: name it, as the entry does
            target = f" {exc.filename}" if exc.filename else ""
            error = f"cannot access{target}: {exc.strerror or exc}"
            reply = {"ok": False, "error": error, "code": StorageError.exit_code}
        except Exception as exc:
            log.exception("request %r failed", request.get("op"))
            reply = {"ok": False, "error": f"looop failed: {exc!r}", "code": 1}
        conn.reply(reply)

    def _serve_state(self, conn: control.Channel, as_json: bool) -> None:
        try:
            output = state_output(gather(self.dd), as_json)
        except Exception as exc:
            log.exception("state request failed")
            conn.send(f"error 1 looop failed: {exc!r}\n".encode())
            return
        conn.send(b"ok\n" + output)

    def _check(self, world: World | None = None) -> None:
        """Reply to every waiter whose condition now holds; forget those who hung up."""
        self._world_waiters = [w for w in self._world_waiters if not w.channel.closed()]
        self._answer_waiters = [(c, a) for c, a in self._answer_waiters if not c.closed()]
        if self._world_waiters:
            state = world() if world is not None else gather(self.dd)
            digest = state["world_hash"]
            due = [w for w in self._world_waiters if w.since != digest]
            self._world_waiters = [w for w in self._world_waiters if w.since == digest]
            if any(w.as_json is not None for w in due):
                atomic_write(self.dd.last_tick_hash, (digest + "\n").encode())
            shown: dict[bool, bytes] = {}  # rendered once per format, however many wait
            for waiter in due:
                if waiter.as_json is None:
                    waiter.channel.reply({"ok": True, "world_hash": digest})
                else:
                    if waiter.as_json not in shown:
                        shown[waiter.as_json] = b"ok\n" + state_output(state, waiter.as_json)
                    waiter.channel.send(shown[waiter.as_json])
        waiting: list[tuple[control.Channel, str]] = []
        for conn, ask_id in self._answer_waiters:
            try:
                settled = self.dd.answer(ask_id).exists()
            except LooopError:
                settled = True  # an invalid id: let the client find out from the files
            if settled:
                conn.reply({"ok": True, "ask": ask_id})
            else:
                waiting.append((conn, ask_id))
        self._answer_waiters = waiting
