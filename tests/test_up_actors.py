"""The pulse's long-lived actors inside a running `up`: a crashed socket server or beat is restarted
(or escalates) per the supervisor's policy and loses nothing clients wait for; slow I/O (the
notify hook, a worktree's removal) never holds up an actor. Crashes are injected through the
`crash` op, which only an `up` started with LOOOP_TEST_FAULTS=1 serves."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import orjson

from looop.store.locate import socket_file
from tests.conftest import AGENT, Looop, Up, alive, blocked, ended, script, wait_for, worker

FAULTS = {"LOOOP_TEST_FAULTS": "1"}


def request(looop: Looop, message: dict[str, object]) -> dict[str, object]:
    """One request on the control socket; its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(socket_file(str(looop.data)))
        conn.sendall(orjson.dumps(message) + b"\n")
        data = b""
        while not data.endswith(b"\n") or not data.strip():
            chunk = conn.recv(65536)
            assert chunk, f"the daemon hung up on {message}"
            data += chunk
    reply = orjson.loads(data)
    assert isinstance(reply, dict)
    return reply


def served(looop: Looop, message: dict[str, object]) -> dict[str, object]:
    """`request`, or {} while no server listens (between a crashed one and its successor)."""
    try:
        return request(looop, message)
    except OSError:
        return {}


def crash(looop: Looop, actor: str) -> None:
    """Crash `actor` of the running `up` (once it runs: a restart takes a moment)."""
    wait_for(lambda: served(looop, {"op": "crash", "actor": actor}).get("ok"), what=f"{actor} to crash")


def restarted(looop: Looop, actor: str) -> None:
    wait_for(lambda: f"supervisor restart · looop/{actor}" in looop.journal(), what=f"{actor}'s restart")
    assert f"RuntimeError('injected fault in {actor}')" in looop.journal()


def test_the_crash_op_is_unknown_without_the_test_variable(looop: Looop, up: Up) -> None:
    up.configure()
    up.start()
    assert request(looop, {"op": "crash", "actor": "server"}) == {"ok": False, "error": "unknown op 'crash'"}


def test_a_crashed_socket_server_is_restarted_and_a_pending_ask_and_a_blocked_wait_survive_it(
    looop: Looop, up: Up
) -> None:
    up.configure()
    pid = up.start(**FAULTS)
    up.wait_beats(1)  # the first beat's readings are in: nothing else changes for a minute
    asker = looop.popen("_", "ask", "w1", "--prompt", "Still there?")
    wait_for(lambda: looop.state()["asks"], what="the ask")
    blocked(asker, "the asker to wait for its answer")
    looop.run("_", "wait", "--json")  # the ask is news no more
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the waiter to block")
    crash(looop, "server")
    restarted(looop, "server")
    wait_for(lambda: served(looop, {"op": "ping"}).get("pid") == pid, what="the new server to answer")
    blocked(waiter, "the waiter to go on waiting")  # a restart is no news
    blocked(asker, "the asker to go on waiting")
    (looop.data / "goals" / "after.md").write_text("a change after the restart\n")
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert orjson.loads(out)["news"]
    looop.run("_", "answer", "w1-1", "yes")
    out, err = asker.communicate(timeout=30)
    assert (asker.returncode, out) == (0, "yes\n"), err
    assert up.pulse()["restarts"] == 1 and up.pulse()["running"]


def test_a_crashed_beat_is_restarted_and_beats_go_on(looop: Looop, up: Up) -> None:
    up.configure(interval="0.3s")
    up.start(**FAULTS)
    before = up.wait_beats(2)["beats"]
    crash(looop, "beat")
    restarted(looop, "beat")
    after = up.wait_beats(before + 3)
    assert after["running"] and after["restarts"] == 1
    assert looop.state()["snapshots"]["today"].startswith("date: ")


