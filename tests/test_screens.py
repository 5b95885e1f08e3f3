"""What an operator sees of a worker is what its terminal showed: `looop logs` and `screen.txt`
go through one terminal emulator that knows the sequences real agent CLIs send, the screen is
written before the root agent is shown an ask, and `status` shows a line worth reading."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pyte
import pytest

from looop.workers.profiles import CLAUDE_SCREEN_SKIP, PI_SCREEN_SKIP
from looop.workers.terminal import Terminal, row_text
from looop.world.state import meaningful_lines
from tests.conftest import AGENT, Looop, Up, ended, screen, script, wait_for, worker

# Byte strings as Claude Code 2.1.197 and pi 0.73.1 sent them to a 50x200 pty.
CLAUDE_START = (
    b"\x1b7\x1b[r\x1b8\x1b[?25h\x1b[?25l\x1b[?2004h\x1b[?1004h\x1b[?2031h\x1b]0;\xe2\x9c\xb3 Claude Code\x07"
)
CLAUDE_QUERIES = b"\x1b[2C\x1b[3A\x1b[>0q\x1b[c\x1b[2D\x1b[3B"
CLAUDE_EXIT = (
    b"\x1b[?1006l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b(B\x0f\x1b[>4m\x1b[<u\x1b[?1004l\x1b[?2031l"
    b"\x1b[?2004l\x1b[?25h\x1b7\x1b[r\x1b8\x1b]0;\x07"
)
CLAUDE_WORDS = b"\x1b[178G\x1b[38;5;246mctrl+g\x1b[185Gto\x1b[188Gedit\x1b[193Gin\x1b[196GVim\x1b[39m"
PI_START = b"\x1b[?2004h\x1b[?u\x1b[?25l\x1b]0;\xcf\x80 - capcwd\x07\x1b[?2026h\x1b[0m\x1b]8;;\x07"
PI_PROMPT = b"\x1b[?2026l\x1b[20G\x1b[?25l\x1b[?2026h\x1b]133;A\x07\x1b[>4;2m\x1b]133;B\x07\x1b[>4;0m"
PI_LINK = b"\x1b]8;;https://example.com/docs\x1b\\docs\x1b]8;;\x1b\\"
OTHERS = [
    b"\x1b[>1u",
    b"\x1b[=1;1u",
    b"\x1b[<1u",
    b"\x1b[?2026$p",
    b"\x1b[38:2::1:2:3m",
    b"\x1b_Gi=1;AAAA\x1b\\",
]


@pytest.mark.parametrize(
    "sequence",
    [CLAUDE_START, CLAUDE_QUERIES, CLAUDE_EXIT, PI_START, PI_PROMPT, *OTHERS],
    ids=["claude-start", "claude-queries", "claude-exit", "pi-start", "pi-prompt", *map(repr, OTHERS)],
)
def test_the_sequences_agents_send_leave_no_stray_characters_even_split_across_reads(
    sequence: bytes,
) -> None:
    output = b"before" + sequence + b"after"
    for cut in range(len(output) + 1):
        terminal = Terminal(5, 80)
        terminal.feed(output[:cut])
        terminal.feed(output[cut:])
        text = terminal.text()
        assert "before" in text and text.replace("before", "", 1).strip() == "after", (cut, text)


def test_text_placed_by_cursor_moves_keeps_its_spacing_and_links_keep_their_text() -> None:
    output = b"Claude\x1b[13GCode\r\n" + CLAUDE_WORDS + b"\r\nsee " + PI_LINK
    for cut in range(len(output) + 1):
        terminal = Terminal(5, 200)
        terminal.feed(output[:cut])
        terminal.feed(output[cut:])
        assert terminal.lines()[:3] == ["Claude      Code", " " * 177 + "ctrl+g to edit in Vim", "see docs"]


def test_the_emulator_draws_text_as_pyte_does() -> None:
    """`looop.workers.terminal` draws runs of text faster than pyte; the screen must come out the same (and
    a wide character's orphaned stub cell, which pyte's own `display` trips over, is a blank)."""
    pieces = [
        b"plain words ",
        "wide 日本語 and combining e\u0301 ".encode(),
        "box ─│╭╮ ".encode(),
        b"\x1b[4h(insert)\x1b[4l",
        b"\x1b(0qqq\x1b(B",
        b"\r\n",
        b"x" * 37,
        b"z" * 11,
        b"w" * 13,
        b"\x1b[2;70H",
        b"\x1b[?7l" + b"y" * 90 + b"\x1b[?7h",
    ]
    output = b"".join(random.Random(11).choices(pieces, k=1500))
    terminal = Terminal(12, 80)
    reference = pyte.Screen(80, 12)
    stream = pyte.ByteStream(reference)
    for start in range(0, len(output), 333):
        terminal.feed(output[start : start + 333])
        stream.feed(output[start : start + 333])
        assert terminal.lines() == [row_text(reference.buffer[y], 80) for y in range(12)]
    terminal = Terminal(3, 20)
    terminal.feed("日本\x1b[1Ga".encode())  # half of 日 overwritten
    assert terminal.lines()[0] == "a 本"


def test_logs_and_the_screen_show_a_tui_as_its_terminal_did(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    words = "\\x1b[6GClaude\\x1b[13GCode\\x1b[20Gv2\\r\\n"
    exit_tail = CLAUDE_EXIT.decode().encode("unicode_escape").decode()
    looop.run("_", "worker", "start", "w1", script(f"emit {words}", f"emit {exit_tail}", "say done", "exit"))
    ended(looop, "w1")
    logs = looop.run("logs", "w1").stdout.splitlines()
    assert "     Claude Code   v2" in logs and "● done" in logs, logs
    shown = screen(looop, "w1").splitlines()
    assert "     Claude Code   v2" in shown and "● done" in shown, shown  # not "u● done"


def test_logs_keep_what_a_tui_cleared_off_the_screen_such_as_an_earlier_run(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    looop.run("_", "worker", "start", "w1", script("say the first run", "exit"))
    ended(looop, "w1")
    looop.run("_", "worker", "start", "w1", script("say the second run", "exit"))  # clears the screen
    wait_for(lambda: "second run" in screen(looop, "w1") and not worker(looop, "w1")["alive"])
    logs = looop.run("logs", "w1").stdout.splitlines()
    assert logs.count("● the first run") == 1 and logs.count("● the second run") == 1, logs
    assert logs.index("● the first run") < logs.index("● the second run")


def test_logs_follow_prints_lines_as_they_scroll_off_then_the_last_screen(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    looop.run("_", "claim", "root", "gate")  # the worker waits for it, printing nothing
    lines = "".join(f"line {n}\\r\\n" for n in range(80))
    looop.run("_", "worker", "start", "w1", script(f"emit {lines}", "claim-until gate", "exit"))
    wait_for(lambda: "line 79" in screen(looop, "w1"), what="the lines on the screen")
    follower = looop.popen("logs", "w1", "-f")
    assert follower.stdout is not None
    first = follower.stdout.readline()  # the top scrolled off long ago: printed while the worker runs
    assert first.startswith("╭"), first
    looop.run("_", "unclaim", "root", "gate")
    printed = (first + follower.stdout.read()).splitlines()
    assert follower.wait(timeout=30) == 0
    numbered = [line for line in printed if line.startswith("line ")]
    assert numbered == [f"line {n}" for n in range(80)], printed  # each once, in order
    assert printed[-1].startswith("● claimed gate at last"), printed


def test_a_wait_that_returns_a_new_ask_finds_what_the_worker_printed_before_it_on_the_screen(
    looop: Looop, up: Up
) -> None:
    up.configure(interactive=AGENT, idle_after="30s")
    up.start()
    steps = [step for n in range(5) for step in (f"say working on part {n}", f"ask Part {n} done, go on?")]
    looop.run("_", "worker", "start", "w1", script(*steps, "exit"))
    for n in range(5):
        while True:
            state = orjson.loads(looop.run("_", "wait", "--json").stdout)
            shown = screen(looop, "w1")  # read at once: the root agent may look right away
            asks = [a for a in state["asks"] if a["worker"] == "w1"]
            if asks:
                break
        assert asks[0]["prompt"] == f"Part {n} done, go on?"
        assert f"asking: Part {n} done, go on?" in shown, shown
        looop.run("_", "answer", asks[0]["id"], "yes")
    ended(looop, "w1")


def record_path(looop: Looop, worker_id: str) -> Path:
    return looop.data / "sessions" / worker_id / "state.json"


def test_status_passes_over_the_status_bars_its_worker_record_names(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    chrome = "\\u2500" * 30 + "\\r\\n> \\r\\n" + "\\u2500" * 30 + "\\r\\n  ? for shortcuts\\r\\n"
    looop.run("_", "worker", "start", "w1", script("say compiling the thing", f"emit {chrome}", "exit"))
    record = ended(looop, "w1")
    assert record["screen_skip"] == [] and record["screen_line"] == "? for shortcuts"
    stored = orjson.loads(record_path(looop, "w1").read_bytes())
    stored["screen_skip"] = ["(unclosed", *CLAUDE_SCREEN_SKIP]  # a bad pattern is passed over too
    record_path(looop, "w1").write_bytes(orjson.dumps(stored))
    assert worker(looop, "w1")["screen_line"] == "● compiling the thing"


def test_an_ended_worker_that_failed_shows_its_last_error_line(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT)
    up.start()
    looop.run(
        "_", "worker", "start", "w1", script("say Error: the model refused", "say tidying up", "crash 3")
    )
    looop.run("_", "worker", "start", "w2", script("say all fine", "exit"))
    assert ended(looop, "w1")["error_line"] == "● Error: the model refused"
    ended(looop, "w2")
    rows = {line.split()[0]: line for line in looop.run("status").stdout.splitlines() if line[:3] == "  w"}
    assert rows["w1"].endswith("● Error: the model refused"), rows
    assert rows["w2"].endswith("exit 0"), rows


@pytest.mark.parametrize(
    ("capture", "patterns", "expected"),
    [
        (
            b"\x1b[6GClaude\r\n\xe2\x97\x8f Second line of the reply.\r\n\r\n"
            + b"\xe2\x9c\xbb Baked for 0s\r\n\r\n"
            + "─".encode() * 200
            + b"\r\n\xe2\x9d\xaf\xc2\xa0\r\n"
            + "─".encode() * 200
            + b"\r\n  ? for shortcuts \xc2\xb7 \xe2\x86\x90 for agents\x1b[183Ghigh\r\n",
            CLAUDE_SCREEN_SKIP,
            "● Second line of the reply.",
        ),
        (
            b" Second line of the reply.\r\n\r\n"
            + "─".encode() * 200
            + b"\r\n\r\n"
            + "─".encode() * 200
            + b"\r\n/tmp/capcwdk90u5tye (main)\r\n"
            + b"\xe2\x86\x9110 \xe2\x86\x9312 0.0%/128k (auto)\x1b[190G(local) m1",
            PI_SCREEN_SKIP,
            "Second line of the reply.",
        ),
    ],
    ids=["claude", "pi"],
)
def test_the_default_skip_patterns_pass_over_the_agents_chrome(
    capture: bytes, patterns: tuple[str, ...], expected: str
) -> None:
    terminal = Terminal(50, 200)
    terminal.feed(capture)
    assert meaningful_lines(terminal.text(), patterns)[-1] == expected, terminal.text()
