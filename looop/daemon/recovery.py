"""What `up` cleans up after: corpses of workers whose babysitter died, and ended sessions past
their time to live. Files are the only memory, so both work from `sessions/*/state.json`."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from looop.base.background import Background
from looop.base.errors import CorruptFile, LooopError
from looop.base.files import remove, remove_tree, write_json
from looop.base.processes import end_processes, is_running, marked_processes
from looop.store import journal
from looop.store.asks import cancel_asks_of, iter_asks
from looop.store.childenv import run_marks
from looop.store.claims import release_claims_of
from looop.store.config import setting
from looop.store.paths import DataDir
from looop.store.worker_records import (
    LIVE_STATES,
    WorkerRecord,
    holder_alive,
    read_record,
    session_ids,
    worker_records,
)
from looop.workers.sandbox import remove_worktree
from looop.workers.sensing import SENSOR_MARK

REAP_QUEUE = 64  # sessions queued for reaping at once; the next beats queue the rest
STALE_TEMP = 600.0  # seconds: no verb takes this long between creating its temp file and renaming it


@dataclass(frozen=True)
class Corpse:
    """A worker recorded as live that no `up` process babysits any more."""

    session: str
    orphaned: bool  # its processes outlived the `up` process and were ended now
    how: str


def recover(dd: DataDir) -> list[Corpse]:
    """At `up`: mark every worker recorded live as `dead`, ending its process group if it
    outlived its babysitter; cancel its asks and release its claims; end sensor runs a killed
    `up` left behind. Journaled and notified."""
    found: list[Corpse] = []
    for session, record in worker_records(dd):
        if isinstance(record, CorruptFile):
            journal.record(dd, "recover", session, f"skipped: {record.detail}", who="looop")
            continue
        if not (record.get("alive") or record.get("state") in LIVE_STATES):
            continue
        found.append(_bury(dd, session, record))
    sweep_temp_files(dd)
    strays = set(marked_processes({"LOOOP_DATA_DIR": str(dd.root), SENSOR_MARK: ""}).values())
    strays -= {os.getpgrp()}
    for group in strays:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    if strays:
        journal.record(
            dd, "recover", "sensors", f"ended {len(strays)} sensor run(s) left by a killed looop", who="looop"
        )
    if found:
        from looop.store.notices import notify

        names = ", ".join(f"{c.session} ({'orphaned' if c.orphaned else 'dead'})" for c in found)
        message = f"looop up found {len(found)} worker(s) whose looop had died: {names}"
        notify(dd, message, who="looop", wakes=False)  # their ends wake the root agent
    return found


def sweep_temp_files(dd: DataDir, now: float | None = None) -> int:
    """Remove temp files of atomic writes cut short by a kill: all of them where only `up`
    writes (sessions/, prompts/), elsewhere only those too old to belong to a running verb."""
    now = time.time() if now is None else now
    sessions = [dd.session(s) for s in session_ids(dd)]
    removed = 0
    for directory in [*dd.directories(), dd.goals_archive, *sessions]:
        ours = directory in (dd.prompts, *sessions)
        for path in directory.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if ours or now - path.stat().st_mtime > STALE_TEMP:
                    remove(path)
                    removed += 1
    return removed


def _bury(dd: DataDir, session: str, record: WorkerRecord) -> Corpse:
    pid = record.get("pid")
    start = record.get("process_start")
    orphaned = False
    how = "its process was gone"
    run = record.get("run")
    signal_used = _end_worker_processes(
        dd, session, pid, start if isinstance(start, int) else None, run if isinstance(run, str) else None
    )
    if signal_used:
        orphaned = True
        how = f"its processes outlived looop and were ended ({signal_used})"
    elif record.get("state") == "starting" and not (isinstance(pid, int) and pid > 0):
        how = "looop died while starting it"
    now = time.time()
    record.update(
        {
            "state": "dead",
            "alive": False,
            "orphaned": orphaned,
            "found": now,
            "ended": record.get("ended") or now,
            "end_reason": f"found at up: {how}",
            "pending_ask": None,
            "claims": [],
        }
    )
    why = f"worker {session} dead (found at up)"
    cancelled = cancel_asks_of(dd, session, why)  # first, as the session actor does at an end
    released = release_claims_of(dd, session, why)
    write_json(dd.session_state(session), record)
    detail = f"dead: {how}"
    if cancelled:
        detail += f"; cancelled asks {', '.join(cancelled)}"
    if released:
        detail += f"; released {', '.join(released)}"
    journal.record(dd, "recover", session, detail, who="looop")
    return Corpse(session, orphaned, how)


def _end_worker_processes(
    dd: DataDir, session: str, pid: object, start: int | None, run: str | None
) -> str | None:
    """End what is proven to be the worker's: its leader's group when pid and recorded start time
    both match, and every process holding the worker's environment marks wherever it went (its
    run's `LOOOP_RUN_ID`, also under another data dir; or its session id in this data dir): a
    pid or a group number alone may since belong to someone else. Say which signal ended them,
    or None when nothing of the worker's was left."""
    leader = isinstance(pid, int) and pid > 0 and start is not None and is_running(pid, start)
    group = pid if leader and isinstance(pid, int) and pid != os.getpgrp() else None
    grace = float(setting(dd.config, "kill_grace"))
    hows = [end_processes({"LOOOP_DATA_DIR": str(dd.root), "LOOOP_SESSION_ID": session}, grace, group).how]
    if run:
        hows.append(end_processes(run_marks(run), grace).how)
    return "SIGKILL" if "SIGKILL" in hows else "SIGTERM" if "SIGTERM" in hows else None


