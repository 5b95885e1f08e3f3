"""Faults looop must survive with nothing lost: kills, broken sensors, corrupt files, storms."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import (
    AGENT,
    Looop,
    Up,
    alive,
    ended,
    pids_with,
    processes_with,
    report,
    run_processes,
    screen,
    script,
    small_disk,
    unique_marker,
    wait_for,
    worker,
)

ENTRY = re.compile(r"^- \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S+ · [a-z ]+ · .+ · .+$")


def kill_9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), what="the killed process to go")


def assert_consistent(looop: Looop) -> None:
    """No torn journal line, no temp file left, every JSON file parses, the state reads."""
    lines = looop.journal().splitlines()
    assert all(ENTRY.match(line) for line in lines), [line for line in lines if not ENTRY.match(line)]
    for path in looop.data.rglob("*.json"):
        if "worktree" not in path.parts:
            orjson.loads(path.read_bytes())
    assert [p for p in looop.data.rglob(".*.tmp")] == []
    assert looop.state()["problems"] == []


@pytest.fixture
def fleet(looop: Looop, up: Up) -> Up:
    up.configure(interactive=AGENT, idle_after="1s", kill_grace="1s")
    return up


def test_kill_9_of_up_mid_ask_loses_no_ask_and_no_answer(looop: Looop, fleet: Up) -> None:
    first = fleet.start()
    asker = looop.popen("_", "ask", "w1", "--prompt", "before the crash?")
    wait_for(lambda: looop.state()["asks"], what="the ask")
    kill_9(first)
    looop.run("_", "answer", "w1-1", "yes")  # while looop is down
    out, err = asker.communicate(timeout=30)
    assert (asker.returncode, out) == (0, "yes\n"), err
    late = looop.popen("_", "ask", "w2", "--prompt", "asked while down?")
    wait_for(lambda: looop.state()["asks"], what="the ask made while down")
    fleet.start()
    state = orjson.loads(looop.run("_", "wait", "--json").stdout)
    assert [a["id"] for a in state["asks"]] == ["w2-1"]
    looop.run("_", "answer", "w2-1", "no")
    assert late.communicate(timeout=30)[0] == "no\n"
    assert_consistent(looop)


def test_kill_9_of_up_mid_beat_leaves_no_stray_sensor_and_no_torn_snapshot(looop: Looop, fleet: Up) -> None:
    # Every sensor of the beat hangs, each on a sleep of its own, until a flag file appears: the
    # kill lands while all six run, however slow the machine.
    flag = looop.data.parent / "flag"
    base = f"3000.{os.getpid()}{time.monotonic_ns()}"
    markers = [f"sleep {base}{i}" for i in range(6)]
    looop.run("_", "sensor", "remove", "today")  # the seeded sensor would finish: its count is luck
    for i, marker in enumerate(markers):
        body = f'#!/bin/sh\nif [ -e "{flag}" ]; then echo reading {i}; else {marker}; fi\n'
        looop.run("_", "sensor", "write", f"s{i}", body)
    first = fleet.start()
    wait_for(lambda: all(pids_with(m) for m in markers), what="all six sensors of the beat to run")
    kill_9(first)
    strays = [pid for m in markers for pid in pids_with(m)]
    assert len(strays) == 6  # sensors run in sessions of their own: they outlive `up`
    assert list((looop.data / "snapshots").glob("s*")) == []  # the killed beat swapped nothing in
    flag.touch()  # from now on the sensors answer at once
    fleet.start()
    wait_for(lambda: not any(alive(pid) for pid in strays), what="the next up to end the strays")
    assert "looop · recover · sensors · ended 6 sensor run(s) left by a killed looop" in looop.journal()
    fleet.wait_beats(1)
    snapshots = looop.state()["snapshots"]
    assert snapshots == {f"s{i}": f"reading {i}\n" for i in range(6)}
    assert [p.name for p in looop.data.glob(".snapshots*")] == []
    assert_consistent(looop)


def test_a_worker_that_outlives_a_killed_up_is_ended_and_recorded_as_orphaned(
    looop: Looop, fleet: Up
) -> None:
    child = unique_marker("grandchild")
    first = fleet.start()
    looop.run(
        "_",
        "worker",
        "start",
        "w1",
        script("ignore-hup", f"spawn-child {child}", "claim db", "ask Still there?"),
    )
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="the ask")
    pid = worker(looop, "w1")["pid"]
    kill_9(first)
    time.sleep(0.5)  # the hang-up reaches the group; this one ignores it
    assert alive(pid) and processes_with(child)
    fleet.start()
    final = worker(looop, "w1")
    assert (final["state"], final["alive"], final["orphaned"]) == ("dead", False, True)
    assert final["end_reason"].startswith("found at up: its processes outlived looop and were ended")
    wait_for(lambda: not alive(pid) and processes_with(child) == [], what="the orphans to end")
    state = looop.state()
    assert state["asks"] == [] and state["claims"] == []
    assert any("whose looop had died: w1 (orphaned)" in n["message"] for n in state["notifications"])
    assert "looop · recover · w1 · dead: its processes outlived looop" in looop.journal()
    assert_consistent(looop)


def test_up_after_a_killed_up_ends_what_its_workers_detached(looop: Looop, fleet: Up) -> None:
    child = unique_marker("detached")
    first = fleet.start()
    looop.run("_", "worker", "start", "w1", script(f"detach {child}", "ask Still there?"))
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="the ask")
    record = worker(looop, "w1")
    kill_9(first)
    wait_for(lambda: not alive(record["pid"]), what="the agent to die of its hang-up")
    assert processes_with(child)  # in a session of its own, ignoring SIGHUP: it outlived both
    fleet.start()  # recovery is done before `up` says it is up
    assert processes_with(child) == [] and run_processes(record["run"]) == []
    final = worker(looop, "w1")
    assert (final["state"], final["orphaned"]) == ("dead", True)
    assert_consistent(looop)


def test_recovery_ends_only_processes_proven_to_be_the_dead_workers(
    looop: Looop, fleet: Up, tmp_path: Path
) -> None:
    """A recorded pid may since belong to someone else: only a matching start time, or the
    worker's own environment marks, make a process the worker's."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("LOOOP_")}
    unrelated_mark = f"300.{os.getpid()}1{time.monotonic_ns() % 10**9}"
    leftover_mark = f"300.{os.getpid()}2{time.monotonic_ns() % 10**9}"
    unrelated = subprocess.Popen(["sleep", unrelated_mark], start_new_session=True, env=plain)
    leftover = subprocess.Popen(
        ["sleep", leftover_mark],
        start_new_session=True,
        env={**plain, "LOOOP_SESSION_ID": "w2", "LOOOP_DATA_DIR": str(looop.data)},
    )
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        records = {"w1": unrelated.pid, "w2": gone.pid}  # w1's pid was reused by an unrelated group
        for session, pid in records.items():
            (looop.data / "sessions" / session).mkdir(parents=True)
            record = {"v": 1, "state": "running", "alive": True, "pid": pid, "process_start": 1}
            (looop.data / "sessions" / session / "state.json").write_bytes(orjson.dumps(record))
        fleet.start()
        assert (worker(looop, "w1")["state"], worker(looop, "w1")["orphaned"]) == ("dead", False)
        assert (worker(looop, "w2")["state"], worker(looop, "w2")["orphaned"]) == ("dead", True)
        wait_for(lambda: leftover.poll() is not None, what="the worker's leftover to end")
        assert unrelated.poll() is None and pids_with(unrelated_mark) == [unrelated.pid]
    finally:
        for process in (unrelated, leftover):
            process.kill()
            process.wait()


