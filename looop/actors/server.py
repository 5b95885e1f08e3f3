"""The socket server: serves the control socket and wakes waiters once a change has settled."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from looop.actors.session import RENDER_WAIT
from looop.base.errors import InvalidInput, LooopError
from looop.base.files import Identity, identity
from looop.base.watching import DirWatcher
from looop.daemon import channels
from looop.store.cursors import Facts, recall, remember
from looop.store.paths import NOISE, DataDir
from looop.supervisor import Link, SupervisedActor, tell_later, tell_quietly
from looop.world import protocol
from looop.world.protocol import Request, WorkerRequest
from looop.world.render import state_output
from looop.world.state import gather_facts
from looop.world.state_shape import State
from looop.world.waiting import watched_dirs
from looop.world.wakes import digest, news

WATCH_TICK = protocol.KEEPALIVE
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """A request read from the socket, with the channel to reply on."""

    channel: channels.Channel
    request: dict[str, Any]


@dataclass(frozen=True)
class Changed:
    """Something under the data dir changed."""


@dataclass(frozen=True)
class Keepalive:
    """Time to tell every client still waiting for its reply that the daemon hears it."""


@dataclass(frozen=True)
class Rendered:
    """A worker's screen is written after its new ask (see `Refresh.rendered`), as asked by
    look number `look`."""

    session: str
    look: int


@dataclass(frozen=True)
class _Settle:
    """Time to see whether a burst of changes is over."""


@dataclass(frozen=True)
class _RenderDue:
    """The screens asked for in render round `round` are overdue: show the asks without them."""

    round: int


@dataclass(frozen=True)
class _Looked:
    """A look at the world is done: its facts, and the workers asked to write their screens."""

    facts: Facts
    asked: tuple[str, ...]


Handler = Callable[[Request], dict[str, Any]]
"""Answers a request in a thread of its own (it may wait)."""
Fault = Callable[[dict[str, Any]], dict[str, Any]]
"""Answers a test-only request (`looop.daemon.faults`), unparsed, like a `Handler`."""
Route = Callable[[WorkerRequest, channels.Reply], None]
"""Hands a worker verb on to whoever replies (the fleet); never waits."""
OnChange = Callable[[State, Callable[[str], None]], list[str]]
"""Told the state after each settled change, and a callback for each worker whose screen it
has asked to be written (named in the returned list) before the waiters are woken."""

SETTLE = 0.01  # quiet this long, a burst of changes (one move makes several) is over
MAX_SETTLE = 0.1  # however long the burst: waiters are never kept longer than this by it
RENDER_DUE = RENDER_WAIT + 1.0  # the most waiters are held for a new ask's screen


@dataclass(frozen=True)
class _WorldWaiter:
    """A `_ wait` blocked until the world holds a fact not in `seen` (the facts behind `since`;
    None when those are not kept: then until the world hash differs from `since`)."""

    channel: channels.Channel
    since: str
    seen: Facts | None


class ServerActor(SupervisedActor):
    """Holds the waiters of `_ wait` and `_ ask`; other requests go to `handlers` by their `op`.

    A change is looked at once the burst it belongs to has settled (SETTLE), so that one move
    wakes a waiter once, with the state it led to; a new ask is shown once its worker's screen
    is written (`on_change`), and nothing here waits for that: the worker says when."""

    def __init__(
        self,
        dd: DataDir,
        handlers: dict[str, Handler],
        link: Link,
        on_change: OnChange | None = None,
        routes: dict[str, Route] | None = None,
        faults: dict[str, Fault] | None = None,
    ) -> None:
        super().__init__(link)
        self.dd = dd
        self.handlers = handlers
        self.routes = routes or {}
        self.faults = faults or {}
        self.on_change = on_change
        self._server: socket.socket | None = None
        self._bound: Identity | None = None  # the socket file it bound
        self._closing = threading.Event()
        self._world_waiters: list[_WorldWaiter] = []
        self._answer_waiters: list[tuple[channels.Channel, str]] = []
        self._pending: list[channels.Channel] = []  # every request not yet replied to
        self._burst: tuple[float, float] | None = None  # a settling burst: (first, last change)
        self._rendering: dict[str, int] = {}  # workers whose screens the waiters wait for: look
        self._written: set[str] = set()  # screens the look under way asked for, already written
        self._look_count = 0  # numbers the looks
        self._render_round = 0  # counts the times waiters began to wait for screens
        self._looking = False  # a look is under way in its thread
        self._look_again = False  # and something changed since it began
        self._facts: Facts = frozenset()  # what the last look found

    def started(self) -> None:
        self._server = channels.listen(self.dd)
        self._bound = identity(protocol.socket_path(self.dd))
        self.spawn(self._accept_loop, "server-accept")
        self.spawn(self._watch_loop, "server-watch")

    def cleanup(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            path = protocol.socket_path(self.dd)
            with contextlib.suppress(FileNotFoundError):
                if identity(path) == self._bound:  # not a new `up`'s (our data dir went)
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
            self._check_answers()  # an answer is a file that exists: no burst to wait for
            now = time.monotonic()
            if self._burst is None:
                tell_later(self.actor_ref, SETTLE, _Settle())
            self._burst = (now if self._burst is None else self._burst[0], now)
        elif isinstance(message, _Settle):
            self._settle()
        elif isinstance(message, Rendered):
            self._rendered(message)
        elif isinstance(message, _RenderDue):
            if message.round == self._render_round and self._rendering:
                log.warning("screens of %s not written in time", ", ".join(sorted(self._rendering)))
                self._rendering.clear()
                self._look()
        elif isinstance(message, _Looked):
            self._looked(message)
        else:
            super().handle(message)

    def _settle(self) -> None:
        if self._burst is None:
            return
        first, last = self._burst
        now = time.monotonic()
        if now - last < SETTLE and now - first < MAX_SETTLE:
            tell_later(self.actor_ref, min(SETTLE - (now - last), MAX_SETTLE - (now - first)), _Settle())
            return
        self._burst = None
        self._look()

    def _rendered(self, message: Rendered) -> None:
        if self._rendering.get(message.session) == message.look:
            del self._rendering[message.session]
            if not self._rendering and self._burst is None and not self._looking:
                self._check_world(self._facts)  # a screen is no fact: the look still holds
        elif self._looking and message.look == self._look_count:
            # the worker was quicker than the look's own report (`_Looked`): remember it
            self._written.add(message.session)

    def _look(self) -> None:
        """Read the world and let `on_change` see it, in a thread of its own (the files may be
        slow to read; keepalives and requests go on meanwhile), one look at a time."""
        if self._looking:
            self._look_again = True
            return
        self._looking = True
        self._look_count += 1
        me, number = self.actor_ref, self._look_count

        def look() -> None:
            state, facts = gather_facts(self.dd)
            asked: list[str] = []
            if self.on_change is not None:
                asked = self.on_change(state, lambda session: tell_quietly(me, Rendered(session, number)))
            tell_quietly(me, _Looked(facts, tuple(asked)))

        self.spawn(look, "server-look")

    def _looked(self, looked: _Looked) -> None:
        """Wake whoever the world holds news for, unless a new ask's screen is still being
        written, or the world changed again meanwhile (then look again first)."""
        self._looking = False
        self._facts = looked.facts
        awaited = [session for session in looked.asked if session not in self._written]
        self._written.clear()
        if awaited:
            if not self._rendering:
                self._render_round += 1
                tell_later(self.actor_ref, RENDER_DUE, _RenderDue(self._render_round))
            self._rendering.update(dict.fromkeys(awaited, self._look_count))
        if self._look_again:
            self._look_again = False
            self._look()
        elif not self._rendering and self._burst is None:
            self._check_world(looked.facts)

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
                target=self._read_request, args=(conn,), name="server-read", daemon=True
            )
            reader.start()

    def _read_request(self, conn: socket.socket) -> None:
        """Read one connection's request (each read bounded) and hand it to the actor."""
        try:
            if channels.peer_uid(conn) not in (None, os.getuid()):
                channels.send_quietly(conn, {"ok": False, "error": "refused: another user"})
                return
            conn.settimeout(channels.REQUEST_TIMEOUT)
            request = channels.read_request(conn)
            if (caller := channels.peer_pid(conn)) is not None:
                request["caller"] = caller  # the kernel's word beats the client's
        except LooopError as exc:
            channels.send_quietly(conn, {"ok": False, "error": exc.message, "code": exc.exit_code})
            return
        except (OSError, EOFError):
            conn.close()
            return
        conn.settimeout(channels.SEND_TIMEOUT)
        tell_quietly(self.actor_ref, Incoming(channels.Channel(conn), request))

    def _watch_loop(self) -> None:
        me = self.actor_ref
        kept_alive = time.monotonic()
        with DirWatcher(NOISE) as watcher:
            while not self._closing.is_set():
                watcher.watch(d for d in watched_dirs(self.dd) if d.is_dir())
                if watcher.wait(WATCH_TICK):
                    tell_quietly(me, Changed())
                if time.monotonic() - kept_alive >= protocol.KEEPALIVE:
                    kept_alive = time.monotonic()
                    tell_quietly(me, Keepalive())

    # requests ---------------------------------------------------------------------------------

    def _incoming(self, conn: channels.Channel, raw: dict[str, Any]) -> None:
        """Parse the request once (a bad one is told why), then serve it by its op."""
        op = raw.get("op")
        if isinstance(op, str) and op in self.faults:
            self._thread(conn, op, lambda: self.faults[op](raw))
            return
        try:
            request = protocol.parse_request(raw)
        except protocol.UnknownOp as exc:
            conn.reply({"ok": False, "error": exc.message})
            return
        except InvalidInput as exc:
            conn.reply(channels.failure(exc, op))
            return
        if request["op"] == "wait":
            since = request["since"]
            self._world_waiters.append(_WorldWaiter(conn, since, recall(self.dd, since)))
            if self._burst is None and not self._rendering:
                self._look()  # news since the client last looked, unless a look is under way
        elif request["op"] == "state":
            as_json = request["format"] != "text"
            threading.Thread(target=self._serve_state, args=(conn, as_json), daemon=True).start()
        elif request["op"] == "answer":
            self._answer_waiters.append((conn, request["ask"]))
            self._check_answers()
        elif request["op"] == "ping":
            conn.reply({"ok": True, "pid": os.getpid()})
        elif protocol.is_worker_verb(request) and request["op"] in self.routes:
            self.routes[request["op"]](request, conn.reply)
        elif request["op"] in self.handlers:
            handler = self.handlers[request["op"]]
            self._thread(conn, request["op"], lambda: handler(request))
        else:
            conn.reply({"ok": False, "error": f"unknown op {op!r}"})

    @staticmethod
    def _thread(conn: channels.Channel, op: str, serve: Callable[[], dict[str, Any]]) -> None:
        """Serve in a thread of its own: a handler may wait (a worker starting or ending), never
        on the server actor's thread."""

        def run() -> None:
            try:
                reply = serve()
            except Exception as exc:
                reply = channels.failure(exc, op)
            conn.reply(reply)

        threading.Thread(target=run, name=f"server-{op}", daemon=True).start()

    def _serve_state(self, conn: channels.Channel, as_json: bool) -> None:
        try:
            state, facts = gather_facts(self.dd)
            remember(self.dd, state["world_hash"], facts)
            output = state_output(state, as_json)
        except Exception as exc:
            log.exception("state request failed")
            conn.reply({"ok": False, "error": f"looop failed: {exc!r}", "code": 1})
            return
        conn.reply({"ok": True, "output": output.decode()})

    def _check_world(self, facts: Facts) -> None:
        """Wake every `_ wait` the world holds news for (it reads the state itself: the files
        decide); forget those who hung up."""
        self._world_waiters = [w for w in self._world_waiters if not w.channel.closed()]
        world_hash = digest(facts)
        waiting = []
        for waiter in self._world_waiters:
            if news(facts, waiter.seen, waiter.since):
                waiter.channel.reply({"ok": True, "world_hash": world_hash})
            else:
                waiting.append(waiter)
        self._world_waiters = waiting

    def _check_answers(self) -> None:
        """Reply to every `_ ask` whose answer is filed; forget those who hung up."""
        waiting: list[tuple[channels.Channel, str]] = []
        for conn, ask_id in self._answer_waiters:
            if conn.closed():
                continue
            try:
                settled = self.dd.answer(ask_id).exists()
            except LooopError:
                settled = True  # an invalid id: let the client find out from the files
            if settled:
                conn.reply({"ok": True, "ask": ask_id})
            else:
                waiting.append((conn, ask_id))
        self._answer_waiters = waiting
