"""`looop logs` and `looop tail`: a worker's transcript as the text its terminal showed, and the
journal, printed or followed as they grow."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from looop.base.files import tail_lines
from looop.store.paths import rotated
from looop.workers.terminal import COLS, ROWS, Terminal

POLL = 0.2
RENDERED = 4 * 1024 * 1024  # the most transcript `logs` renders: the newest (pyte parses ~1 MB/s)


class Scrollback:
    """What a terminal of the worker's pty size showed: the lines that scrolled off its top,
    each handed out once it has (a TUI may still redraw anything on the screen), then the
    final screen."""

    def __init__(self) -> None:
        self.terminal = Terminal(ROWS, COLS, keep_scrolled=True)

    def feed(self, data: bytes) -> list[str]:
        """Take output; return the lines it scrolled off the screen."""
        self.terminal.feed(data)
        return self.terminal.take_scrolled()

    def finish(self) -> list[str]:
        """The lines not handed out yet, then the screen (its blank bottom left out)."""
        screen = self.terminal.text().rstrip("\n")
        return self.terminal.take_scrolled() + (screen.split("\n") if screen else [])


def print_transcript(transcript: Path, follow: bool, still_running: Callable[[], bool]) -> None:
    """The rotated part, then the live one, as a terminal of the worker's size showed them
    (scrollback, then the screen); with `follow`, each line once it scrolls off the screen,
    and the screen when the worker ends. Of a longer transcript only the newest `RENDERED`
    bytes are rendered."""
    older = rotated(transcript)
    data = older.read_bytes() if older.exists() else b""
    live = transcript.read_bytes() if transcript.exists() else b""
    data += live
    view = Scrollback()
    if len(data) > RENDERED:
        data = data[-RENDERED:]
        data = data[data.find(b"\n") + 1 :]  # start the terminal at a line boundary
        _write(f"[older output left out: only the last {RENDERED // (1024 * 1024)} MB are shown]\n")
    _write_lines(view.feed(data))
    if follow:
        _follow(transcript, lambda chunk: _write_lines(view.feed(chunk)), still_running, len(live))
    _write_lines(view.finish())


def print_journal(journal: Path, count: int, follow: bool) -> None:
    """The last `count` entries; with `follow`, every new one until interrupted."""
    for line in tail_lines(journal, count):
        _write(line + "\n")
    if follow:
        _follow(
            journal, lambda chunk: _write(chunk.decode(errors="replace") + "\n"), lambda: True, lines=True
        )


def _follow(
    path: Path,
    emit: Callable[[bytes], None],
    keep_going: Callable[[], bool],
    offset: int | None = None,
    lines: bool = False,
) -> None:
    """Emit what `path` gains past `offset` (its size now if None) as it grows, in whole lines
    when `lines` (a rotation or replacement starts it over), until `keep_going()` turns false
    with nothing left to read."""
    offset = (path.stat().st_size if path.exists() else 0) if offset is None else offset
    identity = _identity(path)
    pending = b""
    while True:
        now_identity = _identity(path)
        if now_identity != identity or (path.exists() and path.stat().st_size < offset):
            identity, offset = now_identity, 0  # rotated: the new file starts at its beginning
        data = b""
        if path.exists():
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
            offset += len(data)
        pending += data
        complete, _, pending = pending.rpartition(b"\n") if lines else (pending, b"", b"")
        if complete:
            emit(complete)
        if not data:
            if not keep_going():
                if pending:
                    emit(pending)
                return
            time.sleep(POLL)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def _write_lines(lines: list[str]) -> None:
    if lines:
        _write("".join(line + "\n" for line in lines))


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
