"""`looop status`: the state on one terminal screen, for a human; `--watch` redraws it live.

In order: the pulse (one line), what needs a decision (asks, urgent first; blocked and stalled
workers), one line per worker, then one line for the rest (goals, sensors, claims, notifications,
spend). Every line is one line of text no wider than the terminal, control characters made
printable; each block is bounded ("+N more") so that the decisions are never scrolled away.
The full state is `looop _ state` (or `--json`).
"""

from __future__ import annotations

import calendar
import contextlib
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from wcwidth import wcwidth

from looop.base.fields import finite
from looop.base.ids import printable
from looop.store.paths import DataDir
from looop.world.render import age
from looop.world.state import gather
from looop.world.waiting import wait_for_news

if TYPE_CHECKING:
    from looop.world.state_shape import PulseStatus, SensorRun, State, Worker

REDRAW_EVERY = 2.0  # seconds between redraws of an unchanged world (its ages move)
ID_WIDTH = 16  # the widest worker id column; longer ids are cut
NEEDS_DECISION = ("blocked", "stalled")  # worker states shown among the decisions (asks aside)


def terminal_size() -> tuple[int, int]:
    """Columns and lines: `COLUMNS` and `LINES` when set (as `shutil.get_terminal_size`), else
    the terminal's of stdout, or of stderr or stdin when stdout is a pipe (`status | less`),
    else 80x24."""
    size = shutil.get_terminal_size((0, 0))
    if not (size.columns and size.lines):
        for fd in (2, 0):
            with contextlib.suppress(OSError):
                tty = os.get_terminal_size(fd)
                size = os.terminal_size((size.columns or tty.columns, size.lines or tty.lines))
                break
    return max(size.columns or 80, 1), max(size.lines or 24, 1)


def one_line(text: object) -> str:
    """`text` on one line: runs of white space (newlines too) become one space, control
    characters are made printable."""
    return printable(" ".join(str(text).split()))


def clip(line: str, width: int) -> str:
    """`line` cut with `…` to at most `width` terminal columns (wide characters count two;
    `line` holds no control characters)."""
    shown: list[str] = []
    used = 0
    for char in line:
        cells = max(wcwidth(char), 0)
        if used + cells > width:
            while shown and used > width - 1:  # make room for the ellipsis
                used -= max(wcwidth(shown.pop()), 0)
            return "".join(shown) + ("…" if width >= 1 else "")
        shown.append(char)
        used += cells
    return line


def _seconds(timestamp: object) -> float | None:
    """A `2026-11-25T08:12:26Z` of the state as seconds since the epoch; None when it is not one."""
    try:
        return float(calendar.timegm(time.strptime(str(timestamp), "%Y-%m-%dT%H:%M:%SZ")))
    except (ValueError, OverflowError):
        return None


def _since(now: float, at: object) -> str:
    """How long ago `at` (seconds, or a timestamp of the state) was: `5m`; `?` when unknown."""
    seconds = _seconds(at) if isinstance(at, str) else finite(at, -math.inf, math.inf)
    return "?" if seconds is None else age(now - seconds)


def spend(cost: dict[str, float]) -> str:
    """A worker's spend in a few columns: `$0.85`, `12k tok`, `-` when none."""
    parts = []
    for unit, amount in sorted(cost.items(), key=lambda item: item[0] != "usd"):
        if unit == "usd":
            parts.append(f"${amount:.2f}" if amount < 100 else f"${amount:.0f}")
        elif unit == "tokens":
            for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")):
                if amount >= size or size == 1:
                    parts.append(f"{amount / size:.3g}{suffix} tok")
                    break
        else:
            parts.append(f"{amount:g} {unit}")
    return " ".join(parts) or "-"


def bounded(lines: list[str], room: int, more: Callable[[int], str]) -> list[str]:
    """`lines` if they fit in `room`, else as many as fit with `more(n_left_out)` as the last."""
    if len(lines) <= room:
        return lines
    if room <= 0:
        return []
    return [*lines[: room - 1], more(len(lines) - room + 1)]


# the blocks --------------------------------------------------------------------------------------


def pulse_line(pulse: PulseStatus, now: float) -> str:
    """`pulse: up (pid 12, for 5m, last beat 3s ago)`, or that it is not up."""
    if not pulse["running"]:
        return "pulse: not up (start it with `looop up`)"
    parts = [f"pid {pulse.get('pid')}", f"for {_since(now, pulse.get('started'))}"]
    if pulse.get("last_beat_at") is not None:
        parts.append(f"last beat {_since(now, pulse.get('last_beat_at'))} ago")
    text = f"pulse: {pulse.get('status')} ({', '.join(parts)})"
    return text + (f"; last error: {pulse['last_error']}" if pulse.get("last_error") else "")


