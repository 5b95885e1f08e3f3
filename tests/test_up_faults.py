"""The `up` process under a full disk, a deleted data dir, and `up` racing `down` or another `up`."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from tests.conftest import AGENT, Looop, Up, alive, fill, processes_with, script, small_disk, wait_for, worker


def gone(pid: int) -> bool:
    return not alive(pid)


def up_logging_to(daemon: Up, log: Path) -> int:
    """Start a real `up --foreground` whose log is `log`, outside the data dir (so that it
    outlives a full disk or a deleted data dir: looop itself never writes up.log through a
    link); return its pid once it is up."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [daemon.looop.program, "up", "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=daemon.looop.env,
            start_new_session=True,
        )
    daemon.pids.append(process.pid)
    wait_for(lambda: process.poll() is not None or daemon.pulse().get("status") == "up", what="up to be up")
    assert process.poll() is None, log.read_text()
    threading.Thread(target=process.wait, daemon=True).start()  # reaped when it exits
    return process.pid


def test_up_keeps_working_through_a_disk_that_is_full_for_a_while(looop: Looop, tmp_path: Path) -> None:
    with small_disk(tmp_path / "small") as disk:
        small = Looop(disk / "data", {**looop.env, "LOOOP_DATA_DIR": str(disk / "data")})
        daemon = Up(small)
        try:
            daemon.configure(interactive=AGENT, interval="1s")
            small.run("_", "sensor", "write", "clock", "#!/bin/sh\ndate +%s%N\n")
            log = tmp_path / "up.log"
            pid = up_logging_to(daemon, log)
            daemon.wait_beats(2)
            small.run("_", "worker", "start", "steady", script("say before", "sleep 2", "print 200000"))
            wait_for(lambda: worker(small, "steady").get("state") == "running", what="the first worker")
            filler = fill(disk)
            wait_for(lambda: log.read_text().count(" failed: ") >= 3, what="three beats to fail")
            beats = daemon.pulse()["beats"]  # as last written, before the disk filled up
            filler.unlink()
            pulse = daemon.wait_beats(beats + 2)
            assert pulse["pid"] == pid and pulse["status"] == "up", pulse
            assert pulse["write_failures"] >= 1
            assert "No space left on device" in log.read_text()
            assert small.run("up").stdout == f"looop is already up (pid {pid})\n"
            small.run("_", "worker", "start", "after", script("say back again"))
            wait_for(lambda: worker(small, "after").get("state") == "running", what="the worker to run")
            assert alive(pid)
            steady = worker(small, "steady")  # it lived through the full disk, its output cut short
            assert steady["alive"] and alive(steady["pid"]), steady
            journal = small.journal()
            assert f"looop · up · pid {pid} · started" in journal
        finally:
            daemon.close()


def test_up_exits_non_zero_when_its_data_dir_is_deleted(looop: Looop, up: Up, tmp_path: Path) -> None:
    up.configure(interval="1s")
    marker = f"sleep 300.{os.getpid()}1"
    looop.run("_", "sensor", "write", "busy", f"#!/bin/sh\n{marker}\n")
    log = tmp_path / "up.log"
    pid = up_logging_to(up, log)
    wait_for(lambda: processes_with(marker), what="the sensor to run")
    shutil.rmtree(looop.data)
    wait_for(lambda: not alive(pid), timeout=30, what="the up process to exit")
    assert not looop.data.exists()  # nothing recreated it behind the user's back
    text = log.read_text()
    assert "data dir" in text and "gone" in text, text
    wait_for(lambda: processes_with(marker) == [], timeout=10, what="the sensor to be stopped")
    up.configure(interval="1s")
    second = up.start()
    assert second != pid and up.wait_beats(1)["pid"] == second


def test_an_up_during_a_down_waits_for_the_stopping_process_and_then_starts(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT, interval="1s", kill_grace="2s")
    pid = up.start()
    for i in range(3):
        looop.run("_", "worker", "start", f"stubborn{i}", script("ignore-term", "say holding on"))

        def running(name: str = f"stubborn{i}") -> bool:
            return bool(worker(looop, name).get("state") == "running")

        wait_for(running, what="the worker to run")
        down = looop.popen("down")  # takes kill_grace: the worker ignores SIGTERM
        wait_for(lambda: up.pulse()["status"] == "stopping", what="the daemon to be stopping")
        out = looop.run("up", timeout=90).stdout
        assert out.startswith("looop is up (pid "), out
        new = int(out.split("(pid ")[1].split(")")[0])
        up.pids.append(new)
        assert down.communicate(timeout=60)[0].startswith(f"looop is down (pid {pid})")
        assert new != pid and not alive(pid)
        pulse = up.wait_beats(1)
        assert pulse["pid"] == new and pulse["running"]
        pid = new


def test_two_ups_at_once_both_name_the_one_that_holds_the_lock(looop: Looop, up: Up) -> None:
    up.configure()
    dead = up.start()
    for _ in range(5):
        os.kill(dead, signal.SIGKILL)  # its status and pid file stay behind, naming a dead process
        wait_for(functools.partial(gone, dead), what="the killed process to go")
        first, second = looop.popen("up"), looop.popen("up")
        outs = sorted(p.communicate(timeout=90)[0] for p in (first, second))
        assert first.returncode == second.returncode == 0, outs
        pids = {int(out.split("(pid ")[1].split(")")[0]) for out in outs}
        assert len(pids) == 1, outs
        dead = pids.pop()
        up.pids.append(dead)
        assert outs[0] == f"looop is already up (pid {dead})\n"
        assert outs[1].startswith(f"looop is up (pid {dead})")
        assert alive(dead) and up.wait_beats(1)["pid"] == dead


def test_an_up_gone_with_its_data_dir_leaves_the_next_up_on_a_new_one_alone(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT, interval="1s", kill_grace="3s")
    old = up.start()
    looop.run("_", "worker", "start", "stubborn", script("ignore-term", "say holding on"))
    wait_for(lambda: worker(looop, "stubborn").get("state") == "running", what="the worker to run")
    shutil.rmtree(looop.data)  # the old one takes kill_grace to go: the new one is up by then
    up.configure(interval="1s")  # a new data dir at the same path, at once
    new = up.start()
    wait_for(functools.partial(gone, old), timeout=30, what="the old up process to exit")
    assert alive(new) and up.wait_beats(1)["pid"] == new
    assert (looop.data / ".up.pid").exists()
    done = looop.run("down").stdout  # answered over the new one's control socket
    stopped = "stopped the beat, the sensors, the socket server"
    assert done.startswith(f"looop is down (pid {new}): {stopped}"), done
