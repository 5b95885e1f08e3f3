"""The restart supervisor, with real pykka actors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from looop.supervisor import (
    ChildSpec,
    Intensity,
    Link,
    Restart,
    StartChild,
    SupervisedActor,
    Supervisor,
    WhichChildren,
)

FAST = Intensity(max_restarts=3, period=30.0, backoff=0.01, max_backoff=0.05)


class Recorder:
    """Collects supervisor events and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.starts: list[str] = []
        self.stops: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, event: str, child: str, detail: str) -> None:
        with self.changed:
            self.events.append((event, child, detail))
            self.changed.notify_all()

    def note(self, bucket: list[str], name: str) -> None:
        with self.changed:
            bucket.append(name)
            self.changed.notify_all()

    def wait(self, predicate: Any, timeout: float = 10.0) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), (self.events, self.starts, self.stops)


class Counter(SupervisedActor):
    """Keeps a count; crashes on request, in its own thread or in a thread it started."""

    def __init__(self, name: str, rec: Recorder, link: Link) -> None:
        super().__init__(link)
        self.name, self.rec, self.count = name, rec, 0

    def started(self) -> None:
        self.rec.note(self.rec.starts, self.name)

    def handle(self, message: Any) -> Any:
        if message == "inc":
            self.count += 1
            return self.count
        if message == "crash":
            raise RuntimeError("boom")
        if message == "crash-in-thread":
            self.spawn(lambda: (_ for _ in ()).throw(ValueError("thread boom")), "helper")
            return None
        return super().handle(message)

    def cleanup(self) -> None:
        self.rec.note(self.rec.stops, self.name)


def counter(name: str, rec: Recorder, restart: Restart = Restart.PERMANENT) -> ChildSpec:
    return ChildSpec(name, lambda link: Counter.start(name, rec, link), restart)


def ref_of(sup: pykka.ActorRef[Any], name: str) -> pykka.ActorRef[Any]:
    refs = sup.ask(WhichChildren(), timeout=5)
    assert isinstance(refs, dict)
    ref: pykka.ActorRef[Any] = refs[name]
    return ref


@pytest.fixture(autouse=True)
def stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=10)


def test_a_crashed_child_is_restarted_with_fresh_state() -> None:
    rec = Recorder()
    sup = Supervisor.start("top", [counter("a", rec)], FAST, rec)
    first = ref_of(sup, "a")
    assert first.ask("inc", timeout=5) == 1
    assert first.ask("inc", timeout=5) == 2
    first.tell("crash")
    rec.wait(lambda: rec.starts.count("a") == 2)
    second = ref_of(sup, "a")
    assert second is not first
    assert second.ask("inc", timeout=5) == 1
    assert [e[0] for e in rec.events] == ["restart"]
    assert "boom" in rec.events[0][2]


def test_a_crash_in_a_thread_the_actor_started_is_noticed() -> None:
    rec = Recorder()
    sup = Supervisor.start("top", [counter("a", rec)], FAST, rec)
    ref_of(sup, "a").tell("crash-in-thread")
    rec.wait(lambda: rec.starts.count("a") == 2)
    assert "thread boom" in rec.events[0][2]


def test_a_crash_in_on_start_is_noticed() -> None:
    rec = Recorder()
    attempts: list[int] = []

    class FailsOnce(Counter):
        def started(self) -> None:
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("bad start")
            super().started()

    spec = ChildSpec("f", lambda link: FailsOnce.start("f", rec, link))
    Supervisor.start("top", [spec], FAST, rec)
    rec.wait(lambda: rec.starts == ["f"])
    assert "bad start" in rec.events[0][2]


def test_temporary_children_are_not_restarted_and_transient_ones_only_after_a_crash() -> None:
    rec = Recorder()
    sup = Supervisor.start(
        "top", [counter("temp", rec, Restart.TEMPORARY), counter("trans", rec, Restart.TRANSIENT)], FAST, rec
    )
    ref_of(sup, "temp").tell("crash")
    rec.wait(lambda: any(e[0] == "crash" for e in rec.events))
    ref_of(sup, "trans").tell("crash")
    rec.wait(lambda: rec.starts.count("trans") == 2)
    ref_of(sup, "trans").stop()
    rec.wait(lambda: rec.stops.count("trans") == 2)
    children = sup.ask(WhichChildren(), timeout=5)
    assert children == {}
    assert rec.starts.count("temp") == 1
    assert [e[0] for e in rec.events] == ["crash", "restart"]