def test_kill_9_of_up_mid_worker_start_leaves_nothing_running_or_torn(looop: Looop, fleet: Up) -> None:
    first = fleet.start()
    starts = [
        looop.popen("_", "worker", "start", f"w{i}", script("ignore-hup", "ask Wait?")) for i in range(6)
    ]
    wait_for(lambda: "worker start · w" in looop.journal(), what="the first worker")
    kill_9(first)
    said = {  # started; or not up yet; or the daemon died with the request in hand
        0: "",
        7: "looop: looop is not up",
        1: f"looop: looop (pid {first}) closed the connection without a reply",
    }
    for start in starts:
        _, err = start.communicate(timeout=60)
        assert start.returncode in said and err.startswith(said[start.returncode]), (start.returncode, err)
    fleet.start()
    for record in looop.state()["workers"]:
        assert not record["alive"] and record["state"] == "dead", record
        assert not alive(record["pid"]) if record.get("pid") else True
    for prompt in looop.data.glob("prompts/*.md"):
        assert prompt.read_text().endswith("FAKE: ask Wait?\n")
    assert looop.state()["asks"] == []
    assert_consistent(looop)


def test_a_worker_killed_with_sigkill_is_dead_and_its_ask_cancelled(looop: Looop, fleet: Up) -> None:
    fleet.start()
    looop.run("_", "worker", "start", "w1", script("ask Anyone?"))
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="the ask")
    os.kill(worker(looop, "w1")["pid"], signal.SIGKILL)
    final = ended(looop, "w1")
    assert (final["state"], final["signal"], final["end_reason"]) == ("dead", "SIGKILL", "killed by SIGKILL")
    assert orjson.loads((looop.data / "answers/w1-1.json").read_bytes())["cancelled"]


