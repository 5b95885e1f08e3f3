"""Private by default: file modes, the control socket's peer check, unsafe sensors, no shell."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import orjson
import pytest

from tests.conftest import AGENT, Looop, Up, ended, report, script, wait_for, worker

PEER_PROBE = """
import socket, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(sys.argv[1])
try:
    conn.sendall(b'{"op": "ping"}\\n')
except BrokenPipeError:
    pass  # refused peers are cut off at once; the refusal is still there to read
print(conn.recv(4096).decode().strip())
"""


def test_everything_in_the_data_dir_is_private(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT, kill_grace="1s")
    up.start()
    looop.run("_", "sensor", "write", "probe", "#!/bin/sh\necho ok\n")
    looop.run("_", "notify", "hello")
    looop.run("_", "claim", "w0", "thing")
    looop.run("_", "cost", "w0", "1")
    looop.run("_", "worker", "start", "w1", script("ask Go?", "report w1.md done", "exit"))
    looop.run("_", "answer", wait_for(lambda: looop.state()["asks"], what="the ask")[0]["id"], "yes")
    report(looop, "w1.md")
    ended(looop, "w1")
    looop.run("down")
    wrong = []
    for path in [looop.data, *looop.data.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        executable = path.is_dir() or path.parent.name == "sensors" or path.name == "looop"
        if mode != (0o700 if executable else 0o600):
            wrong.append(f"{oct(mode)} {path.relative_to(looop.data)}")
    assert wrong == []


def test_the_control_socket_refuses_a_peer_of_another_uid(looop: Looop, up: Up) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    # a data dir another user can reach, so that only the socket's own check stands in the way
    root = Path(tempfile.mkdtemp(prefix="looop-peer-", dir="/tmp"))
    try:
        root.chmod(0o711)
        other = Looop(root / "data", {**looop.env, "LOOOP_DATA_DIR": str(root / "data")})
        daemon = Up(other)
        daemon.configure()
        daemon.start()
        try:
            (root / "data").chmod(0o711)
            sock = root / "data/.control.sock"
            sock.chmod(0o666)
            probe = ["/usr/bin/python3", "-c", PEER_PROBE, str(sock)]
            mine = subprocess.run(probe, capture_output=True, text=True, timeout=30)
            assert '"ok":true' in mine.stdout, mine.stderr
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *probe]
            theirs = subprocess.run(nobody, capture_output=True, text=True, timeout=30)
            if "Operation not permitted" in theirs.stderr:
                pytest.skip(f"cannot switch to nobody here: {theirs.stderr.strip()}")
            assert theirs.stdout.strip() == '{"ok":false,"error":"refused: another user"}', theirs.stderr
        finally:
            daemon.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_sensor_writable_by_others_is_refused_with_a_clear_reading(looop: Looop, up: Up) -> None:
    up.configure()
    looop.run("_", "sensor", "write", "open", "#!/bin/sh\necho should not run\n")
    (looop.data / "sensors/open.sh").chmod(0o777)
    up.start()
    up.wait_beats(1)
    reading = looop.state()["snapshots"]["open"]
    assert reading.startswith("[refused to run: the script is writable by other users")
    assert up.pulse()["sensors"]["open"]["status"] == "refused"


def test_a_prompt_full_of_shell_syntax_reaches_the_agent_as_text(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive=AGENT, kill_grace="1s")
    up.start()
    trap = tmp_path / "pwned"
    hostile = f"$(touch {trap}) `touch {trap}`; touch {trap} && echo '\"|"
    looop.run("_", "worker", "start", "w1", script(f"say {hostile}", "exit"))
    ended(looop, "w1")
    assert not trap.exists()
    assert hostile in (looop.data / "prompts/w1.md").read_text()
    assert worker(looop, "w1")["exit_code"] == 0


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_refusal(done: subprocess.CompletedProcess[str], why: str) -> None:
    assert done.returncode != 0 and done.stdout == "", done
    assert done.stderr.startswith("looop: ") and done.stderr.count("\n") == 1, done.stderr
    assert why in done.stderr, done.stderr


def test_a_data_dir_owned_by_another_user_is_refused_and_left_untouched(looop: Looop) -> None:
    if os.getuid() != 0:
        pytest.skip("only root can give a directory away")
    looop.run("_", "state")
    os.chown(looop.data, 65534, 65534)
    before = files_of(looop.data)
    for verb in (["_", "goal", "write", "g1", "body"], ["_", "state"], ["up"]):
        one_line_refusal(looop.run(*verb, code=None), "owned by another user")
    assert files_of(looop.data) == before


def test_a_config_another_user_can_write_is_refused_and_its_hook_not_run(
    looop: Looop, tmp_path: Path
) -> None:
    looop.run("_", "state")
    ran = tmp_path / "hook-ran"
    planted = tmp_path / "planted.json"
    planted.write_bytes(orjson.dumps({"interactive": "pi", "notify": ["sh", "-c", 'touch "$0"', str(ran)]}))
    planted.chmod(0o666)
    done = looop.run("_", "notify", "hi", code=None, env={"LOOOP_CONFIG": str(planted)})
    one_line_refusal(done, "writable by other users")
    assert not ran.exists()
    config = looop.data / "config.json"
    config.chmod(0o620)
    one_line_refusal(looop.run("up", code=None), "writable by other users")
    config.chmod(0o600)
    if os.getuid() == 0:
        os.chown(config, 65534, 65534)
        one_line_refusal(looop.run("up", code=None), "owned by another user")


def test_nothing_looop_writes_follows_a_link_out_of_the_data_dir(looop: Looop, tmp_path: Path) -> None:
    looop.run("_", "goal", "write", "g1", "a goal")
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("before\n")
    victim.chmod(0o644)

    def planted(name: str, target: Path) -> Path:
        link = looop.data / name
        shutil.rmtree(link, ignore_errors=True)
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        return link

    for name in ("journal.md", "notifications.jsonl"):
        original = (looop.data / name).read_bytes() if (looop.data / name).exists() else b""
        planted(name, victim)
        done = looop.run("_", "notify", "hi", code=None)
        one_line_refusal(done, f"refusing to write through a symbolic link: {name} -> {victim}")
        (looop.data / name).unlink()
        (looop.data / name).write_bytes(original)
    planted("sessions/w1", outside)
    one_line_refusal(looop.run("_", "cost", "w1", "1", code=None), "sessions/w1 -> ")
    planted("goals/archive", outside)
    one_line_refusal(looop.run("_", "goal", "archive", "g1", code=None), "goals/archive -> ")
    assert (looop.data / "goals/g1.md").exists()
    (looop.data / "goals/archive").unlink()
    (looop.data / "goals/archive").mkdir(mode=0o700)
    planted("up.log", victim)
    one_line_refusal(looop.run("up", code=None), f"up.log -> {victim}")
    planted("snapshots", outside)
    planted("sessions", outside)
    planted("goals", outside)
    looop.run("_", "goal", "write", "g2", "a goal", code=None)
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert victim.read_text() == "before\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_up_refuses_a_sessions_dir_that_links_elsewhere_and_reaps_nothing_there(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interval="0.5s", session_ttl="1s")
    outside = tmp_path / "outside"
    (outside / "w9").mkdir(parents=True)
    ended_long_ago = {"v": 1, "state": "exited", "alive": False, "ended": 1}
    (outside / "w9" / "state.json").write_bytes(orjson.dumps(ended_long_ago))
    shutil.rmtree(looop.data / "sessions")
    (looop.data / "sessions").symlink_to(outside)
    done = looop.run("up", code=None)
    assert done.returncode != 0, done.stdout
    assert (outside / "w9" / "state.json").exists()


def test_a_data_dir_or_one_of_its_directories_others_may_write_into_is_refused(looop: Looop) -> None:
    looop.run("_", "goal", "write", "g1", "ours")
    journal = looop.journal()
    for loose in (looop.data, looop.data / "sessions", looop.data / "goals"):
        loose.chmod(0o777)  # anyone could plant a session record or a goal in it between two verbs
        done = looop.run("_", "goal", "write", "g2", "theirs?", code=10)
        assert done.stderr.startswith(f"looop: refusing the data dir {looop.data}"), done.stderr
        assert "writable by other users" in done.stderr and done.stderr.count("\n") == 1
        assert looop.run("_", "state", code=10).stderr == done.stderr
        assert not (looop.data / "goals/g2.md").exists() and looop.journal() == journal
        loose.chmod(0o700)
    looop.data.chmod(0o755)  # only readable by others: made private again, not refused
    looop.run("_", "state")
    assert stat.S_IMODE(looop.data.stat().st_mode) == 0o700


def test_a_config_in_a_directory_others_may_write_into_is_refused_unless_it_is_sticky(
    looop: Looop, tmp_path: Path
) -> None:
    looop.run("_", "state")
    shared = tmp_path / "shared"
    shared.mkdir()
    config = shared / "config.json"
    config.write_bytes(b'{"interactive": "pi", "notify": ["touch", "hooked"]}')
    config.chmod(0o600)
    shared.chmod(0o777)  # another user could swap the file for one of their own
    done = looop.run("_", "notify", "hi", env={"LOOOP_CONFIG": str(config)}, code=3)
    assert done.stderr == f"looop: {config}: refusing a config in a directory other users can write\n"
    shared.chmod(0o1777)  # sticky, as /tmp is: nobody else may replace our file
    looop.run("_", "notify", "hi", env={"LOOOP_CONFIG": str(config)}, cwd=tmp_path)
    assert (tmp_path / "hooked").exists()


def test_a_move_whose_journal_line_cannot_be_written_is_not_made(looop: Looop, tmp_path: Path) -> None:
    looop.run("_", "state")
    outside = tmp_path / "outside.md"
    outside.write_text("not looop's\n")
    (looop.data / "journal.md").unlink()
    (looop.data / "journal.md").symlink_to(outside)
    ran = tmp_path / "ran"
    for argv in (
        ["_", "goal", "write", "g1", "body"],
        ["_", "sensor", "write", "s1", "#!/bin/sh\necho hi\n"],
        ["_", "notify", "hi"],
        ["_", "run", "touch", str(ran)],
    ):
        done = looop.run(*argv, code=10)
        assert done.stderr.startswith("looop: refusing to write through a symbolic link: journal.md"), argv
    assert not (looop.data / "goals/g1.md").exists() and not (looop.data / "sensors/s1.sh").exists()
    assert not ran.exists() and not (looop.data / "notifications.jsonl").exists()
    assert outside.read_text() == "not looop's\n"
