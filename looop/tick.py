"""`_ wait`: block until the world hash differs from the one last returned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from looop.control import wait_via_daemon
from looop.fsio import atomic_write
from looop.paths import DataDir
from looop.sessions import session_ids
from looop.state import gather


def watched_dirs(dd: DataDir) -> list[Path]:
    """Directories whose changes can move the world hash."""
    return [dd.root, dd.snapshots, dd.asks, dd.answers, dd.goals, dd.claims, dd.sessions] + [
        dd.sessions / s for s in session_ids(dd)
    ]


def last_returned_hash(dd: DataDir) -> str:
    try:
        return dd.last_tick_hash.read_text().strip()
    except FileNotFoundError:
        return ""


def wait_for_change(dd: DataDir, timeout: float | None) -> tuple[dict[str, Any], bool]:
    """The state once its hash differs from `.last-tick-hash` (then recorded), and whether it did
    before `timeout`."""
    last = last_returned_hash(dd)
    latest: dict[str, Any] = {}

    def changed() -> dict[str, Any] | None:
        latest.update(gather(dd))
        return latest if latest["world_hash"] != last else None

    state = wait_via_daemon(dd, {"op": "wait", "since": last}, lambda: watched_dirs(dd), changed, timeout)
    if state is None:
        return latest, False
    atomic_write(dd.last_tick_hash, (state["world_hash"] + "\n").encode())
    return state, True
