"""`sessions/pulse/state.json`: what the `up` process reports about itself. Light: no pykka here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from looop import fields, journal
from looop.errors import CorruptFile
from looop.fsio import ensure_dir, read_json, write_json
from looop.paths import PULSE_SESSION, DataDir
from looop.procs import is_running, start_time
from looop.render import age

_NUMBERS = {"started": fields.MAX_TIME, "last_beat_at": fields.MAX_TIME, "last_beat_duration": 1e9}
_NUMBERS.update(beats=1e15, restarts=1e15, escalations=1e15)


def read_status(dd: DataDir) -> dict[str, Any]:
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
    return {**raw, "running": alive, **({"problems": problems} if problems else {})}


def _check_sensors(raw: dict[str, Any], where: str) -> None:
    for name, meta in (fields.mapping(raw, "sensors", where) or {}).items():
        if not isinstance(meta, dict):
            raise CorruptFile(where, f"sensor {name!r} is {meta!r:.60}, expected an object")
        fields.optional_number(meta, "duration", f"{where}: sensor {name}", hi=1e9)


def summary(status: dict[str, Any], now: float | None = None) -> str:
    """One line: `up (pid 12, for 5m, 40 beats, last 3s ago in 0.21s, 0 restarts)` or why not.
    Any field may be missing or of any type (`read_status` leaves bad ones out)."""
    now = time.time() if now is None else now
    if not status.get("running"):
        return "not running (start it with `looop up`)"

    def number(key: str) -> float | None:
        return fields.finite(status.get(key), 0.0, fields.MAX_TIME)

    started = number("started")
    parts = [f"pid {status.get('pid')}", f"for {'?' if started is None else age(now - started)}"]
    parts.append(f"{status.get('beats', 0)} beats")
    if (last := number("last_beat_at")) is not None:
        took = number("last_beat_duration") or 0.0
        parts.append(f"last {age(now - last)} ago in {took:.2f}s")
    parts.append(f"{status.get('restarts', 0)} restarts")
    text = f"{status.get('status')} ({', '.join(parts)})"
    if status.get("last_error"):
        text += f"; last error: {status['last_error']}"
    return text


class StatusWriter:
    """The `up` process's single writer of its status file (threads share it)."""

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
        }
        ensure_dir(dd.session(PULSE_SESSION))

    def update(self, **fields: Any) -> None:
        """Merge `fields` and rewrite the file. `beat=(n, seconds, per_sensor)` and
        `sensor=(name, meta)` are folded in."""
        with self._lock:
            beat = fields.pop("beat", None)
            if beat is not None:
                number, duration, sensors = beat
                self._data.update(
                    beats=number, last_beat_at=time.time(), last_beat_duration=round(duration, 3)
                )
                self._data["sensors"] = sensors
            sensor = fields.pop("sensor", None)
            if sensor is not None:
                self._data["sensors"] = {**self._data["sensors"], sensor[0]: sensor[1]}
            self._data.update(fields)
            write_json(self.dd.session_state(PULSE_SESSION), self._data)

    def count(self, key: str) -> None:
        with self._lock:
            self._data[key] = int(self._data.get(key, 0)) + 1

    def supervisor_event(self, event: str, child: str, detail: str) -> None:
        """Journal every restart, crash and escalation; count them; tell the human of escalations."""
        journal.record(self.dd, f"supervisor {event}", child, detail, who="looop")
        if event == "restart":
            self.count("restarts")
        elif event == "escalate":
            self.count("escalations")
        self.update(last_error=f"{event} {child}: {journal.one_line(detail, 200)}")
        if event == "escalate":
            from looop.notify import notify

            try:
                notify(self.dd, f"looop supervisor gave up on {child}: {detail}", who="looop")
            except Exception as exc:  # the notice must not take the shutdown down with it
                journal.record(self.dd, "notify", "looop", f"could not notify: {exc}", who="looop")
