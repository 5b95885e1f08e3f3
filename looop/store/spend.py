"""Self-reported spend: one JSON line per `_ cost` in `sessions/ID/cost.jsonl`."""

from __future__ import annotations

import math
import time

import orjson

from looop.base.errors import InvalidInput
from looop.base.fields import MAX_AMOUNT, finite
from looop.base.files import SCHEMA_VERSION, StoreLock, append_line, ensure_dir
from looop.base.ids import check_session_id
from looop.store import journal
from looop.store.paths import DataDir

UNITS = ("usd", "tokens")


def parse_amount(raw: str) -> float:
    """A finite number from 0 to `MAX_AMOUNT`."""
    try:
        amount = float(raw)
    except ValueError:
        raise InvalidInput(f"cost amount {raw!r} is not a number") from None
    if not math.isfinite(amount) or not 0 <= amount <= MAX_AMOUNT:
        raise InvalidInput(f"cost amount {raw!r} must be a number from 0 to {MAX_AMOUNT:g}")
    return amount


def report_cost(dd: DataDir, session: str, amount: float, unit: str, note: str | None) -> dict[str, float]:
    """Append one spend record and return the session's new totals per unit."""
    check_session_id(session)
    if unit not in UNITS:
        raise InvalidInput(f"unit {unit!r} is not one of: {', '.join(UNITS)}")
    record = {"v": SCHEMA_VERSION, "at": time.time(), "amount": amount, "unit": unit, "note": note}
    with StoreLock.for_path(dd.store_lock).held():
        ensure_dir(dd.session(session))
        append_line(dd.session_costs(session), orjson.dumps(record).decode())
        totals = cost_totals(dd, session)
        shown = f"{amount:g} {unit}" + (f" ({note})" if note else "")
        journal.record(dd, "cost", session, f"{shown}, total {totals.get(unit, 0):g} {unit}", who=session)
    return totals


def spend_by_session(dd: DataDir) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Spend per session and in total, per unit."""
    from looop.store.worker_records import session_ids

    by_session = {s: t for s in session_ids(dd) if (t := cost_totals(dd, s))}
    total: dict[str, float] = {}
    for totals in by_session.values():
        for unit, amount in totals.items():
            total[unit] = total.get(unit, 0.0) + amount
    return by_session, total


def cost_totals(dd: DataDir, session: str) -> dict[str, float]:
    """Spend per unit so far; unreadable lines are skipped."""
    totals: dict[str, float] = {}
    try:
        lines = dd.session_costs(session).read_bytes().splitlines()
    except FileNotFoundError:
        return totals
    for line in lines:
        try:
            entry = orjson.loads(line)
            unit, amount = str(entry["unit"]), finite(entry["amount"], 0.0, MAX_AMOUNT)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if amount is None:
            continue
        totals[unit] = totals.get(unit, 0.0) + amount
    return totals