def decisions(state: State, now: float) -> list[str]:
    """One line per ask (urgent first, then oldest first), then per blocked or stalled worker."""
    lines = []
    for ask in sorted(state["asks"], key=lambda a: (not a["urgent"], a["created"])):
        flag = "URGENT " if ask["urgent"] else ""
        options = f"[{'|'.join(ask['options'])}] " if ask["options"] else ""
        since = _since(now, ask["created"])
        who = f"{flag}{one_line(ask['id'])}  from {one_line(ask['worker'])}, {since}"
        lines.append(f"  {who}: {one_line(options + ask['prompt'])}")
    for worker in state["workers"]:
        if worker["alive"] and worker["state"] in NEEDS_DECISION:
            dialog = worker.get("blocked_by")
            shown = worker["screen_line"] or (dialog[-1] if isinstance(dialog, list) and dialog else "")
            if worker["state"] == "stalled":
                quiet = max(_number(worker.get("last_output")), _number(worker.get("started")))
                what = f"stalled, quiet for {_since(now, quiet or None)}"
            else:
                what = "blocked at a dialog"
            lines.append(f"  {one_line(worker['id'])}  {what}: {one_line(shown)}")
    return lines


def _number(value: object) -> float:
    return finite(value, -math.inf, math.inf) or 0.0


def ordered_workers(workers: list[Worker]) -> list[Worker]:
    """The live workers as listed, then the ended ones, latest ended first."""
    ended = [w for w in workers if not w["alive"]]
    ended.sort(key=lambda w: -_number(w.get("ended")))
    return [w for w in workers if w["alive"]] + ended


def worker_rows(workers: list[Worker], now: float) -> list[str]:
    """A header, then one row per worker: id, state, age, spend, and its last meaningful screen
    line (an ended worker: the error it showed, else why it ended)."""
    cells = []
    for worker in workers:
        if worker["alive"]:
            last = worker["screen_line"]
        else:
            last = worker.get("error_line") or worker.get("end_reason") or ""
        started = worker.get("started")
        cells.append(
            [
                clip(one_line(worker["id"]), ID_WIDTH),
                one_line(worker["state"]),
                _since(now, started) if started is not None else "?",
                spend(worker.get("cost") or {}),
                one_line(last),
            ]
        )
    header = ["ID", "STATE", "AGE", "SPEND", "LAST SCREEN LINE"]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(4)]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4]
        for row in [header, *cells]
    ]


def workers_title(state: State) -> str:
    workers = state["workers"]
    cap = state["limits"]["max_workers"]
    if not workers:
        return f"workers: none (at most {cap})"
    working = sum(1 for w in workers if w["alive"])
    return f"workers: {working} working (at most {cap}), {len(workers) - working} ended"


def summary(state: State, now: float) -> str:
    """The rest on one line: goals, sensors (the failing and stale ones named), claims,
    spend (of the fleet's budget), notifications (the latest last: the line's end is what a narrow
    terminal cuts)."""
    parts = [_count(len(state["goals"]), "goal")]
    pulse = state["pulse"]
    meta: dict[str, SensorRun] = pulse.get("sensors", {})
    names = sorted(set(state["snapshots"]) | set(meta))
    failing = sorted(n for n in names if n in meta and meta[n].get("status") != "ok")
    # a reading is stale when no beat of a running pulse has reported on its sensor
    stale = sorted(names if not pulse["running"] else (n for n in names if n not in meta))
    notes = [f"failing: {', '.join(failing)}"] if failing else []
    notes += [f"stale: {', '.join(stale)}"] if stale else []
    parts.append(_count(len(names), "sensor") + (f" ({'; '.join(notes)})" if notes else ""))
    parts.append(_count(len(state["claims"]), "claim"))
    total, fleet = state["spend"]["total"], (state["spend"]["budget"] or {}).get("fleet") or {}
    if total or fleet:
        parts.append(
            "spend "
            + ", ".join(_of(total.get(unit, 0), fleet.get(unit), unit) for unit in sorted({*total, *fleet}))
        )
    notices = state["notifications"]
    if notices:
        latest = notices[-1]
        parts.append(
            _count(len(notices), "notification")
            + f", latest {_since(now, latest['at'])} ago: {latest['message']}"
        )
    return " · ".join(parts)


