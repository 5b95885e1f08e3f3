"""`journal.md`: one timestamped, human-readable line per move; append-only."""

from __future__ import annotations

import os
import time

from looop.base.fields import MAX_TIME, finite
from looop.base.files import StoreLock, append_line, tail_lines
from looop.base.ids import printable
from looop.store.paths import DataDir

MAX_FIELD = 300


def timestamp(at: float | None = None) -> str:
    """UTC time as `2026-11-25T08:12:26Z`; `invalid time` for any number no calendar shows."""
    at = time.time() if at is None else finite(at, 0.0, MAX_TIME)
    if at is None:
        return "invalid time"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def one_line(text: str, limit: int = MAX_FIELD) -> str:
    """Fold newlines, show control and format characters escaped (`ids.printable`) and cap the
    length, so that one entry stays one line that shows what it holds."""
    folded = printable(" ⏎ ".join(part.strip() for part in text.strip().splitlines() if part.strip()))
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def actor() -> str:
    """Who makes this move: the worker session calling a verb, else the root agent."""
    return os.environ.get("LOOOP_SESSION_ID") or "root"


def record(
    dd: DataDir, verb: str, subject: str, result: str, reason: str = "", who: str | None = None
) -> None:
    """Append `- TIME WHO · VERB · SUBJECT · RESULT[ — reason: …]` to the journal."""
    append(dd, entry(verb, subject, result, reason, who))


def entry(verb: str, subject: str, result: str, reason: str = "", who: str | None = None) -> str:
    """One journal line, stamped now (to append later with `append` when it cannot be now)."""
    line = f"- {timestamp()} {who or actor()} · {verb} · {one_line(subject)} · {one_line(result)}"
    if reason:
        line += f" — reason: {one_line(reason)}"
    return line


def append(dd: DataDir, *entries: str) -> None:
    """Append lines made by `entry`, under the store lock."""
    with StoreLock.for_path(dd.store_lock).held():
        for line in entries:
            append_line(dd.journal, line)


def tail(dd: DataDir, count: int = 20) -> list[str]:
    """The last `count` entries, oldest first, without the list marker."""
    return [line.removeprefix("- ") for line in tail_lines(dd.journal, count) if line.strip()]
