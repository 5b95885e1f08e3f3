"""The built-in profiles, exactly as documented (`"interactive": "claude"` or `"pi"` and nothing
else), with the real CLIs against the scripted model: the contract's literal verbs, and Claude
Code's permission requests and folder-trust dialog as asks. (Resume and ending: test_real_agents.)"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.agent_clis import CLAUDES, program
from tests.conftest import LOOOP, Looop, Up, ended, report, screen, wait_for, worker
from tests.model_server import Bash, ModelServer
from tests.test_real_agents import real_fleet, wait_ask

pytestmark = [pytest.mark.real_agent, pytest.mark.timeout(150)]

# the verbs as the contract spells them: looop's absolute path and the literal worker id
ASK = f'{LOOOP} _ ask w1 --prompt "Deploy to staging?" --options yes,no'
COST = f'{LOOOP} _ cost w1 0.25 --unit usd --note "scripted tokens"'
KILL = f"{LOOOP} _ kill w1"


def write_report(name: str) -> Callable[[str], str]:
    """A step that writes the first line of the tool result it saw into reports/NAME."""

    def command(result: str) -> str:
        seen = (result.strip().splitlines() or [""])[0]
        return f"printf 'answer=%s\\n' {shlex.quote(seen)} > \"$LOOOP_DATA_DIR/reports/{name}\""

    return command


def answer_next(looop: Looop, answer: str) -> dict[str, Any]:
    ask = wait_ask(looop)
    looop.run("_", "answer", ask["id"], answer)
    return ask


@pytest.mark.parametrize("agent", ["pi", *CLAUDES])
def test_a_profile_as_documented_asks_gets_exactly_the_answer_reports_and_ends_itself(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    after = work / "after-kill"  # a step past `_ kill`: the agent must not get to run it
    steps = (Bash(ASK), Bash(write_report("w1-result.md")), Bash(COST), Bash(KILL), Bash(f"touch {after}"))
    script = model_server.script("w1", *steps)
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Ship the release.")

    ask = answer_next(looop, "yes")
    assert (ask["worker"], ask["prompt"], ask["options"]) == ("w1", "Deploy to staging?", ["yes", "no"])
    assert script.wait_results(1)[0].strip() == "yes"  # the answer and nothing else
    if program(agent) == "claude":  # writing outside its folder is asked about, through the hook
        asked = answer_next(looop, "yes")
        assert asked["prompt"].startswith("Claude Code asks permission to use Bash: printf")
        assert asked["options"] == ["yes", "always", "no"] and "reports/w1-result.md" in asked["reference"]
    assert report(looop, "w1-result.md") == "answer=yes\n"
    final = ended(looop, "w1")
    assert (final["state"], final["end_reason"], final["cost"]) == ("killed", "ended itself", {"usd": 0.25})
    assert final["profile"] == program(agent) and not looop.state()["asks"]
    assert "permission dialog: asked" not in looop.journal()  # the hook asked; the screen did not
    assert len(script.results) == 3 and not after.exists()  # nothing after `_ kill` returned
    print(f"\n{agent} profile: {time.monotonic() - began:.1f}s")


@pytest.mark.parametrize("agent", CLAUDES)
def test_a_claude_permission_request_answered_no_reaches_the_model_as_a_denial_and_it_carries_on(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    target = work.parent / "outside" / "denied"
    # through looop's own `_ run`: the settings allow the worker's verbs for itself, nothing else
    command = f"{LOOOP} _ run 'mkdir -p {target.parent} && touch {target}'"
    script = model_server.script("w1", Bash(command), Bash(KILL))
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Make the file.")

    ask = wait_ask(looop)
    assert ask["reference"] == command
    assert worker(looop, "w1")["state"] == "asking"
    looop.run("_", "answer", ask["id"], "no")
    assert "The root agent said no" in script.wait_results(1)[0]
    assert ended(looop, "w1")["end_reason"] == "ended itself"  # it went on to its next step
    assert not target.exists()
    print(f"\n{agent} denial: {time.monotonic() - began:.1f}s")


@pytest.mark.parametrize("agent", CLAUDES)
def test_claudes_folder_trust_dialog_becomes_an_ask_and_yes_lets_it_start(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent, trusted=False)
    script = model_server.script("w1", Bash(ASK), Bash(KILL))
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Ship the release.")

    trust = wait_ask(looop)
    assert "trust the files in this folder" in trust["prompt"] and trust["reference"] == str(work)
    assert trust["options"] == ["yes", "no"]
    looop.run("_", "answer", trust["id"], "yes")
    ask = answer_next(looop, "no")  # now it runs its task
    assert ask["prompt"] == "Deploy to staging?" and script.wait_results(1)[0].strip() == "no"
    ended(looop, "w1")
    assert "trust dialog: typed 'yes'" in looop.journal()
    print(f"\n{agent} trust: {time.monotonic() - began:.1f}s")


@pytest.mark.parametrize("agent", CLAUDES)
def test_a_claude_permission_dialog_on_the_screen_becomes_an_ask_and_yes_and_no_are_typed(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    """Without the profile's settings file (a plain argv) no hook answers: the dialog on the
    screen is the ask, and its keys must mean the same on every supported release."""
    began = time.monotonic()
    interactive = ["claude", "--permission-mode=default", f"--allowedTools=Bash({LOOOP} _:*)"]
    interactive += ["--append-system-prompt", "{contract}", "{task}"]
    work = real_fleet(looop, up, agent_cli, model_server, agent, interactive=interactive)
    outside = work.parent / "outside"
    allowed, denied = f"mkdir -p {outside} && touch {outside}/allowed && echo made", f"touch {outside}/denied"
    script = model_server.script("w1", Bash(allowed), Bash(denied), Bash(KILL))
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Make the files.")

    for command, answer in ((allowed, "yes"), (denied, "no")):
        ask = answer_next(looop, answer)
        assert ask["reference"].startswith(command[:40]) and ask["options"] == ["yes", "always", "no"]
        typed = f"permission dialog: typed {answer!r} ({ask['id']})"
        wait_for(lambda t=typed: t in looop.journal(), 30, f"{answer} typed")  # type: ignore[misc]
    assert (outside / "allowed").exists() and script.wait_results(1)[0].strip() == "made"
    wait_for(lambda: "What should Claude do instead?" in screen(looop, "w1"), 30, "the command declined")
    assert not (outside / "denied").exists() and len(script.results) == 1
    looop.run("_", "worker", "kill", "w1")
    print(f"\n{agent} screen dialog: {time.monotonic() - began:.1f}s")


def test_a_claude_worker_ended_before_its_conversation_began_is_not_resumed_but_told_to_start(
    looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    work = real_fleet(looop, up, agent_cli, model_server, "claude", trusted=False)
    model_server.script("w1", Bash(ASK))
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Ship the release.")
    assert "trust" in wait_ask(looop)["prompt"]  # it stops at the trust dialog: no conversation yet
    looop.run("_", "worker", "kill", "w1")
    refused = looop.run("_", "worker", "resume", "w1", code=5).stderr
    assert "has no conversation to resume" in refused and "_ worker start" in refused
