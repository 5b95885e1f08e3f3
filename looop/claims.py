"""Leases on shared resources: `claims/RESOURCE.json` names the session holding it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from looop import journal
from looop.errors import ClaimHeld, CorruptFile
from looop.fsio import StoreLock, fsync_dir, read_json, write_json
from looop.ids import check_id, is_valid_id
from looop.paths import DataDir


@dataclass(frozen=True)
class Claim:
    resource: str
    holder: str
    since: float

    def public(self) -> dict[str, Any]:
        return {"resource": self.resource, "holder": self.holder, "since": journal.timestamp(self.since)}


def _read(dd: DataDir, resource: str) -> Claim | None:
    path = dd.claim(resource)
    try:
        raw = read_json(path)
    except FileNotFoundError:
        return None
    try:
        return Claim(resource, str(raw["holder"]), float(raw.get("since", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFile(str(path), f"not a valid claim ({exc})") from None


def claim(dd: DataDir, session: str, resource: str) -> bool:
    """Lease `resource` to `session`: False if it already held it, `ClaimHeld` if another does."""
    check_id(session, "session id")
    check_id(resource, "resource")
    with StoreLock.for_path(dd.store_lock).held():
        try:
            current = _read(dd, resource)
        except CorruptFile:
            current = None  # an unreadable lease protects nothing; take it over
        if current is not None:
            if current.holder != session:
                raise ClaimHeld(resource, current.holder)
            return False
        write_json(dd.claim(resource), {"resource": resource, "holder": session, "since": time.time()})
        journal.record(dd, "claim", resource, "claimed", who=session)
    return True


def unclaim(dd: DataDir, session: str, resource: str) -> bool:
    """Release `session`'s lease on `resource`; False if nobody held it; `ClaimHeld` if another does."""
    check_id(session, "session id")
    check_id(resource, "resource")
    with StoreLock.for_path(dd.store_lock).held():
        try:
            current = _read(dd, resource)
        except CorruptFile:
            current = Claim(resource, session, 0)
        if current is None:
            return False
        if current.holder != session:
            raise ClaimHeld(resource, current.holder)
        _remove(dd, resource)
        journal.record(dd, "unclaim", resource, "released", who=session)
    return True


def _remove(dd: DataDir, resource: str) -> None:
    dd.claim(resource).unlink(missing_ok=True)
    fsync_dir(dd.claims)


def all_claims(dd: DataDir) -> tuple[list[Claim], list[str]]:
    """Every lease, and lines describing unreadable claim files."""
    found: list[Claim] = []
    problems: list[str] = []
    for path in sorted(dd.claims.glob("*.json")):
        if path.name.startswith(".") or not is_valid_id(path.stem):
            continue
        try:
            item = _read(dd, path.stem)
        except CorruptFile as problem:
            problems.append(problem.message)
            continue
        if item is not None:
            found.append(item)
    return found, problems


def release_claims_of(dd: DataDir, session: str, why: str) -> list[str]:
    """Drop every lease `session` holds (it ended); return the resources."""
    released: list[str] = []
    with StoreLock.for_path(dd.store_lock).held():
        for item in all_claims(dd)[0]:
            if item.holder == session:
                _remove(dd, item.resource)
                journal.record(
                    dd, "unclaim", item.resource, f"released from {session}", reason=why, who="looop"
                )
                released.append(item.resource)
    return released
