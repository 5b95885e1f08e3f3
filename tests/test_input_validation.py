"""Input looop cannot carry is refused before anything happens: the daemon's own session id, NUL
bytes, and bytes that are not UTF-8 (in arguments, stdin, `LOOOP_*` variables or a raw request)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import orjson
import pytest

from looop.store.locate import socket_file
from tests.conftest import AGENT, Looop, Up, ended, script, wait_for, worker

BAD = os.fsdecode(b"\xff")  # how Python hands over an undecodable byte; subprocess sends it back raw


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(
    done: subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes], what: object
) -> None:
    """Exit 2, one line on stderr, nothing on stdout."""
    err = done.stderr if isinstance(done.stderr, str) else done.stderr.decode(errors="replace")
    assert done.returncode == 2, (what, done.returncode, err)
    assert err.startswith("looop: ") and err.count("\n") == 1, (what, err)
    assert "Traceback" not in err and not done.stdout, (what, err, done.stdout)


def fed(looop: Looop, argv: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run `looop ARGV` with raw bytes on stdin."""
    return subprocess.run([looop.program, *argv], input=stdin, capture_output=True, timeout=30, env=looop.env)


def raw_request(looop: Looop, line: bytes) -> dict[str, object]:
    """Send one raw line to the control socket, as any client could; return the reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(socket_file(str(looop.data)))
        conn.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            assert chunk, f"the daemon hung up on {line!r}"
            data += chunk
    reply = orjson.loads(data)
    assert isinstance(reply, dict)
    return reply


RESERVED_VERBS = [
    ["_", "worker", "start", "pulse", "x"],
    ["_", "worker", "resume", "pulse"],
    ["_", "worker", "kill", "pulse"],
    ["_", "kill", "pulse"],
    ["_", "ask", "pulse", "--prompt", "p"],
    ["_", "claim", "pulse", "thing"],
    ["_", "unclaim", "pulse", "thing"],
    ["_", "cost", "pulse", "1"],
    ["logs", "pulse"],
    ["_", "worker", "start", "PULSE", "x"],  # the same directory on a case-insensitive disk
    ["_", "ask", "Pulse", "--prompt", "p"],
]


def test_the_pulse_session_id_is_reserved_for_every_verb_that_takes_a_worker(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    status = looop.data / "sessions/pulse/state.json"
    assert status.exists()
    before = {p: p.read_bytes() for p in (looop.data / "sessions/pulse").iterdir()}
    journal = looop.journal()
    for argv in RESERVED_VERBS:
        done = looop.run(*argv, code=None)
        refused(done, argv)
        assert "reserved" in done.stderr, (argv, done.stderr)
    assert {p.name for p in (looop.data / "sessions/pulse").iterdir()} == {p.name for p in before}
    assert not (looop.data / "prompts/pulse.md").exists()
    assert list((looop.data / "claims").glob("*.json")) == []
    assert list((looop.data / "asks").glob("*.json")) == []
    assert looop.journal() == journal
    assert looop.state()["workers"] == [] and up.pulse()["running"]


def test_the_daemon_refuses_a_bad_env_in_a_raw_request(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    for env, said in [
        ({"A": "x\0y"}, "--env A: a value cannot hold a NUL byte"),
        ({"LOOOP_RUN_ID": "x"}, "--env LOOOP_RUN_ID: looop sets its own LOOOP_* variables"),
        ({"A=B": "x"}, "--env 'A=B' is not a variable name"),
        ("A=1", "--env: expected KEY=VALUE"),
    ]:
        message = {"op": "worker_start", "id": "w1", "prompt": "x", "cwd": str(looop.data.parent), "env": env}
        reply = raw_request(looop, orjson.dumps(message) + b"\n")
        assert (reply["ok"], reply["code"]) == (False, 2) and str(reply["error"]).startswith(said), reply
    assert looop.state()["workers"] == []


def test_the_daemon_refuses_the_pulse_id_in_a_raw_request(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    for op in ("worker_start", "worker_resume", "worker_kill"):
        message = {"op": op, "id": "pulse", "prompt": "x", "cwd": str(looop.data.parent), "by": "root"}
        reply = raw_request(looop, orjson.dumps(message) + b"\n")
        assert reply["ok"] is False and reply["code"] == 2, (op, reply)
        assert "reserved" in str(reply["error"]), reply
    assert looop.state()["workers"] == [] and up.pulse()["running"]


ARGUMENTS = [
    ["_", "goal", "write", "g3", "body" + BAD],
    ["_", "goal", "write", "g3", "body", "--reason", BAD],
    ["_", "goal", "archive", "setup", "--reason", BAD],
    ["_", "playbook", "write", "rules" + BAD],
    ["_", "sensor", "write", "s1", f"#!/bin/sh\necho {BAD}\n"],
    ["_", "sensor", "remove", "s1", "--reason", BAD],
    ["_", "notify", "hello" + BAD],
    ["_", "answer", "a-1", "yes" + BAD],
    ["_", "ask", "w1", "--prompt", "go" + BAD],
    ["_", "ask", "w1", "--prompt", "go", "--ref", BAD],
    ["_", "ask", "w1", "--prompt", "go", "--options", f"a,{BAD}"],
    ["_", "cost", "w1", "1", "--note", BAD],
    ["_", "claim", "w1", "thing" + BAD],
    ["_", "worker", "start", "w1", "task" + BAD],
    ["_", "worker", "start", "w1", "task", "--cwd", "/tmp/" + BAD],
    ["_", "worker", "kill", "w1", "--reason", BAD],
    ["logs", "w1" + BAD],
]


@pytest.mark.parametrize("argv", ARGUMENTS, ids=lambda a: "-".join(x for x in a if x.isascii())[:40])
def test_an_argument_that_is_not_utf8_is_refused_before_anything_happens(
    looop: Looop, argv: list[str]
) -> None:
    looop.run("_", "state")
    before = tree(looop.data)
    refused(looop.run(*argv, code=None, timeout=20), argv)
    assert tree(looop.data) == before


def test_a_command_given_to_run_that_is_not_utf8_is_neither_run_nor_half_journaled(
    looop: Looop, tmp_path: Path
) -> None:
    looop.run("_", "state")
    before = tree(looop.data)
    made = tmp_path / "made"
    for argv in (
        ["_", "run", "touch", str(made), BAD],
        ["_", "run", f"touch {made} {BAD}"],
        ["_", "run", "--reason", BAD, "touch", str(made)],
    ):
        refused(looop.run(*argv, code=None, cwd=tmp_path), argv)
        assert not made.exists(), argv
    assert tree(looop.data) == before
    # output that is not UTF-8 is the command's business: carried with replacement characters
    done = subprocess.run(
        [looop.program, "_", "run", "printf", "x\\377y"], capture_output=True, timeout=30, env=looop.env
    )
    assert done.returncode == 0 and done.stdout == b"x\xffy", done.stderr
    assert "x\ufffdy" in looop.journal()


@pytest.mark.parametrize("body", [b"x\xffy", b"x\0y"], ids=["not-utf8", "nul"])
def test_stdin_that_is_not_utf8_or_holds_a_nul_is_refused(looop: Looop, body: bytes) -> None:
    looop.run("_", "state")
    before = tree(looop.data)
    for argv in (
        ["_", "goal", "write", "g3"],
        ["_", "playbook", "write"],
        ["_", "sensor", "write", "s1"],
        ["_", "notify"],
        ["_", "answer", "a-1"],
        ["_", "ask", "w1"],
        ["_", "worker", "start", "w1"],
    ):
        done = fed(looop, argv, body)
        refused(done, argv)
    assert tree(looop.data) == before


def test_a_looop_variable_or_data_dir_that_is_not_utf8_is_refused(looop: Looop, tmp_path: Path) -> None:
    looop.run("_", "state")
    before = tree(looop.data)
    done = looop.run("_", "goal", "write", "g3", "body", code=None, env={"LOOOP_SESSION_ID": "w" + BAD})
    refused(done, "LOOOP_SESSION_ID")
    assert "LOOOP_SESSION_ID" in done.stderr
    assert tree(looop.data) == before
    home = tmp_path / ("home" + BAD)
    unset = {k: v for k, v in looop.env.items() if k not in ("LOOOP_DATA_DIR", "XDG_STATE_HOME")}
    for argv in (["_", "state"], ["_", "goal", "write", "g3", "body"], ["up"]):
        done = subprocess.run(
            [looop.program, *argv],
            capture_output=True,
            text=True,
            timeout=30,
            env={**unset, "HOME": str(home)},
        )
        refused(done, argv)
        assert "data dir" in done.stderr, done.stderr
    assert not home.exists()


def test_a_nul_in_a_worker_prompt_on_stdin_starts_nothing(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    refused(fed(looop, ["_", "worker", "start", "w7"], b"FAKE: say a\0b"), "worker start")
    assert not (looop.data / "sessions/w7").exists()
    assert worker(looop, "w7") == {}
    assert "w7" not in looop.journal()


def test_a_nul_in_a_raw_worker_start_request_is_refused_and_the_daemon_carries_on(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive=AGENT)
    up.start()
    line = (
        b'{"op":"worker_start","id":"w8","prompt":"FAKE: say a\\u0000b","cwd":"%s"}\n'
        % str(tmp_path).encode()
    )
    reply = raw_request(looop, line)
    assert reply["ok"] is False and reply["code"] == 2 and "NUL" in str(reply["error"]), reply
    assert worker(looop, "w8") == {}
    # the daemon is fine: the next worker starts and ends as usual, and nothing crashed
    looop.run("_", "worker", "start", "w9", script("say hi", "exit"), cwd=tmp_path)
    assert ended(looop, "w9")["state"] == "exited"
    journal = looop.journal()
    assert "crashed" not in journal and "w8" not in journal, journal
    assert wait_for(lambda: up.pulse()["running"], what="the pulse")


def test_a_nul_in_a_configured_command_is_a_config_error_not_a_crash(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive=AGENT)
    up.start()
    (looop.data / "config.json").write_bytes(orjson.dumps({"interactive": [*AGENT, "--flag=a\0b"]}))
    done = looop.run("_", "worker", "start", "w1", script("exit"), code=3, cwd=tmp_path)
    assert done.stderr.count("\n") == 1 and "NUL" in done.stderr, done.stderr
    assert worker(looop, "w1") == {}
    (looop.data / "config.json").write_bytes(orjson.dumps({"notify": ["echo", "a\0b"]}))
    done = looop.run("_", "notify", "hello", code=None)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "crashed" not in looop.journal(), looop.journal()
    assert up.pulse()["running"]
