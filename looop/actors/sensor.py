"""One actor per sensor script: runs it off the beat's thread and reports the reading."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka

from looop.store.paths import DataDir
from looop.store.snapshots import write_reading
from looop.supervisor import Link, SupervisedActor, tell_quietly
from looop.workers.sensing import SENSOR_MARK, SensorResult, run_sensor

_injected_crashes: dict[str, int] = {}
log = logging.getLogger(__name__)
UNWRITTEN = "unwritten"  # the sensor ran, its reading could not be written


@dataclass(frozen=True)
class RunSensor:
    """Run once and write the reading into `target`; `beat` 0 is an on-demand run."""

    beat: int
    target: Path
    timeout: float
    reply_to: pykka.ActorRef[Any]


@dataclass(frozen=True)
class SensorDone:
    beat: int
    result: SensorResult


def _fault_injected(name: str) -> bool:
    """Test hook: `LOOOP_FAULT_SENSOR_CRASH=NAME[:TIMES]` crashes this sensor's runner thread."""
    spec = os.environ.get("LOOOP_FAULT_SENSOR_CRASH", "")
    target, _, times = spec.partition(":")
    if target != name:
        return False
    _injected_crashes[name] = _injected_crashes.get(name, 0) + 1
    return not times or _injected_crashes[name] <= int(times)


class SensorActor(SupervisedActor):
    """Runs `sensors/NAME.sh` on request, one run at a time, in a thread of its own."""

    def __init__(self, dd: DataDir, name: str, link: Link) -> None:
        super().__init__(link)
        self.dd = dd
        self.name = name
        self._busy = False
        self._running_group: int | None = None

    def cleanup(self) -> None:
        group = self._running_group
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)

    def _started(self, group: int) -> None:
        self._running_group = group

    def handle(self, message: Any) -> Any:
        if isinstance(message, RunSensor):
            self._run(message)
        elif isinstance(message, _Finished):
            self._busy = False
        else:
            super().handle(message)

    def _run(self, request: RunSensor) -> None:
        if self._busy:
            busy = SensorResult(self.name, "[still running from the previous beat]", "busy", None, 0.0)
            tell_quietly(request.reply_to, SensorDone(request.beat, busy))
            return
        self._busy = True
        me = self.actor_ref

        def work() -> None:
            if _fault_injected(self.name):
                raise RuntimeError(f"injected fault in sensor {self.name}")
            result = run_sensor(
                self.dd.sensor(self.name),
                request.timeout,
                self.dd.root,
                {"LOOOP_DATA_DIR": str(self.dd.root), SENSOR_MARK: self.name},
                started=self._started,
            )
            self._running_group = None
            if result.status != "busy":
                try:
                    write_reading(request.target, self.name, result.reading)
                except OSError as exc:  # a full disk: the pulse drops this beat, the next one retries
                    log.warning("could not write the reading of sensor %s: %s", self.name, exc)
                    result = dataclasses.replace(result, status=UNWRITTEN)
            tell_quietly(me, _Finished())
            tell_quietly(request.reply_to, SensorDone(request.beat, result))

        self.spawn(work, f"sensor-{self.name}")


@dataclass(frozen=True)
class _Finished:
    pass