def test_a_child_that_keeps_crashing_escalates_and_stops_the_rest_in_reverse_order() -> None:
    rec = Recorder()
    escalated = threading.Event()

    def on_escalate(_why: object) -> None:
        escalated.set()
        with rec.changed:  # wake `rec.wait`, which waits on the recorder's condition
            rec.changed.notify_all()

    sup = Supervisor.start(
        "top", [counter("a", rec), counter("b", rec), counter("c", rec)], FAST, rec, on_escalate
    )
    for _ in range(FAST.max_restarts + 1):
        ref = ref_of(sup, "b")  # answered after the supervisor's on_start: the counts below are settled
        n = rec.starts.count("b")
        ref.tell("crash")
        rec.wait(lambda n=n: rec.starts.count("b") == n + 1 or escalated.is_set())
    assert escalated.wait(10)
    assert sup.actor_stopped.wait(10)  # set when the supervisor's actor has stopped
    assert [e[0] for e in rec.events][-1] == "escalate"
    # b had crashed for good; the survivors were stopped last-started first
    assert rec.stops[-2:] == ["c", "a"]


def test_a_nested_supervisor_that_escalates_is_restarted_by_its_parent() -> None:
    rec = Recorder()
    inner = ChildSpec(
        "inner",
        lambda link: Supervisor.start("inner", [counter("x", rec)], Intensity(0, 30, 0.01), rec, link=link),
    )
    top = Supervisor.start("top", [inner], FAST, rec)
    inner_ref = ref_of(top, "inner")
    ref_of(inner_ref, "x").tell("crash")
    rec.wait(lambda: rec.starts.count("x") == 2)
    assert rec.events[0][:2] == ("escalate", "inner")
    assert rec.events[1][:2] == ("restart", "top/inner")


def test_stopping_a_supervisor_stops_children_in_reverse_start_order() -> None:
    rec = Recorder()
    sup = Supervisor.start("top", [counter("a", rec), counter("b", rec)], FAST, rec)
    sup.ask(StartChild(counter("c", rec)), timeout=5)
    sup.stop(timeout=10)
    assert rec.stops == ["c", "b", "a"]


def test_a_failing_event_sink_never_stops_the_supervisor_from_restarting() -> None:
    rec = Recorder()

    def full_disk(event: str, child: str, detail: str) -> None:
        raise OSError(28, "No space left on device")

    sup = Supervisor.start("top", [counter("a", rec)], FAST, full_disk)
    ref_of(sup, "a").tell("crash")
    rec.wait(lambda: rec.starts.count("a") == 2)
    assert sup.is_alive() and ref_of(sup, "a").ask("inc", timeout=5) == 1


def test_a_top_supervisor_that_crashes_in_its_own_handling_tells_on_escalate() -> None:
    rec = Recorder()
    ended: list[BaseException] = []
    told = threading.Event()

    class Brittle(Supervisor):
        def handle(self, message: Any) -> Any:
            if message == "bug":
                raise KeyError("a bug in the supervisor")
            return super().handle(message)

    def escalated(error: BaseException) -> None:
        ended.append(error)
        told.set()

    sup = Brittle.start("top", [counter("a", rec)], FAST, rec, escalated)
    ref_of(sup, "a")
    sup.tell("bug")
    assert told.wait(10)
    assert isinstance(ended[0], KeyError) and not sup.is_alive()
    assert rec.stops == ["a"]  # its children were stopped before it told


def test_a_restart_that_cannot_even_start_counts_as_a_crash_until_it_escalates() -> None:
    rec = Recorder()
    ended: list[BaseException] = []
    told = threading.Event()
    starts: list[int] = []

    def factory(link: Link) -> pykka.ActorRef[Any]:
        starts.append(1)
        if len(starts) > 1:
            raise OSError(28, "No space left on device")
        return Counter.start("a", rec, link)

    def escalated(error: BaseException) -> None:
        ended.append(error)
        told.set()

    sup = Supervisor.start("top", [ChildSpec("a", factory)], FAST, rec, escalated)
    ref_of(sup, "a").tell("crash")
    assert told.wait(10)
    assert len(starts) == FAST.max_restarts + 1
    assert [e[0] for e in rec.events] == ["restart"] * FAST.max_restarts + ["escalate"]
    assert "No space left on device" in rec.events[-1][2] and "gave up" in str(ended[0])
