"""The readable view of the state, for people and for agents that prefer text."""

from __future__ import annotations

from typing import Any

MAX_LINES_PER_READING = 6


def _indent(text: str, prefix: str = "    ") -> list[str]:
    lines = text.rstrip("\n").splitlines() or ["(empty)"]
    shown = lines[:MAX_LINES_PER_READING]
    if len(lines) > len(shown):
        shown.append(f"… {len(lines) - len(shown)} more lines")
    return [prefix + line for line in shown]


def render_state(state: dict[str, Any]) -> str:
    """A compact multi-section summary of `gather()`'s result."""
    out = [f"looop  world {state['world_hash']}  data {state['data_dir']}"]
    pulse = state.get("pulse")
    if pulse is not None:
        from looop.upstatus import summary

        out.append(f"pulse: {summary(pulse)}")
        for name, meta in sorted((pulse.get("sensors") or {}).items()) if pulse.get("running") else []:
            took = "?" if meta.get("duration") is None else f"{meta['duration']:.2f}s"
            out.append(f"  sensor {name}: {meta.get('status')} (exit {meta.get('exit')}, {took})")
    asks = state["asks"]
    out.append(f"\nasks waiting for an answer ({len(asks)}):" if asks else "\nasks: none pending")
    for ask in asks:
        options = f"  [{' | '.join(ask['options'])}]" if ask["options"] else ""
        out.append(f"  {ask['id']}  from {ask['worker']}, since {ask['created']}{options}")
        out.extend(_indent(ask["prompt"]))
        if ask["reference"]:
            out.append(f"    ref: {ask['reference']}")
    workers = state["workers"]
    out.append(f"\nworkers ({len(workers)}):" if workers else "\nworkers: none")
    for worker in workers:
        alive = "alive" if worker["alive"] else "not alive"
        line = f"  {worker['id']}  {worker['state']}  ({alive})"
        if worker.get("pending_ask"):
            line += f"  waiting on {worker['pending_ask']}"
        elif not worker["alive"] and worker.get("end_reason"):
            line += f"  {worker['end_reason']}"
        out.append(line)
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
        out.extend(f"  {c['resource']}  held by {c['holder']} since {c['since']}" for c in state["claims"])
    total = state["spend"]["total"]
    if total:
        out.append("\nspend: " + ", ".join(f"{amount:g} {unit}" for unit, amount in sorted(total.items())))
        for session, totals in sorted(state["spend"]["by_session"].items()):
            out.append(f"  {session}: " + ", ".join(f"{a:g} {u}" for u, a in sorted(totals.items())))
    if state["notifications"]:
        out.append("\nnotifications (latest last):")
        out.extend(f"  {n['at']} {n['from']}: {n['message']}" for n in state["notifications"][-5:])
    if state["journal_tail"]:
        out.append("\njournal (latest last):")
        out.extend(f"  {line}" for line in state["journal_tail"][-8:])
    if state["problems"]:
        out.append("\nproblems (files skipped):")
        out.extend(f"  {p}" for p in state["problems"])
    return "\n".join(out) + "\n"
