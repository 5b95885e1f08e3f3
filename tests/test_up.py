"""The `up` process: a real detached daemon on a temp data dir."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time

import orjson

from tests.conftest import LOOOP, Looop, Up, alive, blocked, processes_with, wait_for


def unique_sleep() -> str:
    """A command whose argv no other process has, to find leftovers by."""
    return f"sleep 300.{os.getpid()}{time.monotonic_ns() % 10**9}"


def test_up_runs_detached_and_down_stops_it(looop: Looop, up: Up) -> None:
    up.configure()
    pid = up.start()
    assert alive(pid)
    pulse = up.wait_beats(1)
    assert pulse["running"] and pulse["pid"] == pid and pulse["status"] == "up"
    assert stat.S_IMODE((looop.data / ".control.sock").stat().st_mode) == 0o600
    assert "pulse: up (pid" in looop.run("status").stdout
    assert looop.state()["snapshots"]["today"].startswith("date: ")
    done = looop.run("down")
    assert done.stdout.startswith(f"looop is down (pid {pid})")
    assert not alive(pid)
    assert not (looop.data / ".control.sock").exists()
    assert looop.run("down").stdout == "looop is not up\n"
    assert up.pulse()["running"] is False
    journal = looop.journal()
    assert f"looop · up · pid {pid} · started" in journal and f"looop · down · pid {pid} · stopped" in journal


def test_a_second_up_says_so_with_the_pid_and_changes_nothing(looop: Looop, up: Up) -> None:
    up.configure()
    pid = up.start()
    assert looop.run("up").stdout == f"looop is already up (pid {pid})\n"
    done = looop.run("up", "--foreground", code=5)
    assert done.stderr == f"looop: already up (pid {pid})\n"
    assert up.pulse()["pid"] == pid


def test_up_after_a_kill_9_is_not_blocked_by_the_stale_lock(looop: Looop, up: Up) -> None:
    up.configure()
    first = up.start()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not alive(first), what="the killed process to go")
    assert up.pulse()["running"] is False
    second = up.start()
    assert second != first and up.wait_beats(1)["pid"] == second


def test_sensors_run_in_parallel(looop: Looop, up: Up) -> None:
    up.configure()
    # a barrier: each sensor reports only once all twenty are running; one after another, the
    # first would wait until its timeout and report that instead
    arrived = looop.data.parent / "arrived"
    arrived.mkdir()
    for i in range(20):
        barrier = f'touch "{arrived}/{i}"\nuntil [ "$(ls "{arrived}" | wc -l)" -ge 20 ]; do sleep 0.1; done\n'
        looop.run("_", "sensor", "write", f"s{i}", f"#!/bin/sh\n{barrier}echo reading {i}\n")
    up.start()
    up.wait_beats(1)
    snapshots = looop.state()["snapshots"]
    assert {k: v for k, v in snapshots.items() if k != "today"} == {
        f"s{i}": f"reading {i}\n" for i in range(20)
    }


def test_a_hung_sensor_is_killed_at_its_timeout_while_the_others_report(looop: Looop, up: Up) -> None:
    up.configure(sensor_timeout="1s")
    marker = unique_sleep()
    looop.run("_", "sensor", "write", "hung", f"#!/bin/sh\n{marker} &\n{marker}\n")
    looop.run("_", "sensor", "write", "quick", "#!/bin/sh\necho fine\n")
    up.start()
    wait_for(lambda: processes_with(marker), what="the hung sensor to run")
    up.wait_beats(1)
    snapshots = looop.state()["snapshots"]
    assert snapshots["quick"] == "fine\n"
    assert snapshots["hung"].endswith("[killed: no result within 1s]")
    assert up.pulse()["sensors"]["hung"]["status"] == "timeout"
    assert processes_with(marker) == []


def test_broken_sensors_yield_readings_that_say_what_happened(looop: Looop, up: Up) -> None:
    up.configure()
    looop.run("_", "sensor", "write", "failing", "#!/bin/sh\necho partial\necho 'no network' >&2\nexit 3\n")
    looop.run("_", "sensor", "write", "junk", "#!/bin/sh\nhead -c 4096 /dev/urandom\nprintf '\\000'\n")
    looop.run("_", "sensor", "write", "disabled", "#!/bin/sh\necho hi\n")
    looop.run("_", "sensor", "write", "plain", "echo no shebang")
    looop.run("_", "sensor", "write", "flood", "#!/bin/sh\nyes flood | head -c 1000000\n")
    (looop.data / "sensors/disabled.sh").chmod(0o600)
    up.start()
    up.wait_beats(1)
    snapshots = looop.state()["snapshots"]
    assert snapshots["failing"] == "partial\n\n[exit 3] no network"
    assert snapshots["junk"].startswith("[binary output (")
    assert snapshots["disabled"].startswith("[not run: the script is not executable")
    assert snapshots["plain"] == "no shebang\n"
    assert snapshots["flood"].endswith("[output cut at 64 KiB]") and len(snapshots["flood"]) < 70_000
    assert up.pulse()["running"]


def test_a_written_sensor_runs_at_once_not_at_the_next_beat(looop: Looop, up: Up) -> None:
    up.configure(interval="1h")
    up.start()
    up.wait_beats(1)
    looop.run("_", "sensor", "write", "fresh", "#!/bin/sh\necho new\n")
    wait_for(lambda: looop.state()["snapshots"].get("fresh") == "new\n", what="the new sensor's reading")
    looop.run("_", "sensor", "remove", "fresh")
    wait_for(lambda: "fresh" not in looop.state()["snapshots"], what="the reading to go")


def test_a_crashed_sensor_actor_is_restarted_by_its_supervisor(looop: Looop, up: Up) -> None:
    up.configure(interval="1s")
    looop.run("_", "sensor", "write", "flaky", "#!/bin/sh\necho steady\n")
    up.start(LOOOP_FAULT_SENSOR_CRASH="flaky:1")
    wait_for(lambda: "supervisor restart · sensors/flaky" in looop.journal(), what="the restart")
    wait_for(
        lambda: looop.state()["snapshots"].get("flaky") == "steady\n", what="a reading after the restart"
    )
    assert up.pulse()["restarts"] >= 1
    assert "RuntimeError('injected fault in sensor flaky')" in looop.journal()


def test_repeated_crashes_escalate_and_the_up_process_exits_non_zero(looop: Looop, up: Up) -> None:
    up.configure(interval="0.2s", max_restarts=1, restart_period="60s")
    looop.run("_", "sensor", "write", "doomed", "#!/bin/sh\necho x\n")
    process = subprocess.Popen(
        [LOOOP, "up", "--foreground"],
        env={**looop.env, "LOOOP_FAULT_SENSOR_CRASH": "doomed"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.wait(timeout=60) == 1
    finally:
        process.kill()
    journal = looop.journal()
    assert "supervisor escalate · sensors" in journal
    assert "supervisor escalate · looop · giving up" in journal
    assert "gave up after repeated crashes" in journal
    notices = [n["message"] for n in looop.state()["notifications"]]
    assert any("gave up" in n for n in notices)
    assert up.pulse()["running"] is False


def test_sigterm_and_sigint_stop_a_foreground_up_cleanly(looop: Looop, up: Up) -> None:
    up.configure()
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = looop.popen("up", "--foreground")

        def running(pid: int = process.pid) -> bool:
            pulse = up.pulse()
            return bool(pulse.get("pid") == pid and pulse["running"])

        wait_for(running, what="the foreground process")
        process.send_signal(sig)
        assert process.wait(timeout=60) == 0
        assert up.pulse()["status"] == "down"


def test_wait_blocks_on_the_daemon_and_wakes_on_an_ask_and_a_changed_reading(looop: Looop, up: Up) -> None:
    flag = looop.data.parent / "flag"
    flag.write_text("green\n")
    up.configure(interval="0.5s")
    looop.run("_", "sensor", "write", "ci", f"#!/bin/sh\ncat {flag}\n")
    up.start()
    up.wait_beats(1)
    looop.run("_", "wait")
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block on the daemon")
    flag.write_text("red\n")
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert orjson.loads(out)["snapshots"]["ci"] == "red\n"
    waiter = looop.popen("_", "wait", "--json")
    blocked(waiter, "the wait to block on the daemon")
    asker = looop.popen("_", "ask", "w1", "--prompt", "ship?")
    out, _ = waiter.communicate(timeout=30)
    assert [a["prompt"] for a in orjson.loads(out)["asks"]] == ["ship?"]
    looop.run("_", "answer", "w1-1", "yes")
    assert asker.communicate(timeout=30)[0] == "yes\n"


def test_down_leaves_no_process_behind(looop: Looop, up: Up) -> None:
    up.configure(interval="1s", sensor_timeout="30s")
    marker = unique_sleep()
    looop.run("_", "sensor", "write", "busy", f"#!/bin/sh\n({marker}) &\n{marker}\n")
    pid = up.start()
    wait_for(lambda: processes_with(marker), what="the busy sensor to run")
    looop.run("down", timeout=90)
    assert not alive(pid)
    wait_for(lambda: processes_with(marker) == [], timeout=10, what="the sensor's processes to end")


def test_a_bad_config_stops_up_with_one_line(looop: Looop) -> None:
    looop.run("_", "state")
    (looop.data / "config.json").write_text('{"interval": "often"}')
    done = looop.run("up", code=3)
    assert done.stderr.count("\n") == 1 and "key 'interval'" in done.stderr
