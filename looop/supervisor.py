"""An OTP-style restart supervisor on pykka, which has no linking or supervision of its own.

A supervised actor reports how it ended (stopped, or crashed with an exception: in a message
handler, in `on_start`, or in a thread it started with `spawn`) to its supervisor by `tell`.
The supervisor restarts children one_for_one by their restart policy, within an intensity of
at most `max_restarts` in `period` seconds; past it, it stops its children in reverse start
order and escalates: it crashes itself, so that its own supervisor decides. The top one has no
supervisor: whatever ends it by a crash (an escalation, an exception in its own handling or in its
`on_start`) reaches `on_escalate`, after its children are stopped, so that the tree's top never
dies silently. A restart whose factory raises counts as one more crash of that child. The event
sink only reports: an exception in it is logged and never crashes the supervisor. Children only
ever `tell` their supervisor, so that a supervisor blocking on a child's stop can never deadlock
with it.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pykka

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0


class Restart(enum.Enum):
    """When a child that ended is started again."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after a crash
    TEMPORARY = "temporary"  # never


@dataclass(frozen=True)
class Link:
    """What a child needs to report its end: its supervisor, its name and its generation."""

    supervisor: pykka.ActorRef[Any]
    name: str
    generation: int

    def report(self, error: BaseException | None) -> None:
        tell_quietly(self.supervisor, ChildExited(self.name, self.generation, error))


def tell_quietly(ref: pykka.ActorRef[Any], message: Any) -> None:
    """`tell`, where a dead recipient means nobody is left to care."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


def tell_later(ref: pykka.ActorRef[Any], delay: float, message: Any) -> threading.Timer:
    """`tell_quietly` after `delay` seconds, from a timer thread (an actor never sleeps); the
    timer is returned so that its owner can cancel it."""
    timer = threading.Timer(delay, tell_quietly, [ref, message])
    timer.daemon = True
    timer.start()
    return timer


@dataclass(frozen=True)
class ChildExited:
    name: str
    generation: int
    error: BaseException | None


@dataclass(frozen=True)
class ThreadCrashed:
    """Sent by a thread started with `spawn` to its actor, which then crashes with `error`."""

    thread: str
    error: BaseException


class ChildCrashed(Exception):
    """An actor's thread raised; the actor dies of it so that its supervisor sees the crash."""


class Escalated(Exception):
    """A supervisor gave up after too many restarts."""


