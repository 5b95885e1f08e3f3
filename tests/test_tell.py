"""`_ worker tell`: a message typed into a live worker's agent, as a human at its terminal would,
with the fake agent's input box recording what it took. (The real CLIs: test_real_agents.py.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import AGENT, Looop, Up, ended, posing_as, screen, script, wait_for, worker

# the fake agent as a profile of its own that takes bracketed pastes in raw mode, as the claude
# and pi ones do
PASTING = {"fake": {"command": AGENT, "bracketed_paste": True, "raw_mode": True}}


def told(log: Path, count: int) -> list[dict[str, Any]]:
    """The messages the fake agent's input box took (submitted), once there are `count`."""

    def lines() -> list[dict[str, Any]]:
        whole = log.read_text().split("\n")[:-1] if log.exists() else []  # not a line being written
        return [orjson.loads(line) for line in whole]

    return list(wait_for(lambda: len(found := lines()) >= count and found, 30, f"{count} told messages"))


def listening(looop: Looop, up: Up, tmp_path: Path, interactive: object = "fake") -> Path:
    """Start `up` and worker w1, sitting idle at its input box; return the file of what it takes."""
    up.configure(interactive=interactive, idle_after="1s", kill_grace="1s", profiles=PASTING)
    up.start()
    log = tmp_path / "told.jsonl"
    looop.run("_", "worker", "start", "w1", script("say ready", f"listen {log}"))
    wait_for(lambda: worker(looop, "w1").get("state") == "idle", 30, "w1 idle at its prompt")
    return log


