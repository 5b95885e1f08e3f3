"""The verbs a worker runs about itself (marked "(worker)" in their help): ask, claim, unclaim,
report spend, end itself; and `dialog`, the hook an agent runs on a permission request."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

from looop.base.errors import InvalidInput
from looop.cli.actions import data_dir
from looop.cli.arguments import CONTEXT, parse_seconds, read_body, reason_option
from looop.cli.worker_control import ended_line

if TYPE_CHECKING:
    from looop.world.protocol import WorkerKill


@click.command("ask", context_settings=CONTEXT)
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


@click.command("claim", context_settings=CONTEXT)
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


@click.command("unclaim", context_settings=CONTEXT)
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


@click.command("cost", context_settings=CONTEXT)
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


@click.command("dialog", context_settings=CONTEXT)
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


@click.command("kill", context_settings=CONTEXT)
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
    request: WorkerKill = {
        "op": "worker_kill",
        "id": session,
        "by": session,
        "reason": reason or "ended itself",
        "caller": os.getpid(),
    }
    # no deadline of its own: the daemon keeps the line alive and bounds the wait by `kill_grace`
    click.echo(ended_line(session, call(data_dir(), request, timeout=None)))
