"""The beat: every `beat` seconds, run every sensor in parallel and publish the readings as one
snapshot."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka

from looop.actors.sensor import UNWRITTEN, RunSensor, SensorActor, SensorDone
from looop.base.background import Background
from looop.base.files import remove
from looop.base.ids import is_valid_id
from looop.daemon.recovery import tidy
from looop.store.config import Config
from looop.store.paths import DataDir
from looop.store.snapshots import clean_stale, new_beat_dir, publish, write_reading
from looop.supervisor import (
    ChildSpec,
    Restart,
    SupervisedActor,
    children_of,
    start_child,
    stop_child,
    tell_later,
    tell_quietly,
)
from looop.supervisor import Link as SupervisorLink
from looop.workers.sensing import KILL_GRACE


@dataclass(frozen=True)
class Beat:
    """Time for a beat (sent by the ticker)."""


@dataclass(frozen=True)
class RunOne:
    """Run one sensor now (after `_ sensor write`), or drop its reading if it was removed."""

    name: str


@dataclass(frozen=True)
class _BeatDeadline:
    beat: int


@dataclass
class _BeatInProgress:
    number: int
    staging: Path
    pending: set[str]
    began: float = field(default_factory=time.monotonic)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


StatusSink = Callable[..., object]
log = logging.getLogger(__name__)


def sensor_names(dd: DataDir) -> list[str]:
    try:
        names = os.listdir(dd.sensors)
    except FileNotFoundError:
        return []
    return sorted(n[:-3] for n in names if n.endswith(".sh") and is_valid_id(n[:-3]))


class BeatActor(SupervisedActor):
    """Keeps the beat; judgment-free. Sensor actors live under `sensors()`, a supervisor. Old
    sessions are reaped in `reaper`, which outlives the beat's restarts: a restarted beat never
    starts a second removal of a worktree whose removal is under way."""

    def __init__(
        self,
        dd: DataDir,
        config: Config,
        sensors: Callable[[], pykka.ActorRef[Any]],
        status: StatusSink,
        reaper: Background,
        link: SupervisorLink,
    ) -> None:
        super().__init__(link)
        self.dd = dd
        self.config = config
        self._sensors = sensors
        self._status = status
        self._reaper = reaper
        self._ticker_stop = threading.Event()
        self._beat: _BeatInProgress | None = None
        self._count = 0

    def started(self) -> None:
        clean_stale(self.dd.snapshots)
        me = self.actor_ref
        interval = self.config.interval

        def tick() -> None:
            tell_quietly(me, Beat())
            while not self._ticker_stop.wait(interval):
                tell_quietly(me, Beat())

        self.spawn(tick, "beat-ticker")

    def cleanup(self) -> None:
        self._ticker_stop.set()

    def handle(self, message: Any) -> Any:
        if isinstance(message, Beat):
            self._begin()
        elif isinstance(message, SensorDone):
            self._sensor_done(message)
        elif isinstance(message, _BeatDeadline):
            self._deadline(message.beat)
        elif isinstance(message, RunOne):
            self._run_one(message.name)
        else:
            super().handle(message)

    # ------------------------------------------------------------------------------------------

    def _sensor_refs(self, names: list[str]) -> dict[str, pykka.ActorRef[Any]]:
        """Start an actor for each new sensor and stop those whose script is gone."""
        supervisor = self._sensors()
        refs = children_of(supervisor)
        for gone in set(refs) - set(names):
            stop_child(supervisor, gone)
            refs.pop(gone)
        for name in names:
            if name not in refs:
                refs[name] = start_child(
                    supervisor, ChildSpec(name, self._sensor_factory(name), Restart.TRANSIENT)
                )
        return refs

    def _sensor_factory(self, name: str) -> Callable[[SupervisorLink], pykka.ActorRef[Any]]:
        dd = self.dd
        return lambda link: SensorActor.start(dd, name, link)

    def _begin(self) -> None:
        if self._beat is not None:
            return  # the previous beat is still running: skip this tick rather than pile up
        names = sensor_names(self.dd)
        try:
            refs = self._sensor_refs(names)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            self._status(last_error=f"beat skipped: the sensors supervisor is not available ({exc!r})")
            return
        self._count += 1
        try:
            staging = new_beat_dir(self.dd.snapshots, self._count)
        except OSError as exc:
            self._failed(self._count, f"could not make its directory: {exc}")
            return
        beat = _BeatInProgress(self._count, staging, set(names))
        self._beat = beat
        timeout = self.config.effective_sensor_timeout
        for name in names:
            refs[name].tell(RunSensor(beat.number, beat.staging, timeout, self.actor_ref))
        if not names:
            self._finish()
            return
        tell_later(self.actor_ref, timeout + 2 * KILL_GRACE + 2, _BeatDeadline(beat.number))

    def _sensor_done(self, message: SensorDone) -> None:
        result = message.result
        meta = {"status": result.status, "exit": result.exit_code, "duration": round(result.duration, 3)}
        if message.beat == 0:
            self._status(sensor=(result.name, meta))
            return
        beat = self._beat
        if beat is None or beat.number != message.beat:
            return
        beat.results[result.name] = meta
        beat.pending.discard(result.name)
        if not beat.pending:
            self._finish()

    def _deadline(self, number: int) -> None:
        beat = self._beat
        if beat is None or beat.number != number:
            return
        for name in beat.pending:
            beat.results[name] = {"status": "lost", "exit": None, "duration": None}
            try:
                write_reading(
                    beat.staging, name, "[no reading: the sensor's actor did not report (restarted)]"
                )
            except OSError:
                beat.results[name]["status"] = UNWRITTEN
        self._finish()

    def _finish(self) -> None:
        beat = self._beat
        assert beat is not None
        self._beat = None
        unwritten = sorted(n for n, meta in beat.results.items() if meta["status"] == UNWRITTEN)
        try:
            if unwritten:
                raise OSError(f"the reading of {', '.join(unwritten)} could not be written")
            publish(self.dd.snapshots, beat.staging)
        except OSError as exc:
            shutil.rmtree(beat.staging, ignore_errors=True)
            self._failed(beat.number, f"not published, the last snapshots stay: {exc}")
            return
        self._status(beat=(time.monotonic() - beat.began, beat.results))
        status = self._status  # told from the reaper's thread: the sink is thread-safe
        try:
            tidy(self.dd, self.config.session_ttl, self._reaper, lambda why: status(last_error=why))
        except OSError as exc:
            self._status(last_error=f"housekeeping failed: {exc}")

    def _failed(self, number: int, why: str) -> None:
        """A beat that could not be written (a full disk) is skipped: the next one tries again."""
        log.warning("beat %s failed: %s", number, why)
        self._status(last_error=f"beat {number} failed: {why}")

    def _run_one(self, name: str) -> None:
        if name not in sensor_names(self.dd):
            remove(self.dd.snapshots / f"{name}.txt")
            self._sensor_refs(sensor_names(self.dd))
            return
        refs = self._sensor_refs(sensor_names(self.dd))
        refs[name].tell(RunSensor(0, self.dd.snapshots, self.config.effective_sensor_timeout, self.actor_ref))
