"""The durable memory the root agent edits through verbs: goals, sensors and the playbook."""

from __future__ import annotations

import os
import time

from looop.base.errors import InvalidInput, NotFound
from looop.base.files import StoreLock, atomic_write, ensure_dir, fsync_dir, remove, replace
from looop.base.ids import is_valid_id
from looop.store import journal
from looop.store.paths import DataDir

SENSOR_MODE = 0o700


def _body_bytes(body: str, what: str) -> bytes:
    if not body.strip():
        raise InvalidInput(f"the {what} body is empty; give it inline or pipe it on stdin")
    return body.encode() if body.endswith("\n") else (body + "\n").encode()


def _summary(created: bool, data: bytes) -> str:
    return f"{'created' if created else 'replaced'}, {len(data)} bytes"


def list_goals(dd: DataDir) -> list[str]:
    """Ids of the active goals, sorted."""
    try:
        names = os.listdir(dd.goals)
    except FileNotFoundError:
        return []
    return sorted(n[:-3] for n in names if n.endswith(".md") and is_valid_id(n[:-3]))


def write_goal(dd: DataDir, goal_id: str, body: str, reason: str = "") -> str:
    """Create or replace `goals/ID.md`; return what happened."""
    path = dd.goal(goal_id)
    data = _body_bytes(body, "goal")
    with StoreLock.for_path(dd.store_lock).held():
        created = not path.exists()
        atomic_write(path, data)
        result = _summary(created, data)
        journal.record(dd, "goal write", goal_id, result, reason)
    return result


def archive_goal(dd: DataDir, goal_id: str, reason: str = "") -> str:
    """Move `goals/ID.md` under `goals/archive/`, never overwriting an earlier archived copy."""
    path = dd.goal(goal_id)
    with StoreLock.for_path(dd.store_lock).held():
        if not path.exists():
            raise NotFound(f"no goal {goal_id!r} (active goals: {', '.join(list_goals(dd)) or 'none'})")
        ensure_dir(dd.goals_archive)
        target = dd.goals_archive / path.name
        if target.exists():
            target = dd.goals_archive / f"{goal_id}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.md"
        replace(path, target)
        fsync_dir(dd.goals_archive)
        fsync_dir(dd.goals)
        result = f"archived as goals/archive/{target.name}"
        journal.record(dd, "goal archive", goal_id, result, reason)
    return result


def write_sensor(dd: DataDir, name: str, script: str, reason: str = "") -> str:
    """Create or replace the executable `sensors/NAME.sh`."""
    path = dd.sensor(name)
    data = _body_bytes(script, "sensor script")
    with StoreLock.for_path(dd.store_lock).held():
        created = not path.exists()
        atomic_write(path, data, mode=SENSOR_MODE)
        result = _summary(created, data)
        if not data.startswith(b"#!"):
            result += ", no #! line: runs with /bin/sh"
        journal.record(dd, "sensor write", name, result, reason)
    return result


def remove_sensor(dd: DataDir, name: str, reason: str = "") -> str:
    """Delete `sensors/NAME.sh`; its reading disappears at the next beat."""
    path = dd.sensor(name)
    with StoreLock.for_path(dd.store_lock).held():
        if not path.exists():
            raise NotFound(f"no sensor {name!r}")
        remove(path)
        fsync_dir(dd.sensors)
        journal.record(dd, "sensor remove", name, "removed", reason)
    return "removed"


def write_playbook(dd: DataDir, body: str, reason: str = "") -> str:
    """Replace `PLAYBOOK.md`."""
    data = _body_bytes(body, "playbook")
    with StoreLock.for_path(dd.store_lock).held():
        created = not dd.playbook.exists()
        atomic_write(dd.playbook, data)
        result = _summary(created, data)
        journal.record(dd, "playbook write", "PLAYBOOK.md", result, reason)
    return result
