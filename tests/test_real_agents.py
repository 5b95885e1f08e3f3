"""The real agent CLIs (Claude Code, pi) as looop workers, against a scripted model on 127.0.0.1.

Each test's `up` (and so its workers, which inherit its environment) gets a HOME of its own,
seeded so the agent shows no first-run dialog and talks to the test's model server, and the
pinned CLI first on PATH (tests/agent_clis.py installs it from npm once, into a cache dir).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.agent_clis import agent_environment
from tests.conftest import LOOOP, Looop, Up, ended, report
from tests.model_server import Bash, ModelServer

# Explicit argv configs that work with today's code (the built-in profiles will replace them).
# Claude Code: `--allowedTools=Bash` (with `=`: the option is variadic) lets the contract's
# `"$LOOOP_BIN" _ ask "$LOOOP_SESSION_ID" ...` run; without it that command shows a permission
# dialog ("Contains simple_expansion") even in acceptEdits mode. `--permission-mode=default`: the
# newest release defaults to auto mode, which sets broad allow rules aside and, behind a gateway
# such as the test's model server, stops at a dialog of its own ("Auto mode can't check ...").
CLAUDE_ARGV = ["claude", "--allowedTools=Bash", "--permission-mode=default", "--append-system-prompt"]
INTERACTIVE = {
    "pi": ["pi", "--offline", "--append-system-prompt", "{contract_file}", "{task}"],
    "claude": [*CLAUDE_ARGV, "{contract}", "{task}"],
    "claude-newest": [*CLAUDE_ARGV, "{contract}", "{task}"],  # the same program, its newest release
}

ASK = '"$LOOOP_BIN" _ ask "$LOOOP_SESSION_ID" --prompt "Deploy to staging?" --options yes,no'
COST = '"$LOOOP_BIN" _ cost "$LOOOP_SESSION_ID" 0.25 --unit usd --note "scripted tokens"'
KILL = '"$LOOOP_BIN" _ kill "$LOOOP_SESSION_ID"'


def write_report(name: str) -> Callable[[str], str]:
    """A step that writes the tool result it saw (the answer, its last line) into a report."""

    def command(result: str) -> str:
        lines = result.strip().splitlines()
        seen = lines[-1] if lines else ""
        return f'printf "answer=%s\\n" {shlex.quote(seen)} > "$LOOOP_DATA_DIR/reports/{name}"'

    return command


def real_fleet(
    looop: Looop,
    up: Up,
    agent_cli: Callable[[str], Path],
    server: ModelServer,
    agent: str,
    interactive: list[str] | str | None = None,
    trusted: bool = True,
    **config: Any,
) -> Path:
    """Start `up` with workers that run the real `agent` against `server` (its shared url); return
    the directory the workers should run in (trusted by Claude Code unless `trusted` is false)."""
    agent_cli(agent)
    work = looop.data.parent / "work"
    work.mkdir(exist_ok=True)
    home = Path(looop.env["HOME"])
    looop.env.update(agent_environment(agent, home, server.url(), [work] if trusted else []))
    up.configure(interactive=interactive or INTERACTIVE[agent], idle_after="2s", kill_grace="2s", **config)
    up.start()
    return work


def screens(looop: Looop) -> str:
    """Every worker's screen, for a failure message (a dialog the agent stopped at shows here)."""
    shown = [
        f"--- {p.parent.name}:\n{p.read_text()}" for p in sorted(looop.data.glob("sessions/*/screen.txt"))
    ]
    return "\n".join(shown)


def wait_ask(looop: Looop, timeout: float = 90) -> dict[str, Any]:
    """The root agent's loop: the first pending ask, waiting with `_ wait --json` while there is
    none (`_ wait` returns on a change since it last returned, so the state is read first)."""
    deadline = time.monotonic() + timeout
    state = looop.state()
    while not state["asks"]:
        assert time.monotonic() < deadline, f"no ask after {timeout}s: {state}\n{screens(looop)}"
        waited = looop.run("_", "wait", "--json", "--timeout", "30", code=None, timeout=60)
        state = orjson.loads(waited.stdout) if waited.returncode == 0 else looop.state()
    return dict(state["asks"][0])


