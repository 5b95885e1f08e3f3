"""`_ wait`: block until the world holds a fact the reader has not seen (see `looop.world.wakes`)."""

from __future__ import annotations

from pathlib import Path

from looop.store.cursors import read_cursor, recall, remember
from looop.store.paths import DataDir
from looop.store.worker_records import session_ids
from looop.world.client import wait_via_daemon
from looop.world.state import gather_facts
from looop.world.state_shape import State
from looop.world.wakes import news

RECHECK = 2.0  # without `up`, how often to look again for what no file announces (a worker gone)


def watched_dirs(dd: DataDir) -> list[Path]:
    """Directories whose changes can move the world hash."""
    return [dd.root, dd.snapshots, dd.asks, dd.answers, dd.goals, dd.claims, dd.sessions] + [
        dd.sessions / s for s in session_ids(dd)
    ]


def wait_for_news(
    dd: DataDir, since: str | None, cursor: str | None, everything: bool, timeout: float | None
) -> tuple[State, bool]:
    """The state once it holds news for the reader, and whether it did before `timeout`.

    The reader is `since` (a world hash it was shown) when given, else the cursor `cursor` (None:
    the root agent's); `everything` returns at once. The state's `news` lists the facts the
    reader had not seen. Nothing is moved here: the caller advances the cursor once it has
    printed the state, so that a `_ wait` killed before then loses nothing."""
    base = since if since is not None else read_cursor(dd, cursor)
    seen = recall(dd, base)
    latest: list[State] = []  # the last state read

    def check() -> State | None:
        state, facts = gather_facts(dd)
        state["news"] = news(facts, seen, base)
        latest[:] = [state]
        remember(dd, state["world_hash"], facts)  # it may be printed: a `--since` of it works
        return state if everything or state["news"] else None

    state = wait_via_daemon(
        dd, {"op": "wait", "since": base}, lambda: watched_dirs(dd), check, timeout, RECHECK
    )
    if state is None:
        return latest[0], False  # `check` ran at least once: at the timeout
    return state, True
