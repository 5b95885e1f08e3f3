"""`_ worker`: the root agent's verbs that start, resume, tell and kill workers (through the
pulse's socket)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from looop.base.errors import InvalidInput
from looop.cli.actions import data_dir
from looop.cli.arguments import CONTEXT, complete_workers, read_body, reason_option

if TYPE_CHECKING:  # the wire's types; the module itself stays unimported (light verbs)
    from looop.world.protocol import Killed, WorkerKill, WorkerResume, WorkerStart, WorkerTell


@click.group("worker", context_settings=CONTEXT)
def worker_group() -> None:
    """Start, tell or kill worker sessions (agents looop runs in a pty; needs `looop up`)."""


def parse_env(entries: tuple[str, ...]) -> dict[str, str] | None:
    """`--env KEY=VALUE`s as a map (a later KEY wins), or None when there are none."""
    from looop.store.childenv import env_problem

    env: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        problem = env_problem(key, value) if sep else f"{entry!r}: expected KEY=VALUE"
        if problem is not None:
            raise InvalidInput(f"--env {problem}")
        env[key] = value
    return env or None


env_option = click.option(
    "--env",
    "env",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set KEY in the agent's environment (repeatable; over the config's `env`; journaled by name).",
)


@worker_group.command("start", context_settings=CONTEXT)
@click.argument("worker_id", metavar="ID")
@click.argument("prompt", nargs=-1)
@click.option("--cwd", metavar="DIR", help="Work in DIR (default: the current directory).")
@click.option(
    "--worktree",
    metavar="REPO",
    help="Work in a new git worktree of REPO on branch looop/ID (under box if installed).",
)
@click.option("--queue", is_flag=True, help="When `max_workers` run, wait for a slot instead of failing.")
@env_option
def worker_start(
    worker_id: str,
    prompt: tuple[str, ...],
    cwd: str | None,
    worktree: str | None,
    queue: bool,
    env: tuple[str, ...],
) -> None:
    """Start worker ID on PROMPT (or stdin): the config's `interactive` agent in a pty.

    The agent is told the worker contract, then PROMPT (all of it is saved in prompts/ID.md).
    Its environment is the `looop up` process's (not this shell's), plus the config's `env`
    and --env.
    Exit 7 when looop is not up; exit 5 when ID is a live worker, when `max_workers` run
    (unless --queue) or when the fleet's budget is spent. An ended worker's ID may be reused:
    its old transcript is kept as transcript.log.1.
    """
    import os

    from looop.base.ids import check_session_id, check_text
    from looop.world.client import call

    check_session_id(worker_id, "worker id")
    extra = parse_env(env)
    task = read_body(prompt, "prompt")
    if cwd is None and worktree is None:
        cwd = os.getcwd()
    # the up process resolves paths in its own directory: send them absolute
    cwd = None if cwd is None else os.path.abspath(os.path.expanduser(cwd))
    worktree = None if worktree is None else os.path.abspath(os.path.expanduser(worktree))
    for path, what in ((cwd, "directory"), (worktree, "repository")):
        if path is not None:  # the request is JSON: a path that is not UTF-8 cannot travel
            check_text(path, what)
    request: WorkerStart = {
        "op": "worker_start",
        "id": worker_id,
        "prompt": task,
        "cwd": cwd,
        "worktree": worktree,
        "queue": queue,
        "env": extra,
    }
    reply = call(data_dir(), request, timeout=None if queue else 180)
    click.echo(f"worker {worker_id} started (pid {reply['pid']}) in {reply['cwd']}")


@worker_group.command("resume", context_settings=CONTEXT)
@click.argument("worker_id", metavar="ID", shell_complete=complete_workers)
@click.argument("prompt", nargs=-1)
@env_option
def worker_resume(worker_id: str, prompt: tuple[str, ...], env: tuple[str, ...]) -> None:
    """Start ended worker ID again, in its old sandbox, with its agent's conversation.

    Runs the profile's resume command (claude: --resume {session_uuid}; pi: the same session
    file), or the config's `resume`; the worker is told it was interrupted, then PROMPT if
    given. A plain command needs `{session_uuid}` so that the agent's session id was fixed at
    start. --env is not remembered from the start: give it again.
    """
    from looop.base.ids import check_session_id
    from looop.world.client import call

    check_session_id(worker_id, "worker id")
    request: WorkerResume = {
        "op": "worker_resume",
        "id": worker_id,
        "prompt": " ".join(prompt),
        "env": parse_env(env),
    }
    reply = call(data_dir(), request, timeout=180)
    click.echo(f"worker {worker_id} resumed (pid {reply['pid']}) in {reply['cwd']}")


@worker_group.command("tell", context_settings=CONTEXT)
@click.argument("worker_id", metavar="ID", shell_complete=complete_workers)
@click.argument("message", nargs=-1)
def worker_tell(worker_id: str, message: tuple[str, ...]) -> None:
    """Type MESSAGE (or stdin) into live worker ID's agent and submit it, as a human would.

    For a worker that is `idle` but not done, or going the wrong way: telling keeps its
    context, killing loses it. An agent that is busy takes it after its current step. Newlines
    stay in the one message (the claude and pi profiles type it as a bracketed paste);
    other control characters are refused, and so is more than 16 KiB: name a file instead.
    It returns once the message is submitted. The claude and pi profiles wait (up to 10 s) for
    the agent to take its terminal (a TUI starting). Exit 4 for no such worker, 5 when it has
    ended (`_ worker resume` it), its agent never took its terminal, or shows a dialog, before the
    text or before the submit key (the keys would answer it: answer its ask first).
    """
    from looop.base.ids import check_session_id
    from looop.store.journal import one_line
    from looop.workers.profiles import check_message
    from looop.world.client import call

    check_session_id(worker_id, "worker id")
    text = check_message(read_body(message, "message"))
    request: WorkerTell = {"op": "worker_tell", "id": worker_id, "message": text, "by": "root"}
    reply = call(data_dir(), request, timeout=60)
    if reply.get("submitted", True):
        click.echo(f"told {worker_id}: {one_line(text, 60)}")
    else:
        click.echo(
            f"queued for {worker_id}, not typed yet (its agent is not reading its input, or earlier"
            f" messages are still being typed; the journal says when it is): {one_line(text, 60)}"
        )


@worker_group.command("kill", context_settings=CONTEXT)
@click.argument("worker_id", metavar="ID", shell_complete=complete_workers)
@reason_option
def worker_kill(worker_id: str, reason: str) -> None:
    """End worker ID and every process it started (SIGTERM, then SIGKILL after `kill_grace`).

    Its undelivered asks (answered ones too) are cancelled and its claims released. Killing an
    ended worker is a no-op; killing a queued one (`start --queue`) takes it off the queue.
    """
    from looop.base.ids import check_session_id
    from looop.world.client import call

    check_session_id(worker_id, "worker id")
    request: WorkerKill = {
        "op": "worker_kill",
        "id": worker_id,
        "by": "root",
        "reason": reason or "killed by the root agent",
    }
    click.echo(ended_line(worker_id, call(data_dir(), request, timeout=300)))


def ended_line(worker_id: str, reply: Killed) -> str:
    """The line that reports a `worker_kill` reply (of `_ worker kill` and of `_ kill`)."""
    if reply.get("already"):
        return f"worker {worker_id} had already ended ({reply.get('state')})"
    how = f" ({reply['how']})" if reply.get("how") else ""
    count = reply.get("processes")
    ended = f": ended {count} process{'' if count == 1 else 'es'}" if isinstance(count, int) else ""
    return f"worker {worker_id} {reply.get('state')}{how}{ended}"
