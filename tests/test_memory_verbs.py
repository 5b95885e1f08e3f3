"""Goals, sensors and the playbook change only through verbs; each move is journaled."""

from __future__ import annotations

import os
import stat
import time

import orjson

from tests.conftest import Looop, pids_with, wait_for


def test_goal_write_inline_then_from_stdin_replaces_it(looop: Looop) -> None:
    looop.run("_", "goal", "write", "ship-it", "Ship v1 by Friday.", "--reason", "asked in chat")
    assert (looop.data / "goals/ship-it.md").read_text() == "Ship v1 by Friday.\n"
    done = looop.run("_", "goal", "write", "ship-it", input="# Ship\n\nline two\n")
    assert "replaced" in done.stdout
    assert (looop.data / "goals/ship-it.md").read_text() == "# Ship\n\nline two\n"
    assert "ship-it" in looop.state()["goals"]
    journal = looop.journal()
    assert "goal write · ship-it · created" in journal and "reason: asked in chat" in journal
    assert "goal write · ship-it · replaced" in journal


def test_goal_archive_keeps_every_archived_copy(looop: Looop) -> None:
    looop.run("_", "goal", "write", "g1", "first")
    looop.run("_", "goal", "archive", "g1")
    looop.run("_", "goal", "write", "g1", "second")
    looop.run("_", "goal", "archive", "g1")
    archived = sorted(p.read_text() for p in (looop.data / "goals/archive").iterdir())
    assert archived == ["first\n", "second\n"]
    assert "g1" not in looop.state()["goals"]


def test_archiving_an_unknown_goal_is_not_found(looop: Looop) -> None:
    done = looop.run("_", "goal", "archive", "nope", code=4)
    assert done.stderr.startswith("looop: no goal 'nope'")


def test_sensor_write_makes_an_executable_script_and_remove_deletes_it(looop: Looop) -> None:
    looop.run("_", "sensor", "write", "disk", input="#!/bin/sh\ndf -h /\n")
    path = looop.data / "sensors/disk.sh"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700 and os.access(path, os.X_OK)
    looop.run("_", "sensor", "remove", "disk")
    assert not path.exists()
    looop.run("_", "sensor", "remove", "disk", code=4)
    assert "sensor write · disk" in looop.journal() and "sensor remove · disk" in looop.journal()


def test_playbook_write_replaces_the_playbook(looop: Looop) -> None:
    looop.run("_", "playbook", "write", input="# My playbook\n")
    assert (looop.data / "PLAYBOOK.md").read_text() == "# My playbook\n"
    assert "playbook write" in looop.journal()


def test_an_empty_body_is_refused_and_changes_nothing(looop: Looop) -> None:
    looop.run("_", "state")
    before = (looop.data / "PLAYBOOK.md").read_text()
    done = looop.run("_", "playbook", "write", input="   \n", code=2)
    assert "empty" in done.stderr
    assert (looop.data / "PLAYBOOK.md").read_text() == before


def test_notify_is_recorded_shown_and_passed_to_the_hook(looop: Looop, tmp_path: os.PathLike[str]) -> None:
    looop.run("_", "state")
    out = looop.data.parent / "notified.txt"
    hook = looop.data.parent / "hook.sh"
    hook.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {out}\n')
    hook.chmod(0o700)
    (looop.data / "config.json").write_text(f'{{"interactive": "pi", "notify": ["{hook}"]}}')
    looop.run("_", "notify", "build", "is", "red")
    assert out.read_text() == "build is red\n"
    assert looop.state()["notifications"][-1]["message"] == "build is red"
    assert "notify · root · build is red" in looop.journal()


def test_a_failing_notify_hook_warns_but_keeps_the_notice(looop: Looop) -> None:
    looop.run("_", "state")
    (looop.data / "config.json").write_text('{"interactive": "pi", "notify": ["false"]}')
    done = looop.run("_", "notify", "hello")
    assert "notify hook failed: exit 1" in done.stderr
    assert looop.state()["notifications"][-1]["message"] == "hello"


def test_a_notify_hook_whose_child_holds_its_output_neither_holds_the_caller_nor_survives(
    looop: Looop,
) -> None:
    looop.run("_", "state")
    marker = f"300.{os.getpid()}{time.monotonic_ns() % 10**9}"  # a unique argv for `sleep`
    hook = ["/bin/sh", "-c", f"sleep {marker} & echo sent", "hook"]
    (looop.data / "config.json").write_text(orjson.dumps({"interactive": "pi", "notify": hook}).decode())
    done = looop.run("_", "notify", "hi", timeout=10)  # the old hook wait was 15 s
    assert "noted and sent to the notify hook" in done.stdout, done.stderr
    assert pids_with(marker) == []


def test_run_streams_output_and_journals_exit_code_and_reason(looop: Looop) -> None:
    done = looop.run(
        "_", "run", "--reason", "look around", "echo hi; echo there | tr a-z A-Z; exit 3", code=3
    )
    assert done.stdout == "hi\nTHERE\n"
    line = looop.journal().strip().splitlines()[-1]
    assert "run · echo hi" in line and "exit 3" in line and "THERE" in line and "reason: look around" in line


def test_run_with_several_words_is_an_argv_not_a_shell_line(looop: Looop) -> None:
    done = looop.run("_", "run", "printf", "%s|", "a b", "$HOME;x")
    assert done.stdout == "a b|$HOME;x|"


def test_run_kills_the_whole_group_at_its_timeout(looop: Looop) -> None:
    marker = f"sleep 300.{os.getpid()}{time.monotonic_ns()}"  # in the argv of the shell and its child
    done = looop.run("_", "run", "--timeout", "2", f"{marker} & echo forked; exec sleep 30", code=124)
    assert done.stdout == "forked\n"  # the background child existed before the timeout
    assert "timed out" in done.stderr
    assert "timed out after 2s, killed" in looop.journal()
    wait_for(lambda: pids_with(marker) == [], what="the background child to be ended with its group")


def test_run_does_not_hang_on_a_background_child_holding_the_pipe(looop: Looop) -> None:
    done = looop.run("_", "run", "sleep 20 & echo started", timeout=10)
    assert done.stdout == "started\n"


def test_run_of_a_missing_program_is_one_line(looop: Looop) -> None:
    done = looop.run("_", "run", "no-such-program-xyz", "arg", code=2)
    assert done.stderr.startswith("looop: cannot run 'no-such-program-xyz'")
