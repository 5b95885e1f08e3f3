"""Leases on shared resources: `claims/RESOURCE.json` names the session holding it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, TypedDict

from looop.base import fields
from looop.base.errors import ClaimHeld, CorruptFile, NewerSchema
from looop.base.files import SCHEMA_VERSION, StoreLock, fsync_dir, read_json, remove, write_json
from looop.base.ids import check_id, check_session_id, is_valid_id
from looop.store import journal
from looop.store.paths import DataDir


class PublicClaim(TypedDict):
    """A lease as the state shows it (`Claim.public`): times as timestamps."""

    resource: str
    holder: str
    since: str
    expires: str | None


@dataclass(frozen=True)
class Claim:
    """A session's lease on a resource: `claims/RESOURCE.json`."""

    resource: str
    holder: str
    since: float
    expires: float | None = None  # None: until released
    v: int = SCHEMA_VERSION  # the schema its file was written in (1 when it names none)

    def public(self) -> PublicClaim:
        """The fields the root agent sees in the state."""
        return {
            "resource": self.resource,
            "holder": self.holder,
            "since": journal.timestamp(self.since),
            "expires": None if self.expires is None else journal.timestamp(self.expires),
        }

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], where: str, resource: str) -> Claim:
        """The lease on `resource` (its file's name) that `raw` holds; `CorruptFile` naming the
        field when one has a wrong type or range, or when it leases another resource."""
        version = fields.version(raw, where)
        named = fields.text(raw, "resource", where, default=resource)
        if named != resource:
            raise CorruptFile(where, f"holds the lease on {named!r}, not on {resource!r}")
        return cls(
            resource,
            fields.text(raw, "holder", where),
            fields.number(raw, "since", where, default=0.0),
            fields.optional_number(raw, "expires", where),
            version,
        )

    def to_json(self) -> dict[str, Any]:
        """The file's content (`write_json` stamps it with this looop's schema version)."""
        return asdict(self)


def _read(dd: DataDir, resource: str) -> Claim | None:
    path = dd.claim(resource)
    try:
        raw = read_json(path)
    except FileNotFoundError:
        return None
    return Claim.from_json(raw, str(path), resource)


def claim(dd: DataDir, session: str, resource: str, ttl: float | None = None) -> bool:
    """Lease `resource` to `session` (for `ttl` seconds, else until released): False if it held
    it already (a `ttl` renews it), `ClaimHeld` if another session holds an unexpired lease."""
    check_session_id(session)
    check_id(resource, "resource")
    now = time.time()
    expires = None if ttl is None else now + ttl
    with StoreLock.for_path(dd.store_lock).held():
        try:
            current = _read(dd, resource)
        except NewerSchema:
            raise  # a newer looop's lease may well protect something: never taken over
        except CorruptFile:
            current = None  # an unreadable lease protects nothing; take it over
        if current is not None and current.expired(now):
            journal.record(dd, "unclaim", resource, f"expired lease of {current.holder}", who="looop")
            current = None
        if current is not None:
            if current.holder != session:
                raise ClaimHeld(resource, current.holder)
            if ttl is not None:
                write_json(dd.claim(resource), replace(current, expires=expires).to_json())
            return False
        write_json(dd.claim(resource), Claim(resource, session, now, expires).to_json())
        journal.record(dd, "claim", resource, "claimed" + (f" for {ttl:g}s" if ttl else ""), who=session)
    return True


def claim_when_free(
    dd: DataDir, session: str, resource: str, ttl: float | None, timeout: float | None
) -> bool:
    """`claim`, waiting while another session holds the lease: woken by every change in claims/
    and by the lease's expiry. `ClaimHeld` after `timeout`."""
    from looop.base.watching import wait_until

    def attempt() -> bool | None:
        try:
            return claim(dd, session, resource, ttl)
        except ClaimHeld:
            return None

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        held = _read_quietly(dd, resource)
        wake = None if held is None or held.expires is None else max(0.0, held.expires - time.time()) + 0.01
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        limit = wake if remaining is None else remaining if wake is None else min(wake, remaining)
        result = wait_until(lambda: [dd.claims], attempt, limit)
        if result is not None:
            return result
        if deadline is not None and time.monotonic() >= deadline:
            raise ClaimHeld(resource, held.holder if held else "another session")


def _read_quietly(dd: DataDir, resource: str) -> Claim | None:
    try:
        return _read(dd, resource)
    except CorruptFile:
        return None


def unclaim(dd: DataDir, session: str, resource: str) -> bool:
    """Release `session`'s lease on `resource`; False if nobody held it; `ClaimHeld` if another does."""
    check_session_id(session)
    check_id(resource, "resource")
    with StoreLock.for_path(dd.store_lock).held():
        try:
            current = _read(dd, resource)
        except NewerSchema:
            raise  # not ours to remove: a newer looop wrote it
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
    remove(dd.claim(resource))
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


def release_stale(dd: DataDir, holder_alive: Callable[[str], bool | None]) -> list[str]:
    """Release leases that expired, or whose holder is known and no longer alive
    (`holder_alive` returns None for a holder it does not know: such a lease stays)."""
    now = time.time()

    def why(item: Claim) -> str | None:
        if item.expired(now):
            return "its lease expired"
        return f"{item.holder} is no longer alive" if holder_alive(item.holder) is False else None

    return _release(dd, why)


def release_claims_of(dd: DataDir, session: str, why: str) -> list[str]:
    """Drop every lease `session` holds (it ended); return the resources."""
    return _release(dd, lambda item: why if item.holder == session else None)


def _release(dd: DataDir, reason: Callable[[Claim], str | None]) -> list[str]:
    """Remove each lease `reason` gives a reason for, journaled with it; return the resources."""
    released: list[str] = []
    with StoreLock.for_path(dd.store_lock).held():
        for item in all_claims(dd)[0]:
            if (why := reason(item)) is None:
                continue
            _remove(dd, item.resource)
            journal.record(
                dd, "unclaim", item.resource, f"released from {item.holder}", reason=why, who="looop"
            )
            released.append(item.resource)
    return released
