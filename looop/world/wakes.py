"""What wakes the root agent: the world as a set of facts, each one something to judge.

`_ wait` returns when the world holds a fact its reader has not seen. A fact that goes away (an
ask answered, a sensor removed) wakes nobody: that is the root agent's own move, or nothing to
decide. What wakes:

- a new ask, and an ask escalated to the human (`urgent`);
- a worker that ended, except by `_ worker kill` (whoever ran it knows);
- a worker that turned `idle` from `running` (it finished a turn without ending itself), turned
  `blocked`, or `stalled`: counted by its session actor, so each new one is a new fact, and a
  worker that gets going again (`idle` -> `running`) is not news;
- a sensor reading that differs from the last one seen;
- a goal added or archived (the list of goal ids changed);
- a notice for the human from looop itself (a budget threshold crossed, an ask escalated); the
  root agent's own `_ notify` is not news to it, nor one about what wakes it anyway (the workers
  found dead after a crash: their ends wake it).

Not: a worker starting or running, screen and output activity, spend below a threshold, the
journal. `world_hash` is the digest of exactly these facts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import orjson

from looop.store.cursors import Facts
from looop.store.worker_records import COUNTERS, ENDED_STATES

if TYPE_CHECKING:
    from looop.world.state_shape import Notice, PublicAsk, Worker


def _short(text: str) -> str:
    return hashlib.sha256(text.encode(errors="replace")).hexdigest()[:12]


def worker_facts(worker: Worker) -> set[str]:
    """The facts one worker's view (as `worker_records.observed` gives it) contributes."""
    wid = worker["id"]
    run = str(worker.get("run") or "")[:8]
    facts = set()
    for name, key in COUNTERS.items():
        count = worker.get(key)
        if isinstance(count, int | float) and count > 0:
            facts.add(f"{name} {wid} #{count:g} run {run}")
    state = worker["state"]
    by_kill_verb = state == "killed" and worker.get("killed_by") == "root"
    if not worker["alive"] and state in ENDED_STATES and not by_kill_verb:
        facts.add(f"ended {wid} {state} run {run}")
    return facts


def wake_facts(
    snapshots: Mapping[str, str],
    asks: Iterable[PublicAsk],
    workers: Iterable[Worker],
    goals: Iterable[str],
    notices: Iterable[Notice],
) -> Facts:
    """Every fact of the world that would wake a reader who has not seen it."""
    facts: set[str] = set()
    for ask in asks:
        facts.add(f"ask {ask['id']}")
        if ask["urgent"]:
            facts.add(f"urgent {ask['id']}")
    for worker in workers:
        facts |= worker_facts(worker)
    for name, reading in snapshots.items():
        facts.add(f"reading {name} {_short(reading)}")
    facts.add(f"goals {_short(' '.join(sorted(goals)))}")
    for notice in notices:
        if notice["from"] != "root" and notice["wakes"]:
            facts.add(f"notice {_short(notice['at'] + notice['message'])}")
    return frozenset(facts)


def digest(facts: Facts) -> str:
    """The world hash: a stable digest of the facts."""
    return hashlib.sha256(orjson.dumps(sorted(facts))).hexdigest()[:16]


def news(facts: Facts, seen: Facts | None, seen_hash: str) -> list[str]:
    """The facts a reader who last saw `seen` (digest `seen_hash`) has not seen, sorted. With
    `seen` unknown (a hash looop no longer remembers), any difference is news: all facts."""
    if seen is None:
        return [] if digest(facts) == seen_hash else sorted(facts)
    return sorted(facts - seen)
