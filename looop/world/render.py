"""The readable view of the state (`looop status`, `_ state`), for people and for agents that
prefer text: what needs a decision first, then who is working, then what is done."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

import orjson

from looop.base.fields import MAX_TIME, finite
from looop.base.ids import printable

if TYPE_CHECKING:
    from looop.world.state_shape import PublicAsk, PulseStatus, State, Worker

MAX_LINES_PER_READING = 6
SCREEN_WIDTH = 48
DONE_SHOWN = 8


def _indent(text: str, prefix: str = "    ") -> list[str]:
    lines = text.rstrip("\n").splitlines() or ["(empty)"]
    shown = lines[:MAX_LINES_PER_READING]
    if len(lines) > len(shown):
        shown.append(f"… {len(lines) - len(shown)} more lines")
    return [prefix + line for line in shown]


def age(seconds: float) -> str:
    """`42s`, `5m`, `3h`, `2d`."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _time(value: object) -> float | None:
    """A recorded time or duration, None when it is not a number a clock can show."""
    return finite(value, 0.0, MAX_TIME)


def money(totals: dict[str, float]) -> str:
    return ", ".join(f"{amount:g} {unit}" for unit, amount in sorted(totals.items())) or "-"


def table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Columns padded to their widest cell; the last column is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]


def _asks(asks: list[PublicAsk]) -> list[str]:
    if not asks:
        return ["\nneeds a decision: nothing"]
    out = [f"\nneeds a decision ({len(asks)}):"]
    for ask in sorted(asks, key=lambda a: not a["urgent"]):
        options = f"  [{' | '.join(ask['options'])}]" if ask["options"] else ""
        flag = "URGENT " if ask["urgent"] else ""
        due = f", default {ask['default']!r} at {ask['deadline']}" if ask["default"] else ""
        if ask["deadline"] and not ask["default"]:
            due = f", deadline {ask['deadline']}"
        out.append(f"  {flag}{ask['id']}  from {ask['worker']}, since {ask['created']}{due}{options}")
        out.extend(_indent(ask["prompt"]))
        if ask["reference"]:
            out.append(f"    ref: {ask['reference']}")
    return out


def _workers(workers: list[Worker], now: float, cap: object) -> list[str]:
    if not workers:
        return [f"\nworkers: none (at most {cap})"]
    working = [w for w in workers if w["alive"]]
    done = sorted((w for w in workers if not w["alive"]), key=lambda w: -(_time(w.get("ended")) or 0))
    out = [f"\nworkers ({len(working)} working of at most {cap}, {len(done)} done):"]
    rows = [["ID", "STATE", "AGE", "SPEND", "ASK", "SCREEN / END"]]
    for worker in working + done[:DONE_SHOWN]:
        started = _time(worker.get("started")) or now
        if worker["alive"]:
            last = worker["screen_line"]
        else:  # why it ended: the error it showed, if it failed and showed one
            last = worker.get("error_line") or worker.get("end_reason") or ""
        rows.append(
            [
                worker["id"],
                worker["state"],
                age(now - started),
                money(worker.get("cost") or {}),
                worker["pending_ask"] or "-",
                last[:SCREEN_WIDTH] + ("…" if len(last) > SCREEN_WIDTH else ""),
            ]
        )
    out.extend(table(rows))
    if len(done) > DONE_SHOWN:
        out.append(f"  … {len(done) - DONE_SHOWN} more ended workers")
    return out


def pulse_summary(status: PulseStatus, now: float | None = None) -> str:
    """One line: `up (pid 12, for 5m, 40 beats, last 3s ago in 0.21s, 0 restarts)` or why not.
    Any field but `running` may be missing (`read_status` leaves bad ones out)."""
    now = time.time() if now is None else now
    if not status["running"]:
        return "not running (start it with `looop up`)"

    def number(key: Literal["started", "last_beat_at", "last_beat_duration"]) -> float | None:
        return finite(status.get(key), 0.0, MAX_TIME)

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


def render_state(state: State, now: float | None = None) -> str:
    """A compact multi-section summary of `gather()`'s result."""
    now = time.time() if now is None else now
    out = [f"looop  world {state['world_hash']}  data {state['data_dir']}"]
    pulse = state["pulse"]
    out.append(f"pulse: {pulse_summary(pulse)}")
    sensors = pulse.get("sensors", {}) if pulse["running"] else {}
    for name, meta in sorted(sensors.items()):
        duration = _time(meta.get("duration"))
        took = "?" if duration is None else f"{duration:.2f}s"
        out.append(f"  sensor {name}: {meta.get('status')} (exit {meta.get('exit')}, {took})")
    out.extend(_asks(state["asks"]))
    out.extend(_workers(state["workers"], now, state["limits"]["max_workers"]))
    goals = state["goals"]
    out.append(f"\ngoals ({len(goals)}): {', '.join(goals)}" if goals else "\ngoals: none")
    snapshots = state["snapshots"]
    out.append(
        f"\nsnapshots ({len(snapshots)}):" if snapshots else "\nsnapshots: none yet (the pulse writes them)"
    )
    for name, reading in snapshots.items():
        out.append(f"  {name}:")
        out.extend(_indent(reading))
    if state["claims"]:
        out.append("\nclaims:")
        rows = [["RESOURCE", "HOLDER", "SINCE", "EXPIRES"]]
        rows += [[c["resource"], c["holder"], c["since"], c["expires"] or "-"] for c in state["claims"]]
        out.extend(table(rows))
    spend = state["spend"]
    if spend["total"] or spend["budget"]:
        out.append(f"\nspend: {money(spend['total'])}" + _limits(spend["budget"] or {}))
    if state["notifications"]:
        out.append("\nnotifications (latest last):")
        out.extend(f"  {n['at']} {n['from']}: {n['message']}" for n in state["notifications"][-5:])
    if state["journal_tail"]:
        out.append("\njournal (latest last):")
        out.extend(f"  {line}" for line in state["journal_tail"][-8:])
    if state["problems"]:
        out.append("\nproblems (files skipped):")
        out.extend(f"  {p}" for p in state["problems"])
    return printable("\n".join(out)) + "\n"


def _limits(limits: dict[str, dict[str, float]]) -> str:
    parts = [f"{scope} {money(per_unit)}" for scope, per_unit in sorted(limits.items())]
    return f"  (budget: {'; '.join(parts)})" if parts else ""


def json_bytes(value: Any) -> bytes:
    """JSON as looop's verbs print it: indented, one trailing newline."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def state_output(state: State, as_json: bool) -> bytes:
    """The state as `_ state` prints it: JSON, or the readable summary."""
    return json_bytes(state) if as_json else render_state(state).encode()
