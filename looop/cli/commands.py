"""The click wiring: commands stay thin and import their logic lazily, so that verbs start fast."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from looop import __version__
from looop.base.errors import CodedError, InvalidInput, NotFound
from looop.cli import actions
from looop.cli.actions import data_dir

if TYPE_CHECKING:  # keep start-up free of the data-dir modules
    from looop.store.paths import DataDir

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class ManualGroup(click.Group):
    """The top-level group: its help is the whole operating contract, then the command list."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from looop.cli.manual import MANUAL

        formatter.write(MANUAL)
        self.format_commands(ctx, formatter)


def read_body(inline: tuple[str, ...] | str | None, what: str) -> str:
    """An inline body, else all of stdin (UTF-8 without NUL bytes); refuse to wait on a terminal."""
    if isinstance(inline, tuple):
        inline = " ".join(inline) if inline else None
    if inline is not None:
        return inline
    if sys.stdin.isatty():
        raise InvalidInput(f"no {what} given: pass it inline or pipe it on stdin")
    from looop.base.ids import decode_text

    return decode_text(sys.stdin.buffer.read(), f"the {what} on stdin")


def parse_seconds(_ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A click callback accepting `30`, `90s`, `15m`…"""
    if value is None:
        return None
    from looop.store.config import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


reason_option = click.option("--reason", default="", help="Why: recorded in the journal.")


@click.group(cls=ManualGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="looop")
def cli() -> None:
    """looop: a tiny, portable control plane for agent-driven work."""


@cli.command("status", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print exactly what `looop _ state --json` prints.")
@click.option("--watch", is_flag=True, help="Redraw it live as the world changes (Ctrl-C ends).")
def status_command(as_json: bool, watch: bool) -> None:
    """What needs a decision, one line per worker, one line for the rest: sized to the terminal.

    The full state is `looop _ state`. --watch moves no cursor of `_ wait`'s.
    """
    if as_json and watch:
        raise InvalidInput("--json and --watch do not go together (`looop _ wait --json` streams changes)")
    actions.status(as_json, watch)


def _ids_in(directory: str, suffix: str = "") -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """Shell completion from the names of a data-dir directory (`sessions`, `goals`, ...)."""

    def complete(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
        import os

        from looop.base.ids import is_reserved, is_valid_id
        from looop.store.locate import data_root

        try:
            names = os.listdir(os.path.join(data_root(), directory))
        except OSError:
            return []
        ids = [n.removesuffix(suffix) for n in names if n.endswith(suffix) and not n.startswith(".")]
        return sorted(i for i in ids if is_valid_id(i) and i.startswith(incomplete) and not is_reserved(i))

    return complete


complete_workers = _ids_in("sessions")
complete_asks = _ids_in("asks", ".json")
complete_goals = _ids_in("goals", ".md")


@cli.command("logs", context_settings=CONTEXT)
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


@cli.command("tail", context_settings=CONTEXT)
@click.option("-n", "count", default=10, show_default=True, help="How many entries to show first.")
@click.option("--follow/--no-follow", default=True, show_default=True, help="Keep printing new entries.")
def tail_command(count: int, follow: bool) -> None:
    """Follow the journal: every move, as it is made (Ctrl-C to stop)."""
    from looop.cli.follow import print_journal

    print_journal(data_dir().journal, count, follow)


@cli.command("up", context_settings=CONTEXT)
@click.option("--foreground", is_flag=True, help="Run attached (for systemd/launchd units and tests).")
def up_command(foreground: bool) -> int:
    """Start the pulse: a detached, single-instance process; prints its pid once it is up.

    Logs go to up.log in the data dir. SIGTERM or SIGINT stop it cleanly (so does `looop down`).
    """
    from looop.daemon.pulse import AlreadyUp, run_foreground, start_detached

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


@cli.command("down", context_settings=CONTEXT)
def down_command() -> None:
    """Stop the pulse and every live worker; wait until the process has exited."""
    from looop.daemon.pulse import stop

    click.echo(stop(data_dir()))


@cli.group("_", context_settings=CONTEXT)
def verbs() -> None:
    """The verbs the root agent and workers drive looop with (see `looop --help`)."""


@verbs.command("state", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def state_command(as_json: bool) -> None:
    """Print the state once: snapshots, pending asks, workers, goals, journal tail."""
    actions.show_state(as_json)


@verbs.command("wait", context_settings=CONTEXT)
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


@verbs.command("answer", context_settings=CONTEXT)
@click.argument("ask_id", shell_complete=complete_asks)
@click.argument("text", nargs=-1)
def answer_command(ask_id: str, text: tuple[str, ...]) -> None:
    """Resolve the pending ask ASK_ID with TEXT (or stdin); it must be one of the ask's options."""
    actions.answer(ask_id, read_body(text, "answer"))


@verbs.group("goal", context_settings=CONTEXT)
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


@verbs.group("sensor", context_settings=CONTEXT)
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


@verbs.group("playbook", context_settings=CONTEXT)
def playbook_group() -> None:
    """Replace PLAYBOOK.md, the root agent's standing orders."""


@playbook_group.command("write", context_settings=CONTEXT)
@click.argument("body", nargs=-1)
@reason_option
def playbook_write(body: tuple[str, ...], reason: str) -> None:
    """Replace PLAYBOOK.md with BODY (or stdin)."""
    from looop.store.memory import write_playbook

    click.echo(f"playbook: {write_playbook(data_dir(), read_body(body, 'playbook body'), reason)}")


@verbs.command("notify", context_settings=CONTEXT)
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


@verbs.command(
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


@verbs.command("ask", context_settings=CONTEXT)
@click.argument("session")
@click.option("--prompt", help="The question (else stdin).")
@click.option("--ref", "reference", help="A path or URL the answerer should look at.")
@click.option("--options", help="Allowed answers, comma-separated: a,b,c.")
@click.option(
    "--timeout", callback=parse_seconds, metavar="S", help="The ask's deadline: then --default, or escalate."
)
@click.option(
    "--default", "default", metavar="A", help="The answer it takes when nobody answers by --timeout."
)
def ask_command(
    session: str,
    prompt: str | None,
    reference: str | None,
    options: str | None,
    timeout: float | None,
    default: str | None,
) -> None:
    """(worker) Ask the root agent and block until answered; print the answer.

    With --timeout S the ask has a deadline: unanswered by then it resolves to --default, or,
    without one, it is escalated to the human (urgent in the state, a notification) and this
    exits 124 (run the same ask again to keep waiting). Exits 8 when the ask is cancelled.
    Running the same ask again in the same run of the worker re-attaches to it, with its first
    deadline; a new run of the worker (or an ask from outside it) asks anew.
    """

    from looop.base.ids import check_session_id
    from looop.store.asks import open_ask, parse_options
    from looop.store.childenv import caller_run
    from looop.store.config import setting
    from looop.world.asking import await_answer

    check_session_id(session)
    choices = parse_options(options)
    question = read_body(prompt, "prompt").strip()
    dd = data_dir()
    deadline = timeout if timeout is not None else setting(dd.config, "ask_deadline")
    ask = open_ask(dd, session, question, reference, choices, deadline, default, caller_run(session))
    if sys.stderr.isatty():  # an agent reads stdout and stderr as one: it must see the answer alone
        click.echo(f"looop: ask {ask.id} is waiting for an answer", err=True)
    # only an explicit --timeout or --default ends the wait; the configured deadline only escalates
    waits_for_deadline = timeout is not None or default is not None
    remaining = None
    if waits_for_deadline and ask.deadline is not None:
        remaining = max(0.0, ask.deadline - time.time())
    click.echo(await_answer(dd, ask.id, remaining))


@verbs.command("claim", context_settings=CONTEXT)
@click.argument("session")
@click.argument("resource")
@click.option("--ttl", callback=parse_seconds, metavar="S", help="The lease expires after S unless renewed.")
@click.option("--wait", "wait_free", is_flag=True, help="Block until the resource is free, then claim it.")
@click.option("--timeout", callback=parse_seconds, metavar="S", help="With --wait: give up after S (exit 6).")
def claim_command(
    session: str, resource: str, ttl: float | None, wait_free: bool, timeout: float | None
) -> None:
    """(worker) Lease RESOURCE for SESSION; exit 6 naming the holder if another session has it.

    Claiming again renews a --ttl lease. Leases of ended workers, and expired ones, are released
    by the pulse.
    """
    from looop.base.ids import check_id, check_session_id
    from looop.store.claims import claim, claim_when_free
    from looop.store.config import setting

    check_session_id(session)
    check_id(resource, "resource")
    if ttl == 0:
        raise InvalidInput("--ttl must be more than 0 seconds")
    dd = data_dir()
    ttl = ttl if ttl is not None else setting(dd.config, "claim_ttl")
    if wait_free:
        taken = claim_when_free(dd, session, resource, ttl, timeout)
    else:
        taken = claim(dd, session, resource, ttl)
    click.echo(f"{resource}: {'claimed' if taken else 'already held'} by {session}")


@verbs.command("unclaim", context_settings=CONTEXT)
@click.argument("session")
@click.argument("resource")
def unclaim_command(session: str, resource: str) -> None:
    """(worker) Release SESSION's lease on RESOURCE."""
    from looop.base.ids import check_id, check_session_id
    from looop.store.claims import unclaim

    check_session_id(session)
    check_id(resource, "resource")
    released = unclaim(data_dir(), session, resource)
    click.echo(f"{resource}: {'released' if released else 'was not claimed'}")


@verbs.command("cost", context_settings=CONTEXT)
@click.argument("session")
@click.argument("amount")
@click.option("--unit", default="usd", show_default=True, type=click.Choice(["usd", "tokens"]))
@click.option("--note", help="What the spend was for.")
def cost_command(session: str, amount: str, unit: str, note: str | None) -> None:
    """(worker) Report spend: AMOUNT in UNIT, added to SESSION's totals."""
    from looop.base.ids import check_session_id
    from looop.store.spend import parse_amount, report_cost

    check_session_id(session)
    totals = report_cost(data_dir(), session, parse_amount(amount), unit, note)
    click.echo(f"{session}: total " + ", ".join(f"{v:g} {u}" for u, v in sorted(totals.items())))


@verbs.command("dialog", context_settings=CONTEXT)
@click.argument("session")
def dialog_command(session: str) -> None:
    """(agent hook) Turn the agent's permission request on stdin into an ask; print the decision.

    The claude profile's settings file runs this as Claude Code's PermissionRequest hook: it
    blocks until the root agent answers yes, always or no, then prints the decision JSON that
    Claude Code reads. A call of the worker's own looop verbs is allowed without an ask.
    """
    from looop.base.ids import check_session_id
    from looop.store.childenv import looop_bin
    from looop.workers.dialogs import decide

    check_session_id(session)
    dd = data_dir()
    sys.stdout.buffer.write(decide(dd, session, sys.stdin.buffer.read(), looop_bin(dd)))
    sys.stdout.flush()


@verbs.group("worker", context_settings=CONTEXT)
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
    request = {
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
    request = {"op": "worker_resume", "id": worker_id, "prompt": " ".join(prompt), "env": parse_env(env)}
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
    request = {"op": "worker_tell", "id": worker_id, "message": text, "by": "root"}
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
    ended worker is a no-op.
    """
    from looop.base.ids import check_session_id
    from looop.world.client import call

    check_session_id(worker_id, "worker id")
    request = {
        "op": "worker_kill",
        "id": worker_id,
        "by": "root",
        "reason": reason or "killed by the root agent",
    }
    click.echo(_ended_line(worker_id, call(data_dir(), request, timeout=300)))


def _ended_line(worker_id: str, reply: dict[str, Any]) -> str:
    if reply.get("already"):
        return f"worker {worker_id} had already ended ({reply.get('state')})"
    how = f" ({reply['how']})" if reply.get("how") else ""
    count = reply.get("processes")
    ended = f": ended {count} process{'' if count == 1 else 'es'}" if isinstance(count, int) else ""
    return f"worker {worker_id} {reply.get('state')}{how}{ended}"


@verbs.command("kill", context_settings=CONTEXT)
@click.argument("session")
@reason_option
def kill_command(session: str, reason: str) -> None:
    """(worker) End your own session: every process of it but this one ends, your claims are
    released; returns once they have ended."""
    import os
    import signal

    from looop.base.ids import check_session_id
    from looop.world.client import call

    check_session_id(session)
    caller = os.environ.get("LOOOP_SESSION_ID")
    if caller and caller != session:
        raise InvalidInput(
            f"session {caller} can end only itself, not {session} (the root agent uses `_ worker kill`)"
        )
    # looop spares this process (its pid travels, checked by the socket where it can be), but it
    # may share the agent's group or terminal: outlive their SIGTERM and hang-up to hear the reply
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    request = {
        "op": "worker_kill",
        "id": session,
        "by": session,
        "reason": reason or "ended itself",
        "caller": os.getpid(),
    }
    # no deadline of its own: the daemon keeps the line alive and bounds the wait by `kill_grace`
    click.echo(_ended_line(session, call(data_dir(), request, timeout=None)))


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
