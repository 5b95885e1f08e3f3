"""What wakes the root agent's `_ wait`, once per event, and each reader's own cursor: a real
`up`, the fake agent in a real pty, the real CLI."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import AGENT, Looop, Up, blocked, ended, script, wait_for, worker


@pytest.fixture
def fleet(looop: Looop, up: Up) -> Iterator[Up]:
    up.configure(interactive=AGENT, idle_after="2s", kill_grace="1s")
    up.start()
    yield up


def wake(looop: Looop, *args: str) -> dict[str, Any]:
    """One turn of the root agent's loop: the state `_ wait --json` returns."""
    done = looop.run("_", "wait", "--json", *args, timeout=60)
    value = orjson.loads(done.stdout)
    assert isinstance(value, dict)
    return value


def kinds(state: dict[str, Any]) -> list[str]:
    """The news without counts and digests: `ask w1-1`, `idle w1`, `goals`, `notice`."""
    words = [n.split()[:2] for n in state["news"]]
    return [w[0] if w[0] in ("goals", "reading", "notice") else " ".join(w) for w in words]


def settle(looop: Looop) -> None:
    """The root agent has seen the world as it is now."""
    looop.run("_", "wait", "--all")


def test_a_workers_life_wakes_the_root_twice_its_ask_and_its_end(looop: Looop, fleet: Up) -> None:
    settle(looop)
    looop.run(
        "_", "worker", "start", "w1", script("say starting up", "ask Ship it? | yes,no", "say done", "exit")
    )
    first = wake(looop)  # not for `starting`, nor `running`: the ask is the first news
    assert kinds(first) == ["ask w1-1"], first["news"]
    assert [(w["id"], w["state"]) for w in first["workers"]] == [("w1", "asking")]
    assert [a["id"] for a in first["asks"]] == ["w1-1"]
    looop.run("_", "answer", "w1-1", "yes")  # the root's own move: no wake
    second = wake(looop)
    assert kinds(second) == ["ended w1"], second["news"]
    assert second["workers"][0]["state"] == "exited" and second["asks"] == []
    looop.run("_", "goal", "write", "sentinel", "x")  # had anything else woken it, it shows here
    assert kinds(wake(looop)) == ["goals"]


def test_a_worker_going_quiet_and_busy_again_wakes_the_root_once_per_finished_turn(
    looop: Looop, fleet: Up, tmp_path: Path
) -> None:
    gates = [tmp_path / "turn1", tmp_path / "turn2"]
    steps = ["say turn one", f"quiet-until {gates[0]}", "say turn two", f"quiet-until {gates[1]}", "exit"]
    settle(looop)
    looop.run("_", "worker", "start", "w1", script(*steps))
    assert kinds(wake(looop)) == ["idle w1"]  # the first turn is over
    gates[0].touch()  # busy again: no wake for that
    second = wake(looop)
    assert kinds(second) == ["idle w1"] and second["news"][0].startswith("idle w1 #2"), second["news"]
    gates[1].touch()
    assert kinds(wake(looop)) == ["ended w1"]


def test_a_worker_killed_by_the_root_does_not_wake_it_one_that_ends_itself_does(
    looop: Looop, fleet: Up
) -> None:
    settle(looop)
    looop.run("_", "worker", "start", "w1", script("say working", "sleep 60"))
    looop.run("_", "worker", "kill", "w1")
    looop.run("_", "worker", "start", "w2", script("say done", "kill"))
    state = wake(looop)
    assert kinds(state) == ["ended w2"], state["news"]
    assert {w["id"]: w["state"] for w in state["workers"]} == {"w1": "killed", "w2": "killed"}


def test_two_cursors_each_see_every_change_and_a_since_reader_steals_nothing(looop: Looop, fleet: Up) -> None:
    settle(looop)
    looop.run("_", "wait", "--all", "--cursor", "observer")
    root_cursor = (looop.data / ".last-tick-hash").read_text()
    peek = wake(looop, "--all", "--cursor", "peek")  # any hash will do: this one is now
    human = looop.popen("_", "wait", "--json", "--since", peek["world_hash"])
    blocked(human, "the human's wait to block")
    looop.run("_", "goal", "write", "g1", "body")
    out, err = human.communicate(timeout=30)
    assert human.returncode == 0, err
    assert kinds(orjson.loads(out)) == ["goals"]
    assert (looop.data / ".last-tick-hash").read_text() == root_cursor  # --since moved nothing
    for reader in ((), ("--cursor", "observer")):
        state = wake(looop, *reader)
        assert kinds(state) == ["goals"] and "g1" in state["goals"], reader
    assert looop.run("_", "wait", "--timeout", "0.2", code=124)
    assert looop.run("_", "wait", "--cursor", "observer", "--timeout", "0.2", code=124)


