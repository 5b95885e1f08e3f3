"""`sessions/pulse/state.json`: what the pulse (the `up` process) reports about itself. Light: no
pykka here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypedDict, cast

from looop.base import fields
from looop.base.errors import CorruptFile
from looop.base.files import ensure_dir, read_json, write_json
from looop.base.processes import is_running, start_time
from looop.store import journal
from looop.store.paths import PULSE_SESSION, DataDir

log = logging.getLogger("looop")
MAX_PENDING = 200  # journal lines kept to retry while the disk is full
_NUMBERS = {"started": fields.MAX_TIME, "last_beat_at": fields.MAX_TIME, "last_beat_duration": 1e9}
_NUMBERS.update(beats=1e15, restarts=1e15, escalations=1e15)


class SensorRun(TypedDict, total=False):
    """A sensor's last run as a beat reports it (any key may be missing from a file made by hand)."""

    status: str
    exit: int | None
    duration: float | None


class _Running(TypedDict):
    running: bool  # is the process that wrote the status alive now


class PulseStatus(_Running, total=False):
    """`sessions/pulse/state.json` as `read_status` gives it: any recorded field may be missing."""

    v: int
    id: str
    pid: int
    process_start: int | None
    started: float
    status: str
    beats: int
    restarts: int
    escalations: int
    sensors: dict[str, SensorRun]
    last_error: str | None
    write_failures: int
    last_beat_at: float
    last_beat_duration: float
    problems: list[str]  # the fields left out, and why


def read_status(dd: DataDir) -> PulseStatus:
    """The recorded status plus `running`: is that very process alive now (pid and start time).
    A field of a wrong type or range is left out and described in `problems`."""
    path = dd.session_state(PULSE_SESSION)
    try:
        raw = read_json(path)
    except FileNotFoundError:
        return {"running": False}
    except CorruptFile as problem:
        return {"running": False, "problems": [problem.message]}
    where = str(path)
    checks: list[tuple[str, Callable[[], object]]] = [
        ("sensors", lambda: _check_sensors(raw, where)),
        *((key, partial(fields.optional_number, raw, key, where, hi=hi)) for key, hi in _NUMBERS.items()),
        *((key, partial(fields.optional_text, raw, key, where)) for key in ("status", "last_error")),
    ]
    problems: list[str] = []
    for key, check in checks:
        try:
            check()
        except CorruptFile as problem:
            problems.append(problem.message)
            raw.pop(key, None)
    pid = raw.get("pid")
    start = raw.get("process_start")
    alive = (
        isinstance(pid, int)
        and not isinstance(pid, bool)
        and raw.get("status") in ("starting", "up", "stopping")
        and is_running(pid, start if isinstance(start, int) else None)
    )
    status = cast(PulseStatus, {**raw, "running": alive})  # JSON whose typed fields are checked above
    if problems:
        status["problems"] = problems
    return status


def _check_sensors(raw: dict[str, Any], where: str) -> None:
    for name, meta in (fields.mapping(raw, "sensors", where) or {}).items():
        if not isinstance(meta, dict):
            raise CorruptFile(where, f"sensor {name!r} is {meta!r:.60}, expected an object")
        fields.optional_number(meta, "duration", f"{where}: sensor {name}", hi=1e9)


class StatusWriter:
    """The `up` process's single writer of its status file (threads share it), and of its own
    journal lines.

    Both are best effort and retried, never raised into the actor that reports (a disk full for a
    few seconds must not crash the supervision tree): a status write that fails is logged to
    up.log and counted (`write_failures`), and the next update rewrites the whole file; a journal
    line that cannot be appended is logged with its text, kept (the latest `MAX_PENDING`) and
    appended, with its own time, once a write succeeds again. What makes `up` give up instead (its
    data dir gone or replaced, its tree ended) is decided by `looop.daemon.pulse.Daemon`.
    """

    def __init__(self, dd: DataDir, pid: int) -> None:
        self.dd = dd
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {
            "id": PULSE_SESSION,
            "pid": pid,
            "process_start": start_time(pid),
            "started": time.time(),
            "status": "starting",
            "beats": 0,
            "restarts": 0,
            "escalations": 0,
            "sensors": {},
            "last_error": None,
            "write_failures": 0,
        }
        self._failing: str | None = None  # the error of the current run of failed status writes
        self._pending: list[str] = []  # journal lines not appended yet
        self._journal_lock = threading.Lock()
        ensure_dir(dd.session(PULSE_SESSION))

    def update(self, **fields: Any) -> bool:
        """Merge `fields` and rewrite the file; False when that failed (the next update retries).
        `beat=(seconds, per_sensor)` (one more beat: counted here, for a restarted beat actor
        counts from 1 again) and `sensor=(name, meta)` are folded in."""
        with self._lock:
            beat = fields.pop("beat", None)
            if beat is not None:
                duration, sensors = beat
                self._data.update(last_beat_at=time.time(), last_beat_duration=round(duration, 3))
                self._data["beats"] = int(self._data.get("beats", 0)) + 1
                self._data["sensors"] = sensors
            sensor = fields.pop("sensor", None)
            if sensor is not None:
                self._data["sensors"] = {**self._data["sensors"], sensor[0]: sensor[1]}
            self._data.update(fields)
            written = self._write()
        if written:
            self._flush_journal()
        return written

    def _write(self) -> bool:
        try:
            write_json(self.dd.session_state(PULSE_SESSION), self._data)
        except OSError as exc:
            if self._failing is None:
                log.warning("could not write the status file (retried at every update): %s", exc)
            self._failing = str(exc)
            self._data["write_failures"] = int(self._data.get("write_failures", 0)) + 1
            self._data["last_error"] = f"could not write the status file: {exc}"
            return False
        if self._failing is not None:
            log.warning(
                "the status file is written again, after %s failed writes", self._data["write_failures"]
            )
            self._failing = None
        return True

    def journal(self, verb: str, subject: str, result: str) -> bool:
        """Journal a line of the `up` process's own; when that fails, log it and retry later."""
        line = journal.entry(verb, subject, result, who="looop")
        with self._lock:
            self._pending.append(line)
            del self._pending[:-MAX_PENDING]
        if self._flush_journal():
            return True
        log.warning("could not journal this line (kept to retry): %s", line)
        return False

    def _flush_journal(self) -> bool:
        """Append the pending journal lines, oldest first; False if some are still pending."""
        if not self._journal_lock.acquire(blocking=False):
            return False  # another thread is at it
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        return True
                    line = self._pending[0]
                try:
                    journal.append(self.dd, line)
                except OSError:
                    return False
                with self._lock:
                    if self._pending and self._pending[0] == line:
                        self._pending.pop(0)
        finally:
            self._journal_lock.release()

    def count(self, key: str) -> None:
        with self._lock:
            self._data[key] = int(self._data.get(key, 0)) + 1

    def supervisor_event(self, event: str, child: str, detail: str) -> None:
        """Journal every restart, crash and escalation; count them; tell the human of escalations.
        Best effort, as every write of this class: it never raises for a failed write."""
        self.journal(f"supervisor {event}", child, detail)
        if event == "restart":
            self.count("restarts")
        elif event == "escalate":
            self.count("escalations")
        self.update(last_error=f"{event} {child}: {journal.one_line(detail, 200)}")
        if event == "escalate":
            from looop.store.notices import notify

            try:
                notify(self.dd, f"looop supervisor gave up on {child}: {detail}", who="looop")
            except Exception as exc:  # the notice must not take the shutdown down with it
                log.warning("could not notify of the escalation of %s: %s", child, exc)
                self.journal("notify", "looop", f"could not notify: {exc}")