def test_sensors_that_flood_or_vanish_mid_beat_yield_readings(looop: Looop, up: Up) -> None:
    up.configure(interval="1h")
    looop.run("_", "sensor", "write", "flood", "#!/bin/sh\nhead -c 50000000 /dev/zero | tr '\\000' a\n")
    looop.run("_", "sensor", "write", "vanish", '#!/bin/sh\nrm -f "$0"\nsleep 0.5\necho still here\n')
    looop.run("_", "sensor", "write", "binary", "placeholder")
    (looop.data / "sensors/binary.sh").write_bytes(bytes(range(256)) * 4)
    up.start()
    pulse = up.wait_beats(1)
    snapshots = looop.state()["snapshots"]
    assert snapshots["flood"].endswith("[output cut at 64 KiB]") and len(snapshots["flood"]) < 70_000
    assert snapshots["vanish"] == "still here\n"
    assert snapshots["binary"].startswith("\n[exit 2] ") and "Syntax error" in snapshots["binary"]
    assert pulse["running"] and pulse["last_beat_duration"] < 60


def test_corrupt_files_are_reported_skipped_and_never_crash_looop(looop: Looop, fleet: Up) -> None:
    looop.run("_", "state")
    (looop.data / "asks/bad-1.json").write_text('{"id": "bad-1", "worker"')
    (looop.data / "asks/good-1.json").write_bytes(
        orjson.dumps({"id": "good-1", "worker": "good", "prompt": "ok?", "options": None, "created": 1})
    )
    (looop.data / "answers/good-1.json").write_text("{garbage")
    (looop.data / "sessions/w9").mkdir()
    (looop.data / "sessions/w9/state.json").write_text('{"state": "running", "alive": tr')
    pid = fleet.start()
    state = looop.state()
    problems = "\n".join(state["problems"])
    assert "asks/bad-1.json: not valid JSON" in problems
    assert "answers/good-1.json: not valid JSON" in problems
    assert "sessions/w9/state.json: not valid JSON" in problems
    assert "problems (files skipped):" in looop.run("_", "state").stdout
    looop.run("_", "answer", "good-1", "fine")  # a fresh answer replaces the damaged file
    config = looop.data / "config.json"
    good_config = config.read_bytes()
    config.write_text("{not json")
    assert any("config.json: not valid JSON" in p for p in looop.state()["problems"])
    assert looop.run("up", code=3).stderr.count("\n") == 1
    looop.run("_", "worker", "start", "w1", "hi", code=3)
    config.write_bytes(good_config)
    assert alive(pid) and fleet.pulse()["running"]
    assert "skipped: not valid JSON" in looop.journal()  # recovery read past the broken record