def tidy(dd: DataDir, session_ttl: float, reaper: Background, failed: Callable[[str], object]) -> None:
    """Each beat: reap old sessions, release stale claims, settle overdue asks. Each session's
    reaping is queued in `reaper`, once (a worktree's removal may take a minute: never on the
    beat's thread); `failed` is told why one failed."""
    from looop.store.asks import settle_overdue
    from looop.store.claims import release_stale

    for session in expired(dd, session_ttl):
        reaper.submit(functools.partial(_reap_or_tell, dd, session, session_ttl, failed), key=session)
    release_stale(dd, lambda holder: holder_alive(dd, holder))
    settle_overdue(dd)


def expired(dd: DataDir, ttl: float) -> list[str]:
    """Sessions that ended more than `ttl` seconds ago. A live session never is; an unreadable
    one is left for a human."""
    now = time.time()
    return [session for session, record in worker_records(dd) if _expired(record, ttl, now)]


def _expired(record: WorkerRecord | CorruptFile | None, ttl: float, now: float) -> bool:
    if not isinstance(record, dict) or record.get("alive") or record.get("state") in LIVE_STATES:
        return False
    ended = record.get("ended")
    return isinstance(ended, int | float) and now - ended > ttl


def reap(dd: DataDir, session: str, ttl: float) -> bool:
    """Remove `session`, with its prompt and settled asks (reports stay), if it is still past its
    time to live: its record is read again, for it may have been resumed or reaped since it was
    found expired. Journaled; False if there was nothing to reap."""
    try:
        record = read_record(dd, session)
    except CorruptFile:
        return False
    if record is None or not _expired(record, ttl, time.time()):
        return False
    problem = _remove_session(dd, session, record)
    result = f"ended {journal.timestamp(record['ended'])}, past session_ttl"
    if problem:
        result += f"; git worktree remove failed: {problem}"
    journal.record(dd, "reap", session, result, who="looop")
    return True


def _reap_or_tell(dd: DataDir, session: str, ttl: float, failed: Callable[[str], object]) -> None:
    try:
        reap(dd, session, ttl)
    except (OSError, LooopError) as exc:
        failed(f"housekeeping failed: reaping {session}: {exc}")


def _remove_session(dd: DataDir, session: str, record: WorkerRecord) -> str | None:
    """Remove the session's files; why its worktree's removal failed, else None."""
    sandbox = record.get("sandbox") or {}
    problem = None
    # only the checkout looop made, inside the session's own dir, whatever the record names
    if sandbox.get("repo") and sandbox.get("cwd") == str(dd.worktree(session)):
        problem = remove_worktree(Path(sandbox["repo"]), dd.worktree(session))
    for item in iter_asks(dd):
        if not isinstance(item, CorruptFile) and item.worker == session:
            remove(dd.ask(item.id))  # first: an ask without its answer would be pending
            remove(dd.answer(item.id))
    remove(dd.prompt(session))
    remove_tree(dd.session(session))
    return problem
