"""The operator's side: the status table, logs, the journal tail, completion, notification hooks,
and resuming an interrupted worker."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from tests.conftest import (
    AGENT,
    LOOOP,
    Looop,
    Up,
    blocked,
    ended,
    posing_as,
    report,
    screen,
    script,
    wait_for,
    worker,
)


@pytest.fixture
def fleet(looop: Looop, up: Up) -> Up:
    up.configure(interactive=AGENT, idle_after="1s", kill_grace="1s")
    return up


def test_the_text_state_shows_a_table_of_workers_and_what_needs_a_decision(looop: Looop, fleet: Up) -> None:
    fleet.start()
    looop.run("_", "worker", "start", "alpha", script("cost 0.5", "ask Go on?"))
    looop.run("_", "worker", "start", "beta", script("say compiling the thing", "exit"))
    wait_for(lambda: worker(looop, "alpha").get("state") == "asking", what="alpha's ask")
    ended(looop, "beta")
    wait_for(lambda: worker(looop, "alpha").get("cost"), what="alpha's spend in its record")
    wait_for(lambda: "asking: Go on?" in screen(looop, "alpha"), what="alpha's screen")
    lines = looop.run("_", "state").stdout.splitlines()
    assert "needs a decision (1):" in lines
    assert any(line.startswith("  alpha-1  from alpha, since ") for line in lines)
    header = lines.index("workers (1 working of at most 10, 1 done):")
    assert lines[header + 1].split() == ["ID", "STATE", "AGE", "SPEND", "ASK", "SCREEN", "/", "END"]
    alpha, beta = lines[header + 2].split(), lines[header + 3].split()
    assert alpha[:2] == ["alpha", "asking"] and alpha[3:6] == ["0.5", "usd", "alpha-1"]
    assert "asking: Go on?" in lines[header + 2]
    assert beta[:2] == ["beta", "exited"] and "exit 0" in lines[header + 3]
    limits = looop.state()["limits"]
    assert (limits["max_workers"], limits["stall_after"], limits["ask_deadline"]) == (10, 900.0, 3600.0)


def test_logs_print_and_follow_a_transcript_as_clean_text(looop: Looop, fleet: Up) -> None:
    fleet.start()
    looop.run("_", "worker", "start", "w1", script("say first", "sleep 1", "say second", "sleep 1", "exit"))
    follower = looop.popen("logs", "w1", "-f")
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert "● first" in out and "● second" in out and "\x1b" not in out
    assert out.index("first") < out.index("second")
    assert "fake agent · session w1" in looop.run("logs", "w1").stdout
    assert looop.run("logs", "nobody", code=4).stderr == "looop: no worker 'nobody' (see `looop status`)\n"


def test_tail_follows_the_journal(looop: Looop) -> None:
    looop.run("_", "goal", "write", "one", "first goal")
    assert " · goal write · one · created" in looop.run("tail", "-n", "1", "--no-follow").stdout
    follower = looop.popen("tail", "-n", "0")
    blocked(follower, "tail to wait for new lines", timers=True)  # else it may start after the write
    looop.run("_", "goal", "write", "two", "second goal")
    assert follower.stdout is not None
    line = follower.stdout.readline()
    follower.kill()
    assert "goal write · two" in line


def test_ids_complete_in_the_shell(looop: Looop) -> None:
    looop.run("_", "goal", "write", "release-notes", "x")
    (looop.data / "sessions/worker-7").mkdir()
    env = {**looop.env, "_LOOOP_COMPLETE": "bash_complete", "COMP_WORDS": "looop logs wor", "COMP_CWORD": "2"}
    done = subprocess.run([LOOOP], env=env, capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["plain,worker-7"]
    env.update(COMP_WORDS="looop _ goal archive rel", COMP_CWORD="4")
    done = subprocess.run([LOOOP], env=env, capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["plain,release-notes"]


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        Hook.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/looop"
    server.shutdown()


def test_the_documented_notify_hooks_work(looop: Looop, tmp_path: Path, webhook: str) -> None:
    looop.run("_", "state")
    config = looop.data / "config.json"
    # the README's webhook example, pointed at a local server
    hook = ["curl", "-fsS", "-m", "10", "-o", "/dev/null", webhook, "--data-binary"]
    config.write_bytes(orjson.dumps({"interactive": "pi", "notify": hook}))
    assert looop.run("_", "notify", "deploy finished").stdout == "noted and sent to the notify hook\n"
    assert Hook.received == [b"deploy finished"]
    # the README's notify-send example, with a stand-in notify-send on PATH
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "notify-send").write_text(f'#!/bin/sh\nprintf "%s|" "$@" > {tmp_path}/sent\n')
    (bin_dir / "notify-send").chmod(0o755)
    config.write_bytes(orjson.dumps({"interactive": "pi", "notify": ["notify-send", "looop"]}))
    looop.run("_", "notify", "ask w1-1 needs you", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert (tmp_path / "sent").read_text() == "looop|ask w1-1 needs you|"


def test_an_interrupted_worker_resumes_in_its_sandbox_with_its_session(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(
        interactive=[*AGENT, "--session-id", "{session_uuid}"],
        resume=[*AGENT, "--resume", "{session_uuid}"],
        kill_grace="1s",
    )
    up.start()
    (tmp_path / "work").mkdir()
    looop.run("_", "worker", "start", "w1", "--cwd", str(tmp_path / "work"), script("claim db", "sleep 60"))
    first = wait_for(lambda: (w := worker(looop, "w1")).get("agent_session") and w, what="the session id")
    wait_for(lambda: f"session-id {first['agent_session']}" in screen(looop, "w1"), what="the agent's id")
    looop.run("_", "worker", "kill", "w1", "--reason", "laptop lid closed")
    assert looop.run("_", "worker", "resume", "w1", "code", "review", code=None).stdout.startswith(
        "worker w1 resumed (pid "
    )
    wait_for(lambda: f"resume {first['agent_session']}" in screen(looop, "w1"), what="the resumed agent")
    again = worker(looop, "w1")
    assert again["alive"] and again["cwd"] == str(tmp_path / "work")
    assert again["agent_session"] == first["agent_session"]
    prompt = (looop.data / "prompts/w1.md").read_text()
    assert "You were interrupted: your previous session ended (killed: laptop lid closed)" in prompt
    assert prompt.rstrip().endswith("code review")
    done = looop.run("_", "worker", "resume", "w1", code=5)
    assert done.stderr.startswith("looop: worker w1 is already running")
    looop.run("_", "worker", "kill", "w1")
    task = "FAKE: report resumed.md {env:TICKET}"  # --env is given again on resume
    looop.run("_", "worker", "resume", "w1", "--env", "TICKET=T-42", task)
    assert report(looop, "resumed.md") == "T-42\n"
    assert "env: TICKET" in looop.journal()
    looop.run("_", "worker", "start", "w2", script("report w2.md {cwd}", "exit"))
    report(looop, "w2.md")
    (looop.data / "config.json").write_bytes(orjson.dumps({"interactive": AGENT}))
    assert "no `resume` command" in looop.run("_", "worker", "resume", "w2", code=2).stderr


def test_the_readmes_fleet_config_runs(looop: Looop, up: Up, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- fleet-config -->\n```json\n", 1)[1].split("```", 1)[0]
    config = orjson.loads(block)
    assert {"budget", "max_workers", "stall_after", "notify"} <= config.keys()
    assert config["interactive"] == "claude"
    config["notify"] = ["true"]
    looop.run("_", "state")
    (looop.data / "config.json").write_bytes(orjson.dumps(config))
    up.start(PATH=posing_as(tmp_path, "claude"))  # the stand-in plays the profile's claude
    looop.run("_", "worker", "start", "w1", script("say fleet ready", "exit"))
    final = ended(looop, "w1")
    assert final["exit_code"] == 0 and final["agent_session"]
    shown = looop.run("logs", "w1").stdout
    assert "contract: yes; system prompts: 1" in shown and f"session-id {final['agent_session']}" in shown
