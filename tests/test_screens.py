"""What an operator sees of a worker is what its terminal showed: `looop logs` and `screen.txt`
go through one terminal emulator that knows the sequences real agent CLIs send, the screen is
written before the root agent is shown an ask, and `status` shows a line worth reading."""

from __future__ import annotations

import pytest

from looop.term import Terminal
from tests.conftest import AGENT, Looop, Up, ended, screen, script, wait_for

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
    terminal = Terminal(5, 200)
    terminal.feed(b"Claude\x1b[13GCode\r\n" + CLAUDE_WORDS + b"\r\nsee " + PI_LINK)
    assert terminal.lines()[:3] == ["Claude      Code", " " * 177 + "ctrl+g to edit in Vim", "see docs"]


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
