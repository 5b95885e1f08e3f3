"""The operator's commands: `status`, `logs`, `tail`, `up` and `down`."""

from __future__ import annotations

import click

from looop.base.errors import InvalidInput, NotFound
from looop.cli import actions
from looop.cli.actions import data_dir
from looop.cli.arguments import CONTEXT, complete_workers


@click.command("status", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print exactly what `looop _ state --json` prints.")
@click.option("--watch", is_flag=True, help="Redraw it live as the world changes (Ctrl-C ends).")
def status_command(as_json: bool, watch: bool) -> None:
    """What needs a decision, one line per worker, one line for the rest: sized to the terminal.

    The full state is `looop _ state`. --watch moves no cursor of `_ wait`'s.
    """
    if as_json and watch:
        raise InvalidInput("--json and --watch do not go together (`looop _ wait --json` streams changes)")
    actions.status(as_json, watch)


@click.command("logs", context_settings=CONTEXT)
@click.argument("worker_id", metavar="ID", shell_complete=complete_workers)
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Keep printing until the worker ends: each line once it scrolls off the screen, then the screen.",
)
def logs_command(worker_id: str, follow: bool) -> None:
    """Print worker ID's output as its terminal showed it (a 50x200 terminal emulator: the lines
    that scrolled off, then the last screen). Only the newest 4 MB are rendered (a few seconds)."""
    from looop.base.ids import check_session_id
    from looop.cli.follow import print_transcript
    from looop.store.worker_records import live_record

    check_session_id(worker_id, "worker id")
    dd = data_dir()
    if not dd.session(worker_id).is_dir():
        raise NotFound(f"no worker {worker_id!r} (see `looop status`)")
    print_transcript(dd.transcript(worker_id), follow, lambda: live_record(dd, worker_id) is not None)


@click.command("tail", context_settings=CONTEXT)
@click.option("-n", "count", default=10, show_default=True, help="How many entries to show first.")
@click.option("--follow/--no-follow", default=True, show_default=True, help="Keep printing new entries.")
def tail_command(count: int, follow: bool) -> None:
    """Follow the journal: every move, as it is made (Ctrl-C to stop)."""
    from looop.cli.follow import print_journal

    print_journal(data_dir().journal, count, follow)


@click.command("up", context_settings=CONTEXT)
@click.option("--foreground", is_flag=True, help="Run attached (for systemd/launchd units and tests).")
def up_command(foreground: bool) -> int:
    """Start the pulse: a detached, single-instance process; prints its pid once it is up.

    Logs go to up.log in the data dir. SIGTERM or SIGINT stop it cleanly (so does `looop down`).
    """
    from looop.daemon.updown import AlreadyUp, run_foreground, start_detached

    dd = data_dir()
    if foreground:
        return run_foreground(dd)
    try:
        pid = start_detached(dd)
    except AlreadyUp as exc:
        click.echo(f"looop is {exc.message}")
        return 0
    click.echo(f"looop is up (pid {pid}); data dir {dd.root}")
    return 0


@click.command("down", context_settings=CONTEXT)
def down_command() -> None:
    """Stop the pulse and every live worker; wait until the process has exited."""
    from looop.daemon.updown import stop

    click.echo(stop(data_dir()))