def test_a_told_message_reaches_the_agent_as_one_submitted_message_with_its_newlines_and_is_journaled(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    log = listening(looop, up, tmp_path)
    done = looop.run("_", "worker", "tell", "w1", "Stop refactoring.\nOnly fix the failing test.")
    assert done.stdout == "told w1: Stop refactoring. ⏎ Only fix the failing test.\n"
    first = {"text": "Stop refactoring.\nOnly fix the failing test.", "pasted": True}
    assert told(log, 1) == [first]
    # the message on stdin (a heredoc's last newline is not part of it); words as one argument each
    looop.run("_", "worker", "tell", "w1", input="Then write\n\tyour report.\n")
    looop.run("_", "worker", "tell", "w1", "and", "end", "yourself")
    second = {"text": "Then write\n\tyour report.", "pasted": True}
    assert told(log, 3) == [first, second, {"text": "and end yourself", "pasted": True}]
    journal = looop.journal()
    assert "root · worker tell · w1 · Stop refactoring. ⏎ Only fix the failing test." in journal
    assert journal.count("· worker tell · w1 ·") == 3
    assert worker(looop, "w1")["alive"]


def test_a_long_message_is_journaled_shortened_and_typed_whole(looop: Looop, up: Up, tmp_path: Path) -> None:
    log = listening(looop, up, tmp_path)
    text = " ".join(f"word{i}" for i in range(1800))  # about 15 KiB: more than a pty takes in one read
    looop.run("_", "worker", "tell", "w1", input=text)
    assert told(log, 1) == [{"text": text, "pasted": True}]
    [line] = [line for line in looop.journal().splitlines() if "worker tell" in line]
    assert line.endswith("…") and len(line) < 200


def test_a_worker_told_while_busy_takes_the_message_once_it_reads_its_input(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive="fake", idle_after="1s", kill_grace="1s", profiles=PASTING)
    up.start()
    log, go = tmp_path / "told.jsonl", tmp_path / "go"
    steps = script("raw", "say working on it", f"busy-until {go}", f"listen {log}")
    looop.run("_", "worker", "start", "w1", steps)
    wait_for(lambda: "working on it" in screen(looop, "w1"), 30, "w1 busy, its terminal raw")
    assert worker(looop, "w1")["state"] == "running"
    looop.run("_", "worker", "tell", "w1", "When you are done, also update the changelog.")
    assert worker(looop, "w1")["state"] == "running" and not log.exists()
    go.touch()
    assert told(log, 1) == [{"text": "When you are done, also update the changelog.", "pasted": True}]


def test_an_agent_without_bracketed_paste_gets_the_text_and_the_submit_key_and_no_several_lines(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    log = listening(looop, up, tmp_path, interactive=AGENT)  # a plain command: the generic profile
    looop.run("_", "worker", "tell", "w1", "Use the staging database.")
    assert told(log, 1) == [{"text": "Use the staging database.", "pasted": False}]
    refused = looop.run("_", "worker", "tell", "w1", "one\ntwo", code=2).stderr
    assert "several lines" in refused and "bracketed_paste" in refused
    assert len(refused.strip().splitlines()) == 1
    # a tab would reach it as a key (completion, focus), not as text
    refused = looop.run("_", "worker", "tell", "w1", "one\ttwo", code=2).stderr
    assert "a tab" in refused and "bracketed_paste" in refused
    assert len(refused.strip().splitlines()) == 1
    assert looop.journal().count("worker tell") == 1


def test_the_configs_profile_sets_the_keys_typed_after_the_message(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    # the fake agent submits on "\r": a "!" typed before it lands in the message, after the paste
    profiles = {"fake": {"command": AGENT, "bracketed_paste": True, "raw_mode": True, "submit": "!\r"}}
    up.configure(interactive="fake", idle_after="1s", kill_grace="1s", profiles=profiles)
    up.start()
    log = tmp_path / "told.jsonl"
    looop.run("_", "worker", "start", "w1", script(f"listen {log}"))
    looop.run("_", "worker", "tell", "w1", "hello")
    assert told(log, 1) == [{"text": "hello!", "pasted": True}]


@pytest.fixture
def idle_worker(looop: Looop, up: Up, tmp_path: Path) -> Iterator[Path]:
    yield listening(looop, up, tmp_path)


def data_files(looop: Looop) -> dict[str, str]:
    """Every file of the data dir but the live ones (the screen, the transcript), by its hash."""
    skip = ("screen.txt", "transcript.log", "up.log", "status.json", "last-verb")
    return {
        str(p.relative_to(looop.data)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(looop.data.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(skip)
    }


@pytest.mark.parametrize(
    ("args", "stdin", "code", "says"),
    [
        (["w9", "hello"], None, 4, "no worker 'w9'"),
        (["w1"], "", 2, "the message is empty"),
        (["w1", " \n "], None, 2, "the message is empty"),
        (["w1", "go up\x1b[A"], None, 2, "control character '\\x1b' (character 6)"),
        (["w1", "stop\x03"], None, 2, "control character '\\x03'"),
        (["w1", "carriage\rreturn"], None, 2, "control character '\\r'"),
        (["w1"], "x" * (16 * 1024 + 1), 2, "over the 16384 a worker is told at once"),
        (["w1", "bad \udcff byte"], None, 2, "not valid UTF-8"),  # argv bytes that are not UTF-8
        (["pulse", "hi"], None, 2, "reserved"),
    ],
)
def test_a_bad_tell_is_refused_with_one_line_and_nothing_typed_or_written(
    looop: Looop,
    idle_worker: Path,
    args: list[str],
    stdin: str | None,
    code: int,
    says: str,
) -> None:
    before = data_files(looop)
    done = looop.run("_", "worker", "tell", *args, input=stdin, code=None)
    assert done.returncode == code, done.stderr
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert data_files(looop) == before and not idle_worker.exists()
    assert worker(looop, "w1")["state"] == "idle"


def test_an_ended_worker_is_not_told_and_a_tell_without_up_says_so(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive=AGENT, idle_after="1s", kill_grace="1s")
    up.start()
    looop.run("_", "worker", "start", "w1", script("exit"))
    ended(looop, "w1")
    refused = looop.run("_", "worker", "tell", "w1", "hello", code=5).stderr
    assert refused == (
        "looop: worker w1 has ended (exited): nothing to type into"
        " (`_ worker resume w1` starts it again with its conversation)\n"
    )
    assert "worker tell" not in looop.journal()
    looop.run("down")
    assert looop.run("_", "worker", "tell", "w1", "hello", code=7).stderr.startswith("looop: looop is not up")


def test_a_worker_at_a_dialog_is_not_told_for_its_keys_would_answer_the_dialog(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive="fake", idle_after="1s", kill_grace="1s", profiles=PASTING)
    up.start()
    looop.run("_", "worker", "start", "w1", script("prompt Overwrite the database? (y/n)", "say after"))
    wait_for(lambda: "Overwrite the database?" in screen(looop, "w1"), 30, "the dialog on the screen")
    refused = looop.run("_", "worker", "tell", "w1", "yes, go ahead", code=5).stderr
    assert refused.startswith("looop: worker w1's agent shows a dialog: a message typed now would answer it")
    assert "worker tell" not in looop.journal()
    looop.run("_", "worker", "kill", "w1")
    assert "prompt answer" not in screen(looop, "w1")  # no key reached it


def test_a_worker_told_before_its_agent_took_its_terminal_gets_the_message_once_it_has(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    # a Node TUI spends seconds at start with its terminal still cooked: typed then, the kernel
    # echoes the text and turns the submit key into a newline
    up.configure(interactive="fake", idle_after="1s", kill_grace="1s", profiles=PASTING)
    up.start()
    log = tmp_path / "told.jsonl"
    looop.run("_", "worker", "start", "w1", script("sleep 3", "raw", f"listen {log}"))
    done = looop.run("_", "worker", "tell", "w1", "Start with the parser.")
    assert done.stdout == "told w1: Start with the parser.\n"
    assert told(log, 1) == [{"text": "Start with the parser.", "pasted": True}]
    assert "· worker tell · w1 · Start with the parser." in looop.journal()


def test_a_tell_to_an_agent_that_never_takes_its_terminal_fails_with_one_line_and_types_nothing(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive="fake", idle_after="1s", kill_grace="1s", profiles=PASTING)
    up.start()
    looop.run("_", "worker", "start", "w1", script("say ready"))  # then reads lines, cooked
    wait_for(lambda: worker(looop, "w1").get("state") == "idle", 30, "w1 idle")
    refused = looop.run("_", "worker", "tell", "w1", "hello", code=5).stderr
    assert refused.startswith("looop: worker w1: not typed: its agent did not take its terminal (raw mode)")
    assert len(refused.strip().splitlines()) == 1
    assert "· worker tell · w1 · not typed" in looop.journal()
    looop.run("_", "worker", "kill", "w1")
    assert "you said" not in screen(looop, "w1")


def test_a_dialog_that_appears_once_the_text_is_typed_gets_no_submit_key_and_the_tell_says_so(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    # claude's profile (a plain argv of claude: its dialogs, no hook): Enter at its permission
    # dialog is "1. Yes"
    up.configure(interactive=["claude", "{task}"], kill_grace="1s", idle_after="1s")
    up.start(PATH=posing_as(tmp_path, "claude"))
    steps = script("raw", "await-keys", "dialog rm -r build", "say after the dialog")
    looop.run("_", "worker", "start", "w1", steps)
    wait_for(lambda: "contract:" in screen(looop, "w1"), 30, "w1 started")
    refused = looop.run("_", "worker", "tell", "w1", "Go on.", code=5).stderr
    assert refused.startswith(
        "looop: worker w1: typed but not submitted: its agent shows its permission dialog"
    )
    assert len(refused.strip().splitlines()) == 1
    assert "· worker tell · w1 · typed but not submitted: its agent shows its permission dialog" in (
        looop.journal()
    )
    ask = wait_for(lambda: looop.state()["asks"], what="the dialog's ask")[0]
    looop.run("_", "answer", ask["id"], "no")
    wait_for(lambda: "after the dialog" in screen(looop, "w1"), what="the dialog answered")
    assert "dialog answer: no" in screen(looop, "w1")  # its answer, not the submit key's "yes"


def test_format_characters_reach_the_agent_as_given_and_the_journal_and_reply_show_them_escaped(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    log = listening(looop, up, tmp_path)
    text = "rename \u202eevil\u202c to\u200b good"  # a bidi override, its end, a zero-width space
    done = looop.run("_", "worker", "tell", "w1", text)
    assert done.stdout == "told w1: rename \\u202eevil\\u202c to\\u200b good\n"
    assert told(log, 1) == [{"text": text, "pasted": True}]
    journal = looop.journal()
    assert "· worker tell · w1 · rename \\u202eevil\\u202c to\\u200b good" in journal
    assert not any(ch in journal for ch in "\u202e\u202c\u200b")
