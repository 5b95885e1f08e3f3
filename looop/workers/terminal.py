"""Terminal output as a person saw it: a terminal emulator (pyte) fed an agent's raw bytes.

One wrapper for both readers of a worker's output: the babysitter's `screen.txt` (the screen
now) and `looop logs` (the scrollback: lines scrolled off the top, then the screen). TUIs place
text with cursor moves and redraw lines in place, so only an emulator gives back their spacing.

pyte does not know several sequences today's agent CLIs send, and prints the tail of some as
text (`CSI < u`, the kitty keyboard protocol's pop, comes out as `u`; `CSI ? u` even moves the
cursor). `SequenceFilter` drops those before pyte sees them, keeping a sequence split across two
reads until its end arrives.
"""

from __future__ import annotations

import re
from typing import Any

import pyte
from pyte import modes as mo
from pyte.screens import Margins, wcwidth

# CSI sequences pyte misreads, dropped whole: a private prefix other than `?` (kitty keyboard
# `CSI > 1 u` / `CSI < u` / `CSI = 1;1 u`, xterm modifyOtherKeys `CSI > 4;2 m`, secondary DA,
# XTVERSION), `?` with a final that is not a DEC mode set/reset or erase (`CSI ? u`, DECRQM
# `CSI ? 2026 $ p`), any intermediate byte (`CSI ! p`, `CSI 2 SP q`), colon sub-parameters
# (`CSI 38:2::1:2:3 m`); and the string sequences DCS, SOS, PM and APC (kitty graphics), to ST.
# Colours (SGR) and OSC strings (titles, OSC 8 links) do not change the text: dropped too, as
# pyte's parser is slow (about 1 MB/s) and most of a TUI's output is such sequences.
_DROPPED = re.compile(
    rb"\x1b\[[0-9;:]*m"
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    rb"|\x1b\[[<=>][0-?]*[ -/]*[@-~]"
    rb"|\x1b\[\?[0-?]*(?:[ -/]+[@-~]|[@-IL-gi-km-~])"
    rb"|\x1b\[[0-9;]*:[0-?]*[ -/]*[@-~]"
    rb"|\x1b\[[0-9;:]*[ -/]+[@-~]"
    rb"|\x1b[PX^_](?:(?!\x1b\\)[^\x07])*(?:\x1b\\|\x07)"
)
_PARTIAL_CSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*)?")
_STRING_END = re.compile(rb"\x1b\\|\x07")
ROWS, COLS = 50, 200  # every worker's pty
MAX_CARRY = 1024 * 1024  # an unterminated string sequence longer than this is dropped


class SequenceFilter:
    """Removes the sequences pyte misreads from a stream of reads; a sequence cut off at the end
    of a read is held back until the next read completes it."""

    def __init__(self) -> None:
        self._carry = b""

    def __call__(self, data: bytes) -> bytes:
        data = self._carry + data
        self._carry = b""
        start = max(data.rfind(introducer) for introducer in (b"\x1bP", b"\x1bX", b"\x1b^", b"\x1b_"))
        if start < 0 or _STRING_END.search(data, start + 2):
            start = data.rfind(b"\x1b")
            if start >= 0 and not _PARTIAL_CSI.fullmatch(data, start):
                start = -1
        if start >= 0:
            if len(data) - start <= MAX_CARRY:
                self._carry = data[start:]
            data = data[:start]
        return _DROPPED.sub(b"", data)

    def reset(self) -> None:
        self._carry = b""


def row_text(row: Any, columns: int) -> str:
    """One screen row as text (as pyte's `display` renders it), trailing blanks removed."""
    if not row:
        return ""
    cells = [row[x].data for x in range(min(columns, max(row) + 1))]
    text = "".join(cells)
    if text.isascii() and len(text) == len(cells):  # one character a cell: nothing wide
        return text.rstrip()
    shown, wide = [], False
    for char in cells:
        if not wide:  # else the stub cell after a wide character
            shown.append(char or " ")  # a stub whose wide character was overwritten: a blank
        wide = not wide and bool(char) and wcwidth(char[0]) == 2
    return "".join(shown).rstrip()


class _Screen(pyte.Screen):
    """A pyte screen that keeps, when asked to, the lines that leave it: scrolled off its top,
    or wiped by a clear-screen."""

    def __init__(self, columns: int, lines: int, keep_scrolled: bool) -> None:
        super().__init__(columns, lines)
        self.keep_scrolled = keep_scrolled
        self.scrolled: list[str] = []

    def draw(self, data: str) -> None:
        """pyte's `draw`, with a fast path for the common case: characters one cell wide that fit
        on the line, in replace mode, through a charset that leaves them as they are."""
        x = self.cursor.x
        if (
            x + len(data) > self.columns
            or mo.IRM in self.mode
            or not ((data.isascii() and data.isprintable()) or all(wcwidth(c) == 1 for c in data))
            or data.translate(self.g1_charset if self.charset else self.g0_charset) != data
        ):
            super().draw(data)
            return
        attrs = self.cursor.attrs
        make, kind, rest = tuple.__new__, type(attrs), tuple(attrs[1:])
        line = self.buffer[self.cursor.y]
        for offset, char in enumerate(data, x):
            line[offset] = make(kind, (char, *rest))
        self.cursor.x = x + len(data)
        self.dirty.add(self.cursor.y)

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if self.keep_scrolled and how in (2, 3):  # clear the screen: what it showed is kept
            rows = [row_text(self.buffer[y], self.columns) for y in range(self.lines)]
            while rows and not rows[-1]:
                rows.pop()
            self.scrolled.extend(rows)
        super().erase_in_display(how, *args, **kwargs)

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.keep_scrolled and top == 0 and self.cursor.y == bottom:
            self.scrolled.append(row_text(self.buffer[0], self.columns))
        super().index()


class Terminal:
    """A terminal of `rows` x `cols` fed raw output. With `keep_scrolled`, the lines that scroll
    off its top are kept for `take_scrolled` (a terminal's scrollback), and so are those a
    clear-screen wipes (as VTE and kitty keep them): a log loses nothing a TUI cleared."""

    def __init__(self, rows: int, cols: int, keep_scrolled: bool = False) -> None:
        self._screen = _Screen(cols, rows, keep_scrolled)
        self._stream = pyte.ByteStream(self._screen)
        self._filter = SequenceFilter()

    def feed(self, data: bytes) -> None:
        self._stream.feed(self._filter(data))

    def reset(self) -> None:
        """A fresh terminal (kept scrollback stays)."""
        self._screen.reset()
        self._stream = pyte.ByteStream(self._screen)
        self._filter.reset()

    def lines(self) -> list[str]:
        """The screen's rows as text, trailing blanks removed."""
        screen = self._screen
        return [row_text(screen.buffer[y], screen.columns) for y in range(screen.lines)]

    def text(self) -> str:
        """The screen as a text file: its rows, without the blank rows at the bottom."""
        return "\n".join(self.lines()).rstrip() + "\n"

    @property
    def cursor_row(self) -> int:
        return int(self._screen.cursor.y)

    def take_scrolled(self) -> list[str]:
        """The lines that scrolled off since the last call, oldest first."""
        taken, self._screen.scrolled = self._screen.scrolled, []
        return taken
