"""The click command tree: the `looop` group, whose help is the manual, and `_`, assembled from
the modules that hold the commands; and `invoke`, which runs it."""

from __future__ import annotations

import click

from looop import __version__
from looop.base.errors import CodedError
from looop.cli import operator_commands, root_verbs, worker_control, worker_verbs
from looop.cli.arguments import CONTEXT


class ManualGroup(click.Group):
    """The top-level group: its help is the whole operating contract, then the command list."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from looop.cli.manual import MANUAL

        formatter.write(MANUAL)
        self.format_commands(ctx, formatter)


@click.group(cls=ManualGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="looop")
def cli() -> None:
    """looop: a tiny, portable control plane for agent-driven work."""


@cli.group("_", context_settings=CONTEXT)
def verbs() -> None:
    """The verbs the root agent and workers drive looop with (see `looop --help`)."""


for command in (
    operator_commands.status_command,
    operator_commands.logs_command,
    operator_commands.tail_command,
    operator_commands.up_command,
    operator_commands.down_command,
):
    cli.add_command(command)
for command in (
    root_verbs.state_command,
    root_verbs.wait_command,
    root_verbs.answer_command,
    root_verbs.goal_group,
    root_verbs.sensor_group,
    root_verbs.playbook_group,
    root_verbs.notify_command,
    root_verbs.run_command,
    worker_control.worker_group,
    worker_verbs.ask_command,
    worker_verbs.claim_command,
    worker_verbs.unclaim_command,
    worker_verbs.cost_command,
    worker_verbs.dialog_command,
    worker_verbs.kill_command,
):
    verbs.add_command(command)


def invoke() -> object:
    """Run the click CLI on `sys.argv`; click's own errors become looop's errors (the console
    entry, `looop.cli.entry.main`, prints them)."""
    try:
        return cli.main(prog_name="looop", standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "looop"
        raise CodedError(f"{exc.format_message()} (see `{where} --help`)", exc.exit_code) from None
    except click.ClickException as exc:
        raise CodedError(exc.format_message(), exc.exit_code) from None
    except click.Abort:
        raise KeyboardInterrupt from None