def test_a_verb_storm_with_the_daemon_up_accounts_for_every_move(looop: Looop, fleet: Up) -> None:
    fleet.start()
    storm = Path(__file__).with_name("storm_worker.py")
    procs = [
        subprocess.Popen([sys.executable, str(storm), str(i), "25"], env=looop.env, stderr=subprocess.PIPE)
        for i in range(20)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    state = looop.state()
    assert state["asks"] == []
    asks = list((looop.data / "asks").glob("*.json"))
    answers = [orjson.loads(p.read_bytes()) for p in (looop.data / "answers").glob("*.json")]
    assert len(asks) == len(answers) == 20 * 5
    assert all(a["delivered_at"] for a in answers)
    goals = set(state["goals"])
    assert {f"storm-{i}-{k}" for i in range(20) for k in range(0, 25, 5)} <= goals
    claims = {(c["resource"], c["holder"]) for c in state["claims"]}
    assert claims == {(f"res-{i}-{k}", f"s{i}") for i in range(20) for k in range(3, 25, 5)}
    totals = state["spend"]["by_session"]
    assert all(totals[f"s{i}"] == {"usd": 5.0} for i in range(20))
    journal = looop.journal()
    for verb, count in (("ask", 100), ("answer", 100), ("goal write", 200), ("claim", 100), ("cost", 100)):
        assert journal.count(f" · {verb} · ") == count, verb
    assert_consistent(looop)
    assert fleet.pulse()["running"]


def test_a_full_disk_fails_writes_with_one_line_and_damages_nothing(looop: Looop, tmp_path: Path) -> None:
    with small_disk(tmp_path / "small", "512k") as mount:
        small = Looop(mount / "data", {**looop.env, "LOOOP_DATA_DIR": str(mount / "data")})
        small.run("_", "goal", "write", "kept", "an earlier goal")
        journal_before = small.journal()
        failed = small.run("_", "goal", "write", "huge", input="x" * 1_000_000, code=10)
        assert failed.stderr.count("\n") == 1 and "No space left on device" in failed.stderr
        assert (small.data / "goals/kept.md").read_text() == "an earlier goal\n"
        assert not (small.data / "goals/huge.md").exists()
        assert small.journal() == journal_before
        assert [p for p in small.data.rglob(".*.tmp")] == []
        assert "kept" in small.state()["goals"]


def test_reaping_removes_ended_sessions_past_their_ttl_and_keeps_live_ones(looop: Looop, fleet: Up) -> None:
    fleet.configure(interactive=AGENT, interval="0.5s", session_ttl="1s", kill_grace="1s")
    fleet.start()
    looop.run("_", "worker", "start", "done", script("ask Ok?", "report done.md finished", "exit"))
    looop.run("_", "worker", "start", "busy", script("say staying"))
    looop.run("_", "answer", wait_for(lambda: looop.state()["asks"], what="the ask")[0]["id"], "yes")
    assert report(looop, "done.md") == "finished\n"
    ended(looop, "done")
    # the journal line is the last step of a reaping: the files are gone by then
    wait_for(lambda: "looop · reap · done · ended" in looop.journal(), timeout=30, what="the reaping")
    assert not (looop.data / "sessions/done").exists()
    assert not (looop.data / "prompts/done.md").exists()
    assert not list((looop.data / "asks").glob("done-*.json"))
    assert (looop.data / "reports/done.md").exists()
    fleet.wait_beats(fleet.pulse()["beats"] + 3)
    assert worker(looop, "busy")["alive"] and "staying" in screen(looop, "busy")


def test_reaping_removes_only_the_checkout_looop_made_whatever_the_record_names(
    looop: Looop, fleet: Up, tmp_path: Path
) -> None:
    repo, checkout = tmp_path / "repo", tmp_path / "mine"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    subprocess.run([*git, "-C", str(repo), "worktree", "add", "-q", str(checkout)], check=True)
    (checkout / "work.txt").write_text("uncommitted work\n")
    fleet.configure(interactive=AGENT, interval="0.5s", session_ttl="1s")
    (looop.data / "sessions/old").mkdir(parents=True)
    record = {"v": 1, "state": "exited", "alive": False, "ended": 1000.0, "started": 900.0}
    record["sandbox"] = {"kind": "worktree", "repo": str(repo), "cwd": str(checkout)}
    (looop.data / "sessions/old/state.json").write_bytes(orjson.dumps(record))
    fleet.start()
    wait_for(lambda: "looop · reap · old · ended" in looop.journal(), what="the reaping")
    assert (checkout / "work.txt").read_text() == "uncommitted work\n"
