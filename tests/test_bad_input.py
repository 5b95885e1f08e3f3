"""Bad input: one line on stderr, a non-zero exit, no traceback, and nothing on disk touched."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Looop

BAD_IDS = ["../x", "", "x" * 65, "_x", ".hidden", "a/b", "a b", "é"]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_refused_before_touching_disk(looop: Looop, bad: str) -> None:
    looop.run("_", "state")
    before = tree(looop.data)
    for argv in (
        ["_", "goal", "write", bad, "body"],
        ["_", "goal", "archive", bad],
        ["_", "sensor", "write", bad, "echo"],
        ["_", "sensor", "remove", bad],
        ["_", "answer", bad, "yes"],
        ["_", "ask", bad, "--prompt", "p"],
        ["_", "claim", bad, "r"],
        ["_", "claim", "w1", bad],
        ["_", "unclaim", "w1", bad],
        ["_", "cost", bad, "1"],
    ):
        done = looop.run(*argv, code=2)
        assert done.stderr.startswith("looop: invalid "), (argv, done.stderr)
        assert done.stderr.count("\n") == 1, (argv, done.stderr)
        assert done.stdout == ""
    assert tree(looop.data) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["_", "nosuchverb"],
        ["_", "answer"],
        ["_", "goal", "write"],
        ["_", "wait", "--timeout", "soon"],
        ["_", "cost", "w1", "1", "--unit", "eur"],
        ["_", "state", "--bogus"],
        ["nosuchcommand"],
    ],
)
def test_usage_errors_are_one_line(looop: Looop, argv: list[str]) -> None:
    done = looop.run(*argv, code=2)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("looop: "), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["_", "goal", "write", "g"], "goal body"),
        (["_", "sensor", "write", "s"], "sensor script"),
        (["_", "playbook", "write"], "playbook body"),
        (["_", "answer", "w1-1"], "answer"),
        (["_", "notify"], "message"),
        (["_", "ask", "w1"], "prompt"),
    ],
    ids=["goal", "sensor", "playbook", "answer", "notify", "ask"],
)
def test_a_body_is_never_awaited_from_a_terminal(looop: Looop, argv: list[str], what: str) -> None:
    looop.run("_", "state")
    before = tree(looop.data)
    controller, terminal = pty.openpty()  # stdin is a real terminal, as when a human types the verb
    try:
        done = subprocess.run(
            [looop.program, *argv],
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=30,  # a verb that reads the terminal would hang here
            env=looop.env,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr == f"looop: no {what} given: pass it inline or pipe it on stdin\n"
    assert tree(looop.data) == before


def test_an_empty_body_on_stdin_is_refused(looop: Looop) -> None:
    done = looop.run("_", "goal", "write", "g", code=2)  # stdin at /dev/null: read, and empty
    assert done.stderr.count("\n") == 1 and "empty" in done.stderr
    assert not (looop.data / "goals/g.md").exists()


def test_an_unwritable_data_dir_is_one_line(looop: Looop, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    done = looop.run("_", "state", code=None, env={"LOOOP_DATA_DIR": str(blocker / "data")})
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