class SupervisedActor(pykka.ThreadingActor):
    """Base of every actor in looop's tree. Subclasses override `started`, `handle` and `cleanup`."""

    def __init__(self, link: Link | None = None) -> None:
        super().__init__()
        self.link = link
        self.failure: BaseException | None = None  # set before `cleanup` when the actor crashed
        self._reported = False

    # Subclass hooks ---------------------------------------------------------------------------

    def started(self) -> None:
        """Set up; runs in the actor's thread. An exception here is a crash."""

    def handle(self, message: Any) -> Any:
        """Handle a message that is not one of the supervision protocol's."""
        log.warning("%s got an unexpected message: %r", self, message)

    def cleanup(self) -> None:
        """Release what the actor holds; runs after a stop and after a crash alike."""

    # pykka hooks ------------------------------------------------------------------------------

    def on_start(self) -> None:
        try:
            self.started()
        except BaseException as exc:
            # pykka calls neither on_failure nor on_stop for an exception in on_start
            self._end(exc)
            raise

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ThreadCrashed):
            raise ChildCrashed(f"thread {message.thread} crashed: {message.error!r}") from message.error
        return self.handle(message)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._end(exception_value or RuntimeError("unknown failure"))

    def on_stop(self) -> None:
        self._end(None)

    def _end(self, error: BaseException | None) -> None:
        if self._reported:
            return
        self._reported = True
        self.failure = error
        try:
            self.cleanup()
        except Exception as exc:
            log.exception("%s failed to clean up", self)
            error = error or exc
        finally:
            self._ended(error)

    def _ended(self, error: BaseException | None) -> None:
        """Tell whoever watches this actor how it ended (after `cleanup`)."""
        if self.link is not None:
            self.link.report(error)

    # Threads ----------------------------------------------------------------------------------

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start a daemon thread whose exception crashes this actor (so the supervisor sees it)."""
        ref = self.actor_ref

        def run() -> None:
            try:
                target()
            except Exception as exc:
                log.exception("thread %s of %s crashed", name, ref)
                tell_quietly(ref, ThreadCrashed(name, exc))

        thread = threading.Thread(target=run, name=f"{name}", daemon=True)
        thread.start()
        return thread


@dataclass(frozen=True)
class ChildSpec:
    """How to start a child: `factory(link)` starts the actor and returns its ref."""

    name: str
    factory: Callable[[Link], pykka.ActorRef[Any]]
    restart: Restart = Restart.PERMANENT


@dataclass(frozen=True)
class Intensity:
    """At most `max_restarts` restarts within `period` seconds, `backoff` seconds apart at first."""

    max_restarts: int = 5
    period: float = 60.0
    backoff: float = 0.1
    max_backoff: float = 2.0


EventSink = Callable[[str, str, str], None]
"""Called with (event, child, detail) for every start, restart, give-up and escalation."""


@dataclass
class _Child:
    spec: ChildSpec
    generation: int
    ref: pykka.ActorRef[Any] | None
    started_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _RestartDue:
    name: str
    generation: int


@dataclass(frozen=True)
class StartChild:
    spec: ChildSpec


@dataclass(frozen=True)
class StopChild:
    name: str


@dataclass(frozen=True)
class WhichChildren:
    """Ask for `{name: ref}` of the children currently running."""


ASK_TIMEOUT = 10.0


def children_of(
    supervisor: pykka.ActorRef[Any], timeout: float = ASK_TIMEOUT
) -> dict[str, pykka.ActorRef[Any]]:
    """`{name: ref}` of the running children."""
    refs: dict[str, pykka.ActorRef[Any]] = supervisor.ask(WhichChildren(), timeout=timeout)  # type: ignore[assignment]
    return refs


def start_child(
    supervisor: pykka.ActorRef[Any], spec: ChildSpec, timeout: float = ASK_TIMEOUT
) -> pykka.ActorRef[Any]:
    """Start one more child (a worker, a new sensor) and return its ref."""
    ref: pykka.ActorRef[Any] = supervisor.ask(StartChild(spec), timeout=timeout)  # type: ignore[assignment]
    return ref


def stop_child(supervisor: pykka.ActorRef[Any], name: str, timeout: float = ASK_TIMEOUT) -> bool:
    """Stop a child for good (it is not restarted); False if there was none."""
    return bool(supervisor.ask(StopChild(name), timeout=timeout))


class Supervisor(SupervisedActor):
    """one_for_one supervision of an ordered list of children; a supervisor is itself supervisable."""

    def __init__(
        self,
        name: str,
        children: list[ChildSpec],
        intensity: Intensity,
        events: EventSink,
        on_escalate: Callable[[BaseException], None] | None = None,
        link: Link | None = None,
    ) -> None:
        super().__init__(link)
        self.name = name
        self._specs = list(children)
        self._intensity = intensity
        self._events = events
        self._on_escalate = on_escalate
        self._children: dict[str, _Child] = {}
        self._order: list[str] = []
        self._restarts: deque[float] = deque()
        self._stopping = False
        self._generation = 0
        self._timers: list[threading.Timer] = []

    def started(self) -> None:
        for spec in self._specs:
            self._start(spec)

    def handle(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            return self._child_exited(message)
        if isinstance(message, _RestartDue):
            child = self._children.get(message.name)
            if child is not None and child.generation == message.generation and child.ref is None:
                try:
                    self._start(child.spec)
                except Exception as exc:  # it could not even start: one more crash of that child
                    log.exception("%s: restarting %s failed", self.name, message.name)
                    self._child_exited(
                        ChildExited(message.name, self._children[message.name].generation, exc)
                    )
            return None
        if isinstance(message, StartChild):
            return self._start(message.spec)
        if isinstance(message, StopChild):
            return self._stop_child(message.name)
        if isinstance(message, WhichChildren):
            return {n: c.ref for n, c in self._children.items() if c.ref is not None}
        return super().handle(message)

    def cleanup(self) -> None:
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        for name in reversed(self._order):
            self._stop_child(name)

    def _ended(self, error: BaseException | None) -> None:
        super()._ended(error)
        if self.link is None and error is not None and self._on_escalate is not None:
            try:
                self._on_escalate(error)
            except Exception:
                log.exception("%s: on_escalate failed", self.name)

    # ------------------------------------------------------------------------------------------

    def _event(self, event: str, child: str, detail: str) -> None:
        """Report to the event sink; a sink that fails (a full disk) must not take the tree down."""
        try:
            self._events(event, child, detail)
        except Exception:
            log.exception("%s: could not report %s of %s (%s)", self.name, event, child, detail)

    def _start(self, spec: ChildSpec) -> pykka.ActorRef[Any]:
        existing = self._children.get(spec.name)
        if existing is not None and existing.ref is not None and existing.ref.is_alive():
            raise ValueError(f"{self.name}: a child named {spec.name} is already running")
        self._generation += 1
        link = Link(self.actor_ref, spec.name, self._generation)
        child = _Child(spec, self._generation, None)
        self._children[spec.name] = child
        if spec.name in self._order:
            self._order.remove(spec.name)
        self._order.append(spec.name)
        child.ref = spec.factory(link)
        return child.ref

    def _stop_child(self, name: str) -> bool:
        child = self._children.pop(name, None)
        if name in self._order:
            self._order.remove(name)
        if child is None or child.ref is None:
            return False
        try:
            child.ref.stop(block=True, timeout=STOP_TIMEOUT)
        except pykka.ActorDeadError:
            pass
        except pykka.Timeout:
            log.error("%s: child %s did not stop within %ss", self.name, name, STOP_TIMEOUT)
        return True

    def _child_exited(self, message: ChildExited) -> None:
        child = self._children.get(message.name)
        if self._stopping or child is None or child.generation != message.generation:
            return  # a stop we asked for, or news about an earlier incarnation
        child.ref = None
        crashed = message.error is not None
        policy = child.spec.restart
        if policy is Restart.TEMPORARY or (policy is Restart.TRANSIENT and not crashed):
            self._children.pop(message.name, None)
            self._order.remove(message.name)
            if crashed:
                self._event(
                    "crash", f"{self.name}/{message.name}", f"{message.error!r}; not restarted (temporary)"
                )
            return
        reason = f"crashed: {message.error!r}" if crashed else "stopped"
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > self._intensity.period:
            self._restarts.popleft()
        self._restarts.append(now)
        if len(self._restarts) > self._intensity.max_restarts:
            self._escalate(
                f"{message.name} {reason}; more than {self._intensity.max_restarts} restarts "
                f"in {self._intensity.period:g}s"
            )
            return
        delay = min(self._intensity.max_backoff, self._intensity.backoff * 2 ** (len(self._restarts) - 1))
        self._event("restart", f"{self.name}/{message.name}", f"{reason}; restarting in {delay:.1f}s")
        timer = tell_later(self.actor_ref, delay, _RestartDue(message.name, child.generation))
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]

    def _escalate(self, why: str) -> None:
        self._event("escalate", self.name, f"giving up: {why}; stopping its children")
        self.cleanup()
        raise Escalated(f"{self.name} gave up: {why}")