def test_a_wait_killed_before_it_printed_loses_nothing(looop: Looop, fleet: Up) -> None:
    settle(looop)
    timed_out = looop.run("_", "wait", "--json", "--timeout", "0.2", code=124)  # as a tool timeout
    assert orjson.loads(timed_out.stdout)["news"] == []
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block")
    os.kill(waiter.pid, signal.SIGSTOP)  # it is woken, but killed before it prints
    looop.run("_", "goal", "write", "g1", "body")
    os.kill(waiter.pid, signal.SIGKILL)
    waiter.wait(timeout=10)
    assert waiter.stdout is not None and waiter.stdout.read() == ""
    state = wake(looop)
    assert kinds(state) == ["goals"] and "g1" in state["goals"]


def test_a_restarted_root_gets_everything_pending_at_once_with_all(looop: Looop, fleet: Up) -> None:
    settle(looop)
    looop.run("_", "worker", "start", "w1", script("ask Which way? | left,right", "exit"))
    wait_for(lambda: worker(looop, "w1")["state"] == "asking", what="the ask")
    for _ in range(2):  # news or not, it returns at once, with all that is pending
        everything = wake(looop, "--all", "--timeout", "1")
        assert [a["id"] for a in everything["asks"]] == ["w1-1"]
    assert looop.run("_", "wait", "--timeout", "0.2", code=124)  # the ask was seen: no news
    looop.run("_", "answer", "w1-1", "left")
    ended(looop, "w1")


def test_an_asking_worker_always_has_its_ask_in_the_state(looop: Looop) -> None:
    """The asks decide: a record still saying `asking` after its ask was answered is running."""
    looop.run("_", "state")
    directory = looop.data / "sessions" / "w1"
    directory.mkdir(parents=True)
    me = os.getpid()
    record = {"v": 1, "id": "w1", "state": "asking", "alive": True, "pid": me, "up_pid": me}
    (directory / "state.json").write_bytes(orjson.dumps(record))
    assert worker(looop, "w1")["state"] == "running"


def test_a_notice_from_looop_wakes_the_root_its_own_does_not(looop: Looop) -> None:
    settle(looop)
    looop.run("_", "notify", "a note of the root's own")
    entry = {"v": 1, "at": 1.0, "from": "looop", "message": "the budget is 80 % spent"}
    with open(looop.data / "notifications.jsonl", "ab") as handle:
        handle.write(orjson.dumps(entry) + b"\n")
    state = wake(looop)
    assert kinds(state) == ["notice"]


def test_wait_refuses_a_bad_since_or_cursor_with_one_line(looop: Looop) -> None:
    for args, said in (
        (("--since", "nothex"), "--since takes a world_hash"),
        (("--since", "0123456789abcdef", "--all"), "--since moves no cursor"),
        (("--cursor", "../x"), "invalid cursor name"),
    ):
        done = looop.run("_", "wait", *args, code=2)
        assert done.stderr.startswith(f"looop: {said}") and done.stderr.count("\n") == 1, done.stderr
    assert not (looop.data / "cursors").exists()


