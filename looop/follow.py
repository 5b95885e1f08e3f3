"""`looop logs` and `looop tail`: a worker's transcript as clean text, and the journal, printed
or followed as they grow."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from looop.fsio import tail_lines

POLL = 0.2
# CSI (colours, cursor moves), OSC (titles, links), and the short escapes TUIs use
ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[@-Z\\-_78=>]"
)
CONTROLS = re.compile(rb"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


def clean(data: bytes) -> str:
    """Terminal output as the text a person would read: no escape codes, a carriage return
    overwriting its line as it did on screen."""
    data = ESCAPES.sub(b"", data).replace(b"\r\n", b"\n")
    lines = []
    for line in data.split(b"\n"):
        line = line.rstrip(b"\r").rsplit(b"\r", 1)[-1]
        lines.append(CONTROLS.sub(b"", line).decode(errors="replace").rstrip())
    return "\n".join(lines)


def print_transcript(transcript: Path, follow: bool, still_running: Callable[[], bool]) -> None:
    """The rotated part, then the live one; with `follow`, new output until the worker ends."""
    older = transcript.with_name(transcript.name + ".1")
    for part in (older, transcript):
        if part.exists():
            _write(clean(part.read_bytes()).rstrip("\n") + "\n")
    if follow:
        _follow(transcript, lambda chunk: _write(clean(chunk) + "\n"), still_running)


def print_journal(journal: Path, count: int, follow: bool) -> None:
    """The last `count` entries; with `follow`, every new one until interrupted."""
    for line in tail_lines(journal, count):
        _write(line + "\n")
    if follow:
        _follow(journal, lambda chunk: _write(chunk.decode(errors="replace") + "\n"), lambda: True)


def _follow(path: Path, emit: Callable[[bytes], None], keep_going: Callable[[], bool]) -> None:
    """Emit whole new lines as `path` grows (a rotation or replacement starts it over) until
    `keep_going()` turns false with nothing left to read."""
    offset = path.stat().st_size if path.exists() else 0
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
        complete, _, pending = pending.rpartition(b"\n")
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


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