def _of(spent: float, limit: float | None, unit: str) -> str:
    """`1.15 of 1.5 usd` (spent of the fleet's budget), or `1.15 usd` without one."""
    return f"{spent:g}" + ("" if limit is None else f" of {limit:g}") + f" {unit}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def problems_line(state: State) -> str | None:
    """The files skipped as unreadable, paths in the data dir shortened: one line, if any."""
    found = [p.replace(state["data_dir"] + "/", "") for p in state["problems"]]
    if not found:
        return None
    return f"problems ({len(found)} skipped; see `looop _ state`): {'; '.join(found)}"


# the screen --------------------------------------------------------------------------------------


def render_status(state: State, columns: int, lines: int, now: float | None = None) -> list[str]:
    """The status as at most `lines - 1` lines (the last line is the shell's prompt, or the
    cursor's), none wider than `columns`."""
    now = time.time() if now is None else now
    budget = max(lines - 1, 6)
    asks_and_stuck = decisions(state, now)
    title = f"needs a decision ({len(asks_and_stuck)}):" if asks_and_stuck else "needs a decision: nothing"
    workers = ordered_workers(state["workers"])
    rows = worker_rows(workers, now) if workers else []
    header, rows = rows[:1], rows[1:]
    tail = [one_line(summary(state, now))]
    if (problems := problems_line(state)) is not None:
        tail.append(one_line(problems))
    fixed = 1 + 1 + 1 + len(header) + len(tail)  # pulse, two titles, the column header, the rest
    room = max(budget - fixed, 0)
    kept_for_workers = min(len(rows), max(1, room // 3))  # the decisions take the rest first
    shown_decisions = bounded(
        asks_and_stuck,
        max(room - kept_for_workers, min(len(asks_and_stuck), 1)),
        lambda n: f"  +{n} more (see `looop _ state`)",
    )
    shown_rows = bounded(rows, room - len(shown_decisions), lambda n: _more_workers(workers, rows, n))
    out = [one_line(pulse_line(state["pulse"], now)), title, *shown_decisions]
    spacer = [""] if len(out) + len(shown_rows) + len(header) + 1 + len(tail) + 2 <= budget else []
    out += [*spacer, workers_title(state), *header, *shown_rows, *spacer, *tail]
    return [clip(line, columns) for line in out[:budget]]


def _more_workers(workers: list[Worker], rows: list[str], left_out: int) -> str:
    rest = workers[len(rows) - left_out :]
    working = sum(1 for w in rest if w["alive"])
    return f"  +{left_out} more workers ({working} working, {left_out - working} ended)"


def show(dd: DataDir, out: IO[str] | None = None) -> None:
    """`looop status`: print the status once, sized to the terminal."""
    out = sys.stdout if out is None else out
    out.write("\n".join(render_status(gather(dd), *terminal_size())) + "\n")
    out.flush()


# --watch -----------------------------------------------------------------------------------------

CLEAR, HOME, ERASE_LINE, ERASE_BELOW = "\x1b[2J", "\x1b[H", "\x1b[K", "\x1b[J"
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"

NextState = Callable[[str, float], "State"]


def watch(dd: DataDir) -> None:
    """`looop status --watch`: the status, redrawn live until interrupted. It reads as a `_ wait
    --since` the hash on show does (news wakes it; the rest shows at the next timed redraw) and
    moves no cursor."""
    keep_drawing(gather(dd), lambda since, timeout: wait_for_news(dd, since, None, False, timeout)[0])


def keep_drawing(
    first: State, next_state: NextState, out: IO[str] | None = None, every: float = REDRAW_EVERY
) -> None:
    """Draw the status of `first`, then of each `next_state(drawn world_hash, every)`: at once
    when the world moves, else every `every` seconds (the ages move). On a terminal each frame
    replaces the last (ANSI); elsewhere frames follow each other, a blank line apart. A frame
    equal to the one on show is not drawn again. Runs until interrupted."""
    out = sys.stdout if out is None else out
    tty = out.isatty()
    state, drawn = first, None
    if tty:
        out.write(HIDE_CURSOR + CLEAR)
    try:
        while True:
            frame = render_status(state, *terminal_size())
            if frame != drawn:
                if tty:
                    # each row erased before it is written: after a full-width row the cursor
                    # waits on its last column, where an erase could take the last character
                    out.write(HOME + "".join(ERASE_LINE + line + "\n" for line in frame) + ERASE_BELOW)
                else:
                    out.write("\n".join(frame) + "\n\n")
                out.flush()
                drawn = frame
            state = next_state(state["world_hash"], every)
    finally:
        if tty:
            out.write(SHOW_CURSOR)
            out.flush()
