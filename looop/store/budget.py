"""Spend limits (config `budget`): who crossed 80 % or 100 % of what, and which notices are new.

Spend is what workers report with `_ cost`; limits are per worker and for the whole fleet, per
unit. The fleet enforces them (stops a worker past 100 %, refuses new workers past the fleet's);
the notices already given are kept in `sessions/pulse/budget.json`, so a restart repeats none.
"""

from __future__ import annotations

from dataclasses import dataclass

from looop.base import fields
from looop.base.errors import CorruptFile
from looop.base.files import read_json, write_json
from looop.store import journal
from looop.store.notices import notify
from looop.store.paths import DataDir

WARN_AT = 0.8

Limits = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Crossing:
    """`scope` (a worker id, or "fleet") spent `spent` of `limit` `unit`: past `level` %."""

    scope: str
    unit: str
    spent: float
    limit: float
    level: int

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.unit}:{self.level}"

    def describe(self) -> str:
        who = "the fleet" if self.scope == "fleet" else f"worker {self.scope}"
        return f"{who} spent {self.spent:g} of its {self.limit:g} {self.unit} budget ({self.level} %)"


def crossings(
    limits: Limits, by_session: dict[str, dict[str, float]], total: dict[str, float]
) -> list[Crossing]:
    """Every limit spent past 80 % (level 80) or 100 % (level 100)."""
    found: list[Crossing] = []
    scopes = [("fleet", total, limits.get("fleet", {}))]
    scopes += [(s, t, limits.get("worker", {})) for s, t in sorted(by_session.items())]
    for scope, spent_by_unit, per_unit in scopes:
        for unit, limit in sorted(per_unit.items()):
            spent = spent_by_unit.get(unit, 0.0)
            level = 100 if spent >= limit else 80 if spent >= WARN_AT * limit else 0
            if level:
                found.append(Crossing(scope, unit, spent, limit, level))
    return found


def fleet_spent(limits: Limits | None, total: dict[str, float]) -> Crossing | None:
    """The fleet limit that is used up, if one is."""
    found = [c for c in crossings(limits or {}, {}, total) if c.level == 100]
    return found[0] if found else None


def new_notices(dd: DataDir, found: list[Crossing]) -> list[Crossing]:
    """The crossings not yet notified (and remember them)."""
    path = dd.budget_notices
    try:
        given = set(fields.texts(read_json(path), "notified", str(path)) or [])
    except (FileNotFoundError, CorruptFile):
        given = set()
    fresh = [c for c in found if c.key not in given]
    if fresh:
        write_json(path, {"notified": sorted(given | {c.key for c in fresh})})
    return fresh


def announce(dd: DataDir, found: list[Crossing]) -> None:
    """Journal and notify each crossing in `found` not told before, once, with its consequence."""
    for crossing in new_notices(dd, found):
        consequence = ""
        if crossing.level == 100:
            consequence = "; new workers are refused" if crossing.scope == "fleet" else "; it is stopped"
        journal.record(dd, "budget", crossing.scope, crossing.describe() + consequence, who="looop")
        notify(dd, crossing.describe() + consequence, who="looop")
