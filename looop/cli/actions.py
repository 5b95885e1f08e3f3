"""The hottest verbs as plain functions, shared by the click commands and the fast entry.

Free of click, so that `looop.cli.entry` can run them without loading it: the root agent calls
`_ wait` and `_ state` many times a minute and feels every millisecond of start-up.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from looop.store.paths import DataDir
    from looop.world.state_shape import State


def data_dir() -> DataDir:
    """The data dir, created and seeded on first use."""
    from looop.store.bootstrap import open_data_dir

    dd = open_data_dir()
    note_worker_verb(dd)
    return dd


def note_worker_verb(dd: DataDir) -> None:
    """A worker calling a verb is alive and well: touch its `.last-verb` (stall detection)."""
    import os

    from looop.base.errors import StorageError
    from looop.base.files import open_private
    from looop.base.ids import is_valid_id

    session = os.environ.get("LOOOP_SESSION_ID")
    if session and is_valid_id(session) and dd.session(session).is_dir():
        with contextlib.suppress(OSError, StorageError):
            fd = open_private(dd.last_verb(session), os.O_WRONLY)
            try:
                os.utime(fd)
            finally:
                os.close(fd)


def out(text: str) -> None:
    """Print a line (what click.echo does for us, without click)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def emit_state(state: State, as_json: bool) -> None:
    from looop.world.render import state_output

    sys.stdout.buffer.write(state_output(state, as_json))
    sys.stdout.flush()


def show_state(as_json: bool) -> None:
    """`_ state`: the state once, with the pulse's status."""
    from looop.store.cursors import remember
    from looop.world.state import gather_facts

    dd = data_dir()
    state, facts = gather_facts(dd)
    remember(dd, state["world_hash"], facts)  # so that `_ wait --since` its hash knows what it saw
    emit_state(state, as_json)


def status(as_json: bool, watch: bool) -> None:
    """`looop status`: the state sized to the terminal, once or live; `--json` is `_ state --json`."""
    if as_json:
        show_state(as_json=True)
        return
    from looop.cli import status as statusview

    (statusview.watch if watch else statusview.show)(data_dir())


def wait(
    as_json: bool,
    timeout: float | None,
    since: str | None = None,
    cursor: str | None = None,
    everything: bool = False,
) -> None:
    """`_ wait`: the state once it holds news for the reader; `TimedOut` (after printing) when it
    did not. The cursor moves only once the state is printed (see `waiting.wait_for_news`)."""
    from looop.base.errors import TimedOut
    from looop.store.cursors import advance
    from looop.world.waiting import wait_for_news

    dd = data_dir()
    state, changed = wait_for_news(dd, since, cursor, everything, timeout)
    emit_state(state, as_json)
    if not changed:
        raise TimedOut(f"no change within {timeout:g}s")
    if since is None:
        advance(dd, cursor, state["world_hash"])


def answer(ask_id: str, text: str) -> None:
    """`_ answer`: resolve a pending ask."""
    from looop.base.ids import check_id
    from looop.store.asks import answer_ask

    check_id(ask_id, "ask id")
    out(f"answered {ask_id}: {answer_ask(data_dir(), ask_id, text.strip())}")
