"""The shape of the state that `_ state --json` and `_ wait --json` print and the root agent reads
(`looop.world.state.gather`). Its entries are declared where they are made, and named here too.
Readers that load no store module otherwise import these under `TYPE_CHECKING`: the hottest
verbs pay nothing for a type."""

from __future__ import annotations

from typing import TypedDict

from looop.store.asks import PublicAsk
from looop.store.claims import PublicClaim
from looop.store.config import SafetySettings
from looop.store.notices import Notice
from looop.store.pulse_record import PulseStatus, SensorRun
from looop.store.worker_records import ObservedWorker

__all__ = [
    "STATE_VERSION",
    "ErrorLine",
    "Notice",
    "PublicAsk",
    "PublicClaim",
    "PulseStatus",
    "SafetySettings",
    "SensorRun",
    "Spend",
    "State",
    "Summary",
    "Worker",
]

STATE_VERSION = 1  # the state's `v`: raised when a key changes meaning or goes away


class ErrorLine(TypedDict, total=False):
    error_line: str  # for a worker that failed: the line of its screen that reads like why


class Worker(ObservedWorker, ErrorLine):
    """A worker as the state shows it: its record as readers see it, and its screen's lines."""

    screen_line: str  # the last meaningful one ("" when none)


class Spend(TypedDict):
    by_session: dict[str, dict[str, float]]  # per unit
    total: dict[str, float]
    budget: dict[str, dict[str, float]] | None  # the config's `budget`


class Summary(TypedDict):
    needs_decision: list[str]  # ask ids, urgent first
    working: list[str]  # worker ids
    done: list[str]


class _Gathered(TypedDict):
    v: int
    world_hash: str
    data_dir: str
    snapshots: dict[str, str]  # each sensor's latest reading
    asks: list[PublicAsk]  # pending, oldest first
    workers: list[Worker]
    goals: list[str]
    claims: list[PublicClaim]
    spend: Spend
    limits: SafetySettings
    notifications: list[Notice]  # the latest, oldest first
    summary: Summary
    journal_tail: list[str]
    problems: list[str]  # the files skipped as unreadable, and why
    pulse: PulseStatus


class State(_Gathered, total=False):
    """The state, version `v` (`STATE_VERSION`); `news` is `_ wait`'s only."""

    news: list[str]  # the facts its reader had not seen
