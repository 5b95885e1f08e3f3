"""The world as the root agent sees it: one read of the data dir, and its hash."""

from __future__ import annotations

import contextlib
import functools
import os
import re

from looop.base.errors import ConfigError, CorruptFile
from looop.base.ids import is_valid_id
from looop.store import journal
from looop.store import notices as notify
from looop.store.asks import pending_asks
from looop.store.claims import all_claims
from looop.store.config import load_config, safety_settings
from looop.store.cursors import Facts
from looop.store.memory import list_goals
from looop.store.paths import DataDir
from looop.store.pulse_record import read_status
from looop.store.spend import spend_by_session
from looop.store.worker_records import ObservedWorker, observed, worker_records
from looop.world.state_shape import STATE_VERSION, ErrorLine, State, Worker
from looop.world.wakes import digest, wake_facts

# A screen line that reads like the reason a worker failed (shown for a worker that ended badly)
ERROR_LINE = re.compile(
    r"(?i)\b(error|errors|failed|failure|fatal|exception|traceback|panic|denied|refused|cannot|unable)\b"
)
MAX_READING = 128 * 1024  # above the pulse's own 64 KiB cap: a guard against hand-made files


def read_snapshots(dd: DataDir) -> dict[str, str]:
    """Each sensor's latest reading, by sensor name."""
    readings: dict[str, str] = {}
    try:
        names = sorted(os.listdir(dd.snapshots))
    except FileNotFoundError:
        return readings
    for name in names:
        if not name.endswith(".txt") or not is_valid_id(name[:-4]):
            continue
        try:
            with open(dd.snapshots / name, "rb") as handle:
                data = handle.read(MAX_READING + 1)
        except (FileNotFoundError, NotADirectoryError):
            continue  # a beat swapped the directory under us; the next read sees the new one
        text = data[:MAX_READING].decode(errors="replace")
        readings[name[:-4]] = text + ("\n[reading cut at 128 KiB]" if len(data) > MAX_READING else "")
    return readings


def read_workers(
    dd: DataDir, pending_by_worker: dict[str, str] | None = None
) -> tuple[list[Worker], list[str]]:
    """Each worker's state as readers see it (`worker_records.observed`), and lines describing unreadable
    state files. `pending_by_worker` maps a worker to its oldest pending ask."""
    pending = pending_by_worker or {}
    workers: list[Worker] = []
    problems: list[str] = []
    for session, record in worker_records(dd):
        if isinstance(record, CorruptFile):
            problems.append(record.message)
            continue
        seen = observed(record, session, pending.get(session))
        skip = record.get("screen_skip")
        lines = screen_lines(dd, session, tuple(skip) if isinstance(skip, list) else ())
        failure: ErrorLine = {}
        if _failed(seen):
            failure["error_line"] = next((line for line in reversed(lines) if ERROR_LINE.search(line)), "")
        workers.append({**seen, "screen_line": lines[-1] if lines else "", **failure})
    return workers, problems


def screen_lines(dd: DataDir, session: str, skip: tuple[str, ...] = ()) -> list[str]:
    """The worker's screen lines worth a glance (see `meaningful_lines`)."""
    try:
        with open(dd.screen(session), "rb") as handle:
            text = handle.read(64 * 1024).decode(errors="replace")
    except OSError:
        return []
    return meaningful_lines(text, skip)


def meaningful_lines(screen: str, skip: tuple[str, ...] = ()) -> list[str]:
    """A screen's lines that are not empty and match none of the `skip` regexes (an agent's
    status bars: each is searched in the line as shown, trailing blanks removed; one that does
    not compile is ignored), stripped."""
    patterns = _compiled(skip)
    return [
        line.strip()
        for line in screen.splitlines()
        if line.strip() and not any(pattern.search(line.rstrip()) for pattern in patterns)
    ]


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        with contextlib.suppress(re.error, TypeError, RecursionError):
            compiled.append(re.compile(pattern))
    return tuple(compiled)


def _failed(view: ObservedWorker) -> bool:
    """Did this worker end on its own badly: a non-zero exit, or a signal nobody sent it?"""
    if view["alive"]:
        return False
    return view["state"] == "dead" or (view["state"] == "exited" and view.get("exit_code") != 0)


def gather(dd: DataDir, journal_count: int = 20) -> State:
    """The full state (see `looop.world.state_shape`)."""
    return gather_facts(dd, journal_count)[0]


def gather_facts(dd: DataDir, journal_count: int = 20) -> tuple[State, Facts]:
    """The full state, and the facts that wake a reader of `_ wait` (its `world_hash` digests them)."""
    snapshots = read_snapshots(dd)
    asks, problems = pending_asks(dd)
    oldest_ask: dict[str, str] = {}
    for ask in asks:
        oldest_ask.setdefault(ask.worker, ask.id)
    workers, worker_problems = read_workers(dd, oldest_ask)
    claims, claim_problems = all_claims(dd)
    goals = list_goals(dd)
    problems += worker_problems + claim_problems
    try:
        config = load_config(dd.config)
    except ConfigError as exc:
        problems.append(exc.message)
        config = None
    limits = None if config is None else config.budget
    spend, total = spend_by_session(dd)
    notices, notice_problems = notify.recent(dd)
    pulse = read_status(dd)
    problems += notice_problems + pulse.pop("problems", [])
    public_asks = [a.public() for a in asks]
    facts = wake_facts(snapshots, public_asks, workers, goals, notices)
    state: State = {
        "v": STATE_VERSION,
        "world_hash": digest(facts),
        "data_dir": str(dd.root),
        "snapshots": snapshots,
        "asks": public_asks,
        "workers": workers,
        "goals": goals,
        "claims": [c.public() for c in claims],
        "spend": {"by_session": spend, "total": total, "budget": limits},
        "limits": safety_settings(config),
        "notifications": notices,
        "summary": {
            "needs_decision": [a["id"] for a in sorted(public_asks, key=lambda a: not a["urgent"])],
            "working": [w["id"] for w in workers if w["alive"]],
            "done": [w["id"] for w in workers if not w["alive"]],
        },
        "journal_tail": journal.tail(dd, journal_count),
        "problems": problems,
        "pulse": pulse,
    }
    return state, facts