def test_a_beat_that_keeps_crashing_escalates_and_its_notice_reaches_the_hook_before_up_exits(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    heard = tmp_path / "heard"
    hook = ["sh", "-c", f'printf "%s\\n" "$1" >> "{heard}"', "hook"]
    up.configure(max_restarts=1, restart_period="60s", notify=hook)
    process = looop.popen("up", "--foreground", LOOOP_TEST_FAULTS="1")
    wait_for(lambda: up.pulse().get("status") == "up", what="up to be up")
    crash(looop, "beat")
    restarted(looop, "beat")
    crash(looop, "beat")
    assert process.wait(timeout=60) == 1
    journal = looop.journal()
    assert "supervisor escalate · looop · giving up: beat crashed" in journal
    assert "gave up after repeated crashes" in journal
    assert "looop supervisor gave up on looop" in heard.read_text()  # queued, then run before the exit


def test_a_slow_notify_hook_holds_up_no_beat_and_its_failure_is_journaled(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    heard, flag = tmp_path / "heard", tmp_path / "flag"
    slow = f'printf "%s\\n" "$1" >> "{heard}"; until [ -e "{flag}" ]; do sleep 0.05; done; exit 3'
    up.configure(interval="0.3s", ask_deadline="1s", notify=["sh", "-c", slow, "hook"])
    up.start()
    looop.popen("_", "ask", "w1", "--prompt", "Anyone there?")  # escalated by a beat, past 1s
    wait_for(lambda: heard.exists() and "needs a decision" in heard.read_text(), what="the hook to run")
    up.wait_beats(up.pulse()["beats"] + 3)  # while the hook the beat's escalation started still runs
    assert "notify hook" not in looop.journal()
    notices = [n["message"] for n in looop.state()["notifications"]]
    assert any(n.startswith("ask w1-1 from w1 needs a decision") for n in notices)  # recorded at once
    flag.touch()
    wait_for(lambda: "looop · notify hook · sh · failed: exit 3" in looop.journal(), what="the failure")


def test_a_slow_worktree_removal_holds_up_no_beat_and_is_started_once(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    calls, flag, bin_dir = tmp_path / "git-calls", tmp_path / "git-flag", tmp_path / "bin"
    bin_dir.mkdir()
    git = bin_dir / "git"  # a git whose every call takes until the flag appears
    git.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nuntil [ -e "{flag}" ]; do sleep 0.05; done\n')
    git.chmod(0o755)
    up.configure(interval="0.3s", session_ttl="1s")
    session = looop.data / "sessions/old"
    (session / "worktree").mkdir(parents=True)
    record = {"v": 1, "state": "exited", "alive": False, "ended": 1000.0, "started": 900.0}
    record["sandbox"] = {"kind": "worktree", "repo": str(tmp_path / "repo"), "cwd": str(session / "worktree")}
    (session / "state.json").write_bytes(orjson.dumps(record))
    up.start(PATH=f"{bin_dir}:{os.environ['PATH']}", **FAULTS)
    wait_for(lambda: calls.exists() and "worktree remove" in calls.read_text(), what="the removal")
    up.wait_beats(up.pulse()["beats"] + 3)  # each tidies again, the removal under way
    crash(looop, "beat")  # a restarted beat knows of the removal too: the reaper outlives it
    restarted(looop, "beat")
    up.wait_beats(up.pulse()["beats"] + 3)
    assert calls.read_text().count("worktree remove") == 1
    assert session.exists()
    flag.touch()
    wait_for(lambda: "looop · reap · old · ended" in looop.journal(), what="the reaping")
    assert not session.exists()
    up.wait_beats(up.pulse()["beats"] + 2)
    assert calls.read_text().count("worktree remove") == 1


def test_a_crashed_fleet_ends_its_workers_saying_why_and_the_restarted_fleet_starts_new_ones(
    looop: Looop, up: Up
) -> None:
    up.configure(interactive=AGENT, kill_grace="1s")
    up.start(**FAULTS)
    looop.run("_", "worker", "start", "w1", script("ask Go on?", "sleep 60"))
    pid = worker(looop, "w1")["pid"]
    wait_for(lambda: looop.state()["asks"], what="w1's ask")
    crash(looop, "workers")
    restarted(looop, "workers")
    record = ended(looop, "w1")  # recorded, its ask cancelled: nothing of it is left pending
    assert record["state"] == "killed" and "its fleet crashed" in record["end_reason"], record
    assert not looop.state()["asks"] and not alive(pid)
    looop.run("_", "worker", "start", "w2", script("say hello", "exit"))
    assert ended(looop, "w2")["state"] == "exited"


def test_a_crashed_session_actor_ends_its_worker_is_not_restarted_and_frees_its_slot(
    looop: Looop, up: Up
) -> None:
    up.configure(interactive=AGENT, kill_grace="1s", max_workers=1)
    up.start(**FAULTS)
    looop.run("_", "worker", "start", "w1", script("claim the-db", "sleep 60"))
    wait_for(lambda: looop.state()["claims"], what="w1's claim")
    queued = looop.popen("_", "worker", "start", "w2", "--queue", script("say hello", "exit"))
    wait_for(lambda: "worker start · w2 · queued" in looop.journal(), what="w2 queued")
    crash(looop, "worker/w1")
    record = ended(looop, "w1")
    assert record["state"] == "killed" and "its looop actor crashed" in record["end_reason"], record
    assert "not restarted (temporary)" in looop.journal() and not looop.state()["claims"]
    out, err = queued.communicate(timeout=60)  # its slot went to the queued start
    assert queued.returncode == 0 and out.startswith("worker w2 started"), err
    assert ended(looop, "w2")["state"] == "exited"