@pytest.mark.real_agent
@pytest.mark.timeout(120)
@pytest.mark.parametrize("agent", ["pi", "claude", "claude-newest"])
def test_a_real_agent_worker_asks_gets_the_answer_reports_its_cost_writes_a_report_and_ends_itself(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    script = model_server.script("w1", Bash(ASK), Bash(write_report("w1-result.md")), Bash(COST), Bash(KILL))
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Ship the release.")

    ask = wait_ask(looop)
    assert (ask["id"], ask["worker"], ask["prompt"], ask["options"]) == (
        "w1-1",
        "w1",
        "Deploy to staging?",
        ["yes", "no"],
    )
    looop.run("_", "answer", ask["id"], "yes")

    assert report(looop, "w1-result.md") == "answer=yes\n"
    final = ended(looop, "w1")
    assert (final["state"], final["killed_by"], final["end_reason"]) == ("killed", "w1", "ended itself")
    assert final["cost"] == {"usd": 0.25} and final["pending_ask"] is None
    results = script.results
    assert len(results) >= 3, results
    print(f"\n{agent}: {time.monotonic() - began:.1f}s; tool results: {results}")
    # TODO(lead, issue 11 item 4): `_ ask` also prints "looop: ask w1-1 is waiting for an answer"
    # on stderr and both agents merge stderr into the tool result; once it prints only the
    # answer, replace this xfail with `assert results[0] == "yes\n"` (or the agent's rendering).
    if results[0].strip() != "yes":
        pytest.xfail(f"the {agent} tool result of `_ ask` is not only the answer: {results[0]!r}")


@pytest.mark.real_agent
@pytest.mark.timeout(120)
@pytest.mark.parametrize("agent", ["pi", "claude", "claude-newest"])
def test_two_real_agent_workers_of_one_fleet_each_follow_their_own_script_and_get_their_own_answer(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    scripts = {
        name: model_server.script(
            name,
            Bash(f'"$LOOOP_BIN" _ ask "$LOOOP_SESSION_ID" --prompt "Which color for {name}?"'),
            Bash(write_report(f"{name}-color.md")),
            Bash(KILL),
        )
        for name in ("red-team", "blue-team")
    }
    for name in scripts:
        looop.run("_", "worker", "start", name, "--cwd", str(work), f"Pick a color, {name}.")

    answered: set[str] = set()
    while answered != set(scripts):
        ask = wait_ask(looop)
        assert ask["prompt"] == f"Which color for {ask['worker']}?"
        looop.run("_", "answer", ask["id"], f"{ask['worker'].split('-')[0]}ish")
        answered.add(ask["worker"])

    for name, script in scripts.items():
        assert report(looop, f"{name}-color.md") == f"answer={name.split('-')[0]}ish\n"
        assert ended(looop, name)["end_reason"] == "ended itself"
        assert len(script.results) >= 2 and script.results[0].strip().endswith(f"{name.split('-')[0]}ish")
    print(f"\n{agent}: {time.monotonic() - began:.1f}s for two workers")


@pytest.mark.real_agent
@pytest.mark.timeout(120)
@pytest.mark.parametrize("agent", ["claude", "claude-newest"])
def test_a_claude_worker_allowed_only_looops_verbs_reaches_its_ask_without_a_dialog(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    """The shape a narrow Claude Code profile needs: an allow rule for the absolute looop path and
    verbs spelled with it and the literal session id (with `"$LOOOP_BIN"` or `answer=$(...)` the
    same rule does not match: Claude Code asks "Contains simple_expansion" / "... cannot be
    statically analyzed")."""
    began = time.monotonic()
    interactive = [
        "claude",
        f"--allowedTools=Bash({LOOOP} _:*)",
        "--append-system-prompt",
        "{contract}",
        "{task}",
    ]
    work = real_fleet(looop, up, agent_cli, model_server, agent, interactive)
    script = model_server.script(
        "w1",
        Bash(f'{LOOOP} _ ask w1 --prompt "Deploy to staging?" --options yes,no'),
        Bash(f'{LOOOP} _ cost w1 0.5 --unit usd --note "scripted tokens"'),
        Bash(f"{LOOOP} _ kill w1"),
    )
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Ship the release.")

    ask = wait_ask(looop)
    assert (ask["worker"], ask["prompt"], ask["options"]) == ("w1", "Deploy to staging?", ["yes", "no"])
    looop.run("_", "answer", ask["id"], "no")
    script.wait_results(2)
    final = ended(looop, "w1")
    assert (final["end_reason"], final["cost"]) == ("ended itself", {"usd": 0.5})
    assert script.results[0].splitlines()[-1] == "no" and script.results[1] == "w1: total 0.5 usd"
    print(f"\nclaude, narrow rule: {time.monotonic() - began:.1f}s")
