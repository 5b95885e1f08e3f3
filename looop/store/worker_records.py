"""Worker session records (`sessions/ID/state.json`): their shape at a worker's start (`new_record`)
and as readers see them. Light: no pykka, no pexpect.

The `up` process's session actor is the only writer of a record. Readers overlay two facts that
files decide at once, so that the state is consistent at every instant: a live worker is `asking`
exactly when it has a pending ask (the asks decide, whatever the record says), and a worker
recorded alive whose babysitter (the `up` process that wrote the record) and own process are both
gone is `dead`. While its babysitter runs, the record is trusted:
the babysitter records an end within moments, with how it ended.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

from looop.base import fields
from looop.base.errors import CorruptFile
from looop.base.files import read_json
from looop.base.ids import is_valid_id
from looop.base.processes import is_running
from looop.store.paths import PULSE_SESSION, DataDir

LIVE_STATES = ("starting", "running", "idle", "asking", "blocked", "stalled")
ENDED_STATES = ("exited", "killed", "dead")
Counter = Literal["idle_count", "blocked_count", "stalled_count"]
# the session actor's counts of the times a worker turned idle (from running: a finished turn),
# blocked and stalled; each new one wakes the root agent (`looop.world.wakes`), its undoing does not
COUNTERS: dict[str, Counter] = {"idle": "idle_count", "blocked": "blocked_count", "stalled": "stalled_count"}


class _Recorded(TypedDict, total=False):
    """The fields of a record that readers pass on as the session actor wrote them."""

    v: int  # the schema version `write_json` stamps; a record without one is version 1
    command: list[str]
    cwd: str
    sandbox: dict[str, Any]  # `Sandbox.public()`
    agent_session: str | None
    profile: str
    run: str
    started: float
    pid: int | None
    pgid: int | None
    process_start: int | None
    exit_code: int | None
    signal: str | None
    ended: float | None
    end_reason: str | None
    killed_by: str | None
    last_output: float | None
    idle_count: int
    blocked_count: int
    stalled_count: int
    claims: list[str]
    cost: dict[str, float]
    transcript: str
    screen: str
    screen_skip: list[str]
    prompt: str
    up_pid: int | None
    up_process_start: int | None
    blocked_by: list[str]  # while `blocked`: the dialog's screen
    last_screen: list[str]  # once `stalled`
    transcript_error: str
    orphaned: bool  # found dead at `up`: its processes had outlived the `up` before
    found: float  # when that `up` found it


class WorkerRecord(_Recorded, total=False):
    """`sessions/ID/state.json` as its session actor writes it. Any key may be missing from a
    record read back (one an earlier looop wrote, or a hand): `check_record` checks the types of
    the fields readers compute with, not that they are there."""

    id: str
    state: str
    alive: bool
    pending_ask: str | None


class ObservedWorker(_Recorded):
    """A worker as readers see it (`observed`): its record, with what the files decide at once."""

    id: str
    state: str
    alive: bool
    pending_ask: str | None


def new_record(
    dd: DataDir,
    session: str,
    *,
    argv: Sequence[str],
    cwd: Path,
    sandbox: dict[str, Any],
    agent_session: str,
    profile: str,
    run: str,
    screen_skip: Sequence[str],
) -> WorkerRecord:
    """The record of a worker about to start: every field its session actor keeps, as at the start."""
    return {
        "id": session,
        "command": [_shown(arg, dd.prompt(session)) for arg in argv],
        "cwd": str(cwd),
        "sandbox": sandbox,
        "agent_session": agent_session,
        "profile": profile,
        "run": run,
        "started": time.time(),
        "state": "starting",
        "alive": False,
        "pid": None,
        "pgid": None,
        "process_start": None,
        "exit_code": None,
        "signal": None,
        "ended": None,
        "end_reason": None,
        "killed_by": None,
        "last_output": None,
        "pending_ask": None,
        "idle_count": 0,
        "blocked_count": 0,
        "stalled_count": 0,
        "claims": [],
        "cost": {},
        "transcript": str(dd.transcript(session)),
        "screen": str(dd.screen(session)),
        "screen_skip": list(screen_skip),
        "prompt": str(dd.prompt(session)),
        "up_pid": None,
        "up_process_start": None,
    }


def set_live_state(
    record: WorkerRecord, *, active: bool | None, stalled: bool, blocked_by: list[str] | None
) -> None:
    """Set a live worker's state in its record, from what its session actor knows: asking while it
    has a pending ask, blocked at a dialog nobody is asked about (`blocked_by`: the screen's last
    lines), stalled, starting until its first output, else running or idle; each new one of
    `COUNTERS` is counted (idle only after running: a finished turn)."""
    if record["pending_ask"]:
        state = "asking"
    elif blocked_by:
        state = "blocked"
    elif stalled:
        state = "stalled"
    elif active is None:
        state = "starting"
    else:
        state = "running" if active else "idle"
    previous = record.get("state")
    if state != previous and (state != "idle" or previous == "running"):
        counter = COUNTERS.get(state)  # a finished turn, a dialog nobody is asked, a stall
        if counter is not None:
            record[counter] = record.get(counter, 0) + 1
    record["state"] = state
    if blocked_by:
        record["blocked_by"] = blocked_by
    else:
        record.pop("blocked_by", None)


def _shown(argument: str, prompt_file: Path) -> str:
    """An argument as the record shows it: a prompt passed inline is named, not repeated."""
    if len(argument) <= 200:
        return argument
    return f"<{len(argument)} characters of prompt; see {prompt_file}>"


def session_ids(dd: DataDir) -> list[str]:
    """Every session dir name (workers and the pulse)."""
    try:
        return sorted(n for n in os.listdir(dd.sessions) if is_valid_id(n))
    except FileNotFoundError:
        return []


def worker_records(dd: DataDir) -> Iterator[tuple[str, WorkerRecord | CorruptFile]]:
    """Each worker session (the pulse's own is not one) with its record, or why it is unreadable."""
    for session in session_ids(dd):
        if session == PULSE_SESSION:
            continue
        try:
            record = read_record(dd, session)
        except CorruptFile as problem:
            yield session, problem
            continue
        if record is not None:
            yield session, record


def read_record(dd: DataDir, session: str) -> WorkerRecord | None:
    """The recorded state of `session`, None when it has none; `CorruptFile` when unreadable or
    when a field readers compute with has a wrong type or range (see `check_record`)."""
    path = dd.session_state(session)
    try:
        return check_record(read_json(path), str(path))
    except (FileNotFoundError, NotADirectoryError):
        return None


def check_record(record: dict[str, Any], where: str) -> WorkerRecord:
    """`record` if the fields readers do arithmetic, timestamps or lookups with are well typed."""
    for key in ("started", "ended", "found", "last_output"):
        fields.optional_number(record, key, where)
    for key in COUNTERS.values():
        fields.optional_number(record, key, where, hi=fields.MAX_AMOUNT)
    for key in ("state", "end_reason", "pending_ask", "agent_session", "cwd"):
        fields.optional_text(record, key, where)
    fields.flag(record, "alive", where)
    sandbox = fields.mapping(record, "sandbox", where) or {}
    for key in ("repo", "cwd", "kind", "branch"):
        fields.optional_text(sandbox, key, f"{where}: sandbox")
    for unit in fields.mapping(record, "cost", where) or {}:
        fields.number(record["cost"], unit, f"{where}: cost", hi=fields.MAX_AMOUNT)
    return cast(WorkerRecord, record)  # JSON whose typed fields are checked above


def process_alive(record: WorkerRecord) -> bool:
    """True when the record says alive and that very process (pid and start time) still runs."""
    pid = record.get("pid")
    if not record.get("alive") or not isinstance(pid, int):
        return False
    start = record.get("process_start")
    return is_running(pid, start if isinstance(start, int) else None)


def babysat(record: WorkerRecord) -> bool:
    """True while the `up` process that wrote the record still runs."""
    pid, start = record.get("up_pid"), record.get("up_process_start")
    return isinstance(pid, int) and is_running(pid, start if isinstance(start, int) else None)


def observed(record: WorkerRecord, session: str, pending_ask: str | None) -> ObservedWorker:
    """The record with the overlays readers apply (see the module's docstring)."""
    state = str(record.get("state", "unknown"))
    alive = bool(record.get("alive")) if babysat(record) else process_alive(record)
    found_dead: _Recorded = {}
    if record.get("alive") and not alive:
        state = "dead"
        found_dead["end_reason"] = record.get("end_reason") or "its process is gone (found by a reader)"
    elif alive and pending_ask:
        state = "asking"
    elif state == "asking":  # its ask is settled: the files say so before its babysitter does
        state = "running"
    pending = pending_ask if alive else None
    return {**record, "id": session, "alive": alive, **found_dead, "state": state, "pending_ask": pending}


def holder_alive(dd: DataDir, session: str) -> bool | None:
    """Is this session's worker alive? None when it has no readable record (not a worker)."""
    try:
        record = read_record(dd, session)
    except CorruptFile:
        return None
    return None if record is None else observed(record, session, None)["alive"]


def live_record(dd: DataDir, session: str) -> WorkerRecord | None:
    """The record of `session` if its worker is alive now, else None (a corrupt record counts as
    not alive: nothing trustworthy claims the id)."""
    try:
        record = read_record(dd, session)
    except CorruptFile:
        return None
    return record if record is not None and process_alive(record) else None
