"""`_ wait` returns when the world hash moved since it last returned, and blocks otherwise."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import orjson

from tests.conftest import Looop, blocked


def wait_json(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    value = orjson.loads(out)
    assert isinstance(value, dict)
    return value


def settle(looop: Looop) -> str:
    """Consume the pending change, so that the next wait blocks."""
    state = orjson.loads(looop.run("_", "wait", "--json").stdout)
    return str(state["world_hash"])


def test_wait_returns_at_once_after_a_change_then_blocks_until_the_next(looop: Looop) -> None:
    first = settle(looop)
    assert (looop.data / ".last-tick-hash").read_text().strip() == first
    done = looop.run("_", "wait", "--json", "--timeout", "0.3", code=124)
    assert orjson.loads(done.stdout)["world_hash"] == first
    assert "no change within 0.3s" in done.stderr


def test_a_new_ask_wakes_a_blocked_wait(looop: Looop) -> None:
    settle(looop)
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block")
    asker = looop.popen("_", "ask", "w1", "--prompt", "Merge it?", "--options", "yes,no")
    state = wait_json(waiter)
    assert [a["prompt"] for a in state["asks"]] == ["Merge it?"]
    looop.run("_", "answer", "w1-1", "no")
    asker.wait(timeout=10)


def test_a_changed_snapshot_wakes_a_blocked_wait(looop: Looop) -> None:
    settle(looop)
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block")
    # what the pulse does at each beat: readings land by rename
    tmp = looop.data / "snapshots/.ci.txt.tmp"
    tmp.write_text("red\n")
    os.replace(tmp, looop.data / "snapshots/ci.txt")
    assert wait_json(waiter)["snapshots"] == {"ci": "red\n"}


def test_a_swapped_snapshots_dir_wakes_a_blocked_wait(looop: Looop) -> None:
    settle(looop)
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block")
    fresh = looop.data / "snapshots.new"
    fresh.mkdir()
    (fresh / "today.txt").write_text("date: x\n")
    os.rename(looop.data / "snapshots", looop.data / "snapshots.old")
    os.rename(fresh, looop.data / "snapshots")
    assert wait_json(waiter)["snapshots"] == {"today": "date: x\n"}


def test_the_root_agents_own_journaled_moves_do_not_wake_it(looop: Looop) -> None:
    settle(looop)
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block")
    looop.run("_", "notify", "just saying")
    looop.run("_", "run", "true")
    looop.run("_", "claim", "w1", "thing")
    looop.run("_", "goal", "write", "after", "the moves")  # the first change that may wake it
    state = wait_json(waiter)  # had a move woken it, it would have returned without this goal
    assert "after" in state["goals"] and [c["resource"] for c in state["claims"]] == ["thing"]


def write_record(looop: Looop, session: str, **fields: Any) -> None:
    """A worker record as its babysitter writes it; this test process stands in for both the
    worker and the `up` process babysitting it."""
    directory = looop.data / "sessions" / session
    directory.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    record = {"v": 1, "id": session, "alive": True, "pid": me, "up_pid": me, "run": "r1", **fields}
    (directory / ".s.tmp").write_bytes(orjson.dumps(record))
    os.replace(directory / ".s.tmp", directory / "state.json")


def test_a_new_goal_and_a_worker_that_finished_its_turn_wake_it_and_a_running_one_does_not(
    looop: Looop,
) -> None:
    settle(looop)
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block")
    looop.run("_", "goal", "write", "new-goal", "body")
    assert "new-goal" in wait_json(waiter)["goals"]
    (looop.data / "sessions/w9").mkdir()
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block on a session without a record")
    write_record(looop, "w9", state="starting")
    write_record(looop, "w9", state="running")
    write_record(looop, "w9", state="idle", idle_count=1)  # the first change that may wake it
    state = wait_json(waiter)
    assert state["workers"][0]["state"] == "idle" and state["news"] == ["idle w9 #1 run r1"]
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block again")
    write_record(looop, "w9", state="running", idle_count=1)  # got going again: no news
    looop.run("_", "goal", "write", "later", "body")
    state = wait_json(waiter)
    assert state["workers"][0]["state"] == "running" and [n.split()[0] for n in state["news"]] == ["goals"]