def test_a_busy_worker_that_goes_silent_wakes_the_root_as_stalled_an_idle_one_does_not(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    busy = {"fake": {"command": [*AGENT, "{task}"], "busy_markers": ["esc to interrupt"]}}
    up.configure(interactive="fake", profiles=busy, idle_after="1s", stall_after="2s")
    up.start()
    settle(looop)
    gate = tmp_path / "go"
    looop.run("_", "worker", "start", "w1", script("say working", f"busy-until {gate}", "say done", "exit"))
    assert kinds(wake(looop)) == ["stalled w1"]  # its screen says busy, and nothing moves
    gate.touch()
    looop.run("_", "worker", "start", "w2", script("say done", f"quiet-until {gate}.never"))
    news = [kinds(wake(looop)) for _ in range(2)]
    assert sorted(news) == [["ended w1"], ["idle w2"]], news
    looop.run("_", "wait", "--timeout", "4", code=124)  # idle past `stall_after`: no second wake


def test_a_new_ask_is_shown_once_the_screen_that_led_to_it_is_written(looop: Looop, fleet: Up) -> None:
    settle(looop)
    for worker_id in ("w1", "w2", "w3"):
        reason = f"the reason for {worker_id} is XYZ{worker_id}"
        looop.run("_", "worker", "start", worker_id, script(f"say {reason}", "ask Go on? | yes,no", "exit"))
        state = wake(looop)
        assert kinds(state) == [f"ask {worker_id}-1"]
        assert reason in (looop.data / "sessions" / worker_id / "screen.txt").read_text()
        looop.run("_", "answer", f"{worker_id}-1", "yes")
        assert kinds(wake(looop)) == [f"ended {worker_id}"]


def test_without_up_a_worker_found_gone_wakes_the_root_and_the_next_up_does_not_again(
    looop: Looop, fleet: Up
) -> None:
    looop.run("_", "worker", "start", "w1", script("ignore-hup", "say working", "sleep 60"))
    settle(looop)
    waiter = looop.popen("_", "wait", "--json", "--timeout", "50")
    blocked(waiter, "the wait to block on the daemon", timers=True)
    pid = worker(looop, "w1")["pid"]
    for process in fleet.pids:
        os.kill(process, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)  # no file says so: the wait finds out by looking again
    out, err = waiter.communicate(timeout=40)
    assert waiter.returncode == 0, err
    assert kinds(orjson.loads(out)) == ["ended w1"]
    fleet.start()  # it records w1 dead and tells the human: no second wake for the same end
    wait_for(lambda: "whose looop had died" in looop.journal(), what="the notice")
    looop.run("_", "wait", "--timeout", "1", code=124)


def test_since_a_hash_that_state_printed_wakes_only_on_news(looop: Looop, fleet: Up) -> None:
    fleet.wait_beats(1)  # its reading is in
    shown = looop.state()["world_hash"]
    waiter = looop.popen("_", "wait", "--json", "--since", shown)
    blocked(waiter, "the wait to block")
    looop.run("_", "worker", "start", "w1", script("say working", "sleep 60"))
    looop.run("_", "worker", "kill", "w1")  # no news
    looop.run("_", "goal", "write", "g1", "body")
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert kinds(orjson.loads(out)) == ["goals"]
    assert looop.run("_", "wait", "--all", "--cursor", "seen").returncode == 0  # any valid name


def inotify_fds(pid: int) -> int:
    """How many inotify descriptors process `pid` holds."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(os.readlink(fd) == "anon_inode:inotify" for fd in fds.iterdir())


def test_with_polling_forced_an_ask_a_workers_end_and_a_goal_still_wake_the_root(
    looop: Looop, up: Up
) -> None:
    """LOOOP_WATCH=poll, the watcher looop uses where there is no inotify: `up`, its worker's
    `_ ask` and `_ wait` list directories instead, and every wake still arrives, with `up` and
    without it."""
    looop.env["LOOOP_WATCH"] = "poll"
    up.configure(interactive=AGENT, idle_after="2s", kill_grace="1s")
    pid = up.start()
    settle(looop)
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block")
    looop.run("_", "worker", "start", "w1", script("ask Ship it? | yes,no", "say shipped", "exit"))
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert kinds(orjson.loads(out)) == ["ask w1-1"]
    assert inotify_fds(pid) == 0  # its socket server has been watching all along, by listing
    looop.run("_", "answer", "w1-1", "yes")  # the worker's `_ ask` sees it by listing too
    assert kinds(wake(looop)) == ["ended w1"]
    looop.run("down")
    waiter = looop.popen("_", "wait", "--json")  # no `up`: its own listing wakes it
    blocked(waiter, "the wait to block without up")
    assert inotify_fds(waiter.pid) == 0
    looop.run("_", "goal", "write", "g1", "body")
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert kinds(orjson.loads(out)) == ["goals"]
