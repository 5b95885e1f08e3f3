"""The root agent's verbs under `_`: reading the state, waiting for news, answering asks, its
memory (goals, sensors, the playbook), notifying the human and running one command. The verbs
on workers are `_ worker`'s (`worker_control`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from looop.base.errors import InvalidInput
from looop.cli import actions
from looop.cli.actions import data_dir
from looop.cli.arguments import (
    CONTEXT,
    complete_asks,
    complete_goals,
    parse_seconds,
    read_body,
    reason_option,
)

if TYPE_CHECKING:  # keep start-up free of the data-dir modules
    from looop.store.paths import DataDir


@click.command("state", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def state_command(as_json: bool) -> None:
    """Print the state once: snapshots, pending asks, workers, goals, journal tail."""
    actions.show_state(as_json)


@click.command("wait", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@click.option(
    "--timeout", callback=parse_seconds, metavar="S", help="Give up after S (e.g. 30, 5m): exit 124."
)
@click.option("--since", metavar="HASH", help="News after this world_hash; moves no cursor.")
@click.option("--cursor", metavar="NAME", help="Keep a cursor of your own (default: the root agent's).")
@click.option("--all", "everything", is_flag=True, help="Return at once with everything pending.")
def wait_command(
    as_json: bool, timeout: float | None, since: str | None, cursor: str | None, everything: bool
) -> None:
    """Block until something needs judgment that this reader has not seen; print the state.

    Returns at once when there is news since the cursor's last `_ wait` (its `news` lists it).
    On --timeout it prints the state and exits 124. See `looop --help` for what wakes it.
    """
    from looop.base.ids import check_id
    from looop.store.cursors import is_world_hash

    if since is not None and (cursor is not None or everything):
        raise InvalidInput("--since moves no cursor: use it without --cursor and --all")
    if since is not None and not is_world_hash(since):
        raise InvalidInput(f"--since takes a world_hash (16 hex digits), not {since[:40]!r}")
    if cursor is not None:
        check_id(cursor, "cursor name")
    actions.wait(as_json, timeout, since, cursor, everything)


@click.command("answer", context_settings=CONTEXT)
@click.argument("ask_id", shell_complete=complete_asks)
@click.argument("text", nargs=-1)
def answer_command(ask_id: str, text: tuple[str, ...]) -> None:
    """Resolve the pending ask ASK_ID with TEXT (or stdin); it must be one of the ask's options."""
    actions.answer(ask_id, read_body(text, "answer"))


@click.group("goal", context_settings=CONTEXT)
def goal_group() -> None:
    """Write or archive goals (goals/ID.md)."""


@goal_group.command("write", context_settings=CONTEXT)
@click.argument("goal_id", metavar="ID")
@click.argument("body", nargs=-1)
@reason_option
def goal_write(goal_id: str, body: tuple[str, ...], reason: str) -> None:
    """Create or replace goals/ID.md with BODY (or stdin)."""
    from looop.base.ids import check_id
    from looop.store.memory import write_goal

    check_id(goal_id, "goal id")
    click.echo(f"goal {goal_id}: {write_goal(data_dir(), goal_id, read_body(body, 'goal body'), reason)}")


@goal_group.command("archive", context_settings=CONTEXT)
@click.argument("goal_id", metavar="ID", shell_complete=complete_goals)
@reason_option
def goal_archive(goal_id: str, reason: str) -> None:
    """Move goals/ID.md to goals/archive/ (never deleted)."""
    from looop.base.ids import check_id
    from looop.store.memory import archive_goal

    check_id(goal_id, "goal id")
    click.echo(f"goal {goal_id}: {archive_goal(data_dir(), goal_id, reason)}")


@click.group("sensor", context_settings=CONTEXT)
def sensor_group() -> None:
    """Write or remove sensors (sensors/NAME.sh, run every beat)."""


@sensor_group.command("write", context_settings=CONTEXT)
@click.argument("name")
@click.argument("script", nargs=-1)
@reason_option
def sensor_write(name: str, script: tuple[str, ...], reason: str) -> None:
    """Create or replace the executable sensors/NAME.sh with SCRIPT (or stdin).

    Its output becomes the reading `snapshots.NAME`. Keep it quick and read-only.
    """
    from looop.base.ids import check_id
    from looop.store.memory import write_sensor

    check_id(name, "sensor name")
    dd = data_dir()
    click.echo(f"sensor {name}: {write_sensor(dd, name, read_body(script, 'sensor script'), reason)}")
    poke_sensor(dd, name)


@sensor_group.command("remove", context_settings=CONTEXT)
@click.argument("name")
@reason_option
def sensor_remove(name: str, reason: str) -> None:
    """Delete sensors/NAME.sh."""
    from looop.base.ids import check_id
    from looop.store.memory import remove_sensor

    check_id(name, "sensor name")
    dd = data_dir()
    click.echo(f"sensor {name}: {remove_sensor(dd, name, reason)}")
    poke_sensor(dd, name)


def poke_sensor(dd: DataDir, name: str) -> None:
    """Have a running pulse re-run (or drop) this sensor now rather than at the next beat."""
    from looop.world.client import request

    request(dd, {"op": "sensor", "name": name}, timeout=5)


@click.group("playbook", context_settings=CONTEXT)
def playbook_group() -> None:
    """Replace PLAYBOOK.md, the root agent's standing orders."""


@playbook_group.command("write", context_settings=CONTEXT)
@click.argument("body", nargs=-1)
@reason_option
def playbook_write(body: tuple[str, ...], reason: str) -> None:
    """Replace PLAYBOOK.md with BODY (or stdin)."""
    from looop.store.memory import write_playbook

    click.echo(f"playbook: {write_playbook(data_dir(), read_body(body, 'playbook body'), reason)}")


@click.command("notify", context_settings=CONTEXT)
@click.argument("message", nargs=-1)
def notify_command(message: tuple[str, ...]) -> None:
    """Surface MESSAGE (or stdin; at most 64 KiB) to the human: journaled, listed in the state,
    passed to `notify`."""
    from looop.store.config import load_config
    from looop.store.notices import notify

    text = read_body(message, "message").strip()
    dd = data_dir()
    load_config(dd.config)  # a broken or untrusted config is refused before anything is recorded
    delivery = notify(dd, text)
    if delivery.hook_error:
        click.echo(f"looop: noted, but the notify hook failed: {delivery.hook_error}", err=True)
    else:
        click.echo("noted" + (" and sent to the notify hook" if delivery.hook_ran else ""))


@click.command(
    "run", context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_interspersed_args": False}
)
@reason_option
@click.option("--timeout", callback=parse_seconds, metavar="S", help="Kill it after S: exit 124.")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, required=True)
def run_command(cmd: tuple[str, ...], reason: str, timeout: float | None) -> int:
    """Run ONE reversible command; show its output; journal it with its exit code.

    One argument is a shell command line (`looop _ run "git log | head"`); several are run
    as an argv (`looop _ run --reason "check" git status`). Options go before CMD.
    Exits with the command's status.
    """
    from looop.workers.command import run_command as run

    return run(data_dir(), list(cmd), reason, timeout)
