"""The real agent CLIs (Claude Code, pi) as looop workers, against a scripted model on 127.0.0.1.

Each test's `up` (and so its workers, which inherit its environment) gets a HOME of its own,
seeded so the agent shows no first-run dialog and talks to the test's model server, and the
pinned CLI first on PATH (tests/agent_clis.py installs it from npm once, into a cache dir).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.agent_clis import CLAUDES, agent_environment, program, without_agent_settings
from tests.conftest import (
    LOOOP,
    Looop,
    Up,
    ended,
    pids_with,
    processes_with,
    screen,
    unique_marker,
    wait_for,
    worker,
)
from tests.model_server import Bash, ModelServer, Say


def verb(worker: str, *words: str) -> str:
    """A looop verb as the contract spells it: the absolute path and the literal worker id."""
    return " ".join([LOOOP, "_", words[0], worker, *(shlex.quote(w) for w in words[1:])])


def ask(worker: str, prompt: str) -> str:
    return verb(worker, "ask", "--prompt", prompt)


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
    """Start `up` with workers that run the real `agent` against `server` (its shared url), by its
    built-in profile unless `interactive` says otherwise; return the directory the workers should
    run in (trusted by Claude Code unless `trusted` is false)."""
    agent_cli(agent)
    work = looop.data.parent / "work"
    work.mkdir(exist_ok=True)
    home = Path(looop.env["HOME"])
    looop.env = without_agent_settings(looop.env)
    looop.env.update(agent_environment(agent, home, server.url(), [work] if trusted else []))
    up.configure(interactive=interactive or program(agent), idle_after="2s", kill_grace="2s", **config)
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
@pytest.mark.parametrize("agent", ["claude"])  # the routing is the server's; one agent shows it
def test_two_real_agent_workers_of_one_fleet_each_follow_their_own_script_and_get_their_own_answer(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    scripts = {
        name: model_server.script(name, Bash(ask(name, f"Which color for {name}?")), Bash(verb(name, "kill")))
        for name in ("red-team", "blue-team")
    }
    for name in scripts:
        looop.run("_", "worker", "start", name, "--cwd", str(work), f"Pick a color, {name}.")

    answered: set[str] = set()
    while answered != set(scripts):
        asked = wait_ask(looop)
        assert asked["prompt"] == f"Which color for {asked['worker']}?"
        looop.run("_", "answer", asked["id"], f"{asked['worker'].split('-')[0]}ish")
        answered.add(asked["worker"])

    for name, script in scripts.items():
        assert ended(looop, name)["end_reason"] == "ended itself"
        assert script.results[0].strip() == f"{name.split('-')[0]}ish"
    print(f"\n{agent}: {time.monotonic() - began:.1f}s for two workers")


@pytest.mark.real_agent
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("agent", "how"),
    [("claude", "worker kill"), ("claude-newest", "worker kill"), ("claude", "down"), ("pi", "worker kill")],
)  # Claude Code runs every tool command with setsid; pi ends its own on SIGTERM
def test_a_tool_command_a_real_agent_detached_is_gone_once_its_worker_is_ended(
    agent: str, how: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    marker = unique_marker("detached")
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    model_server.script(
        "w1",
        Bash(f"setsid bash -c 'exec -a {marker} sleep 1234' </dev/null >/dev/null 2>&1 & echo started"),
        Bash(ask("w1", "Deploy to staging?")),  # holds the worker in its ask while the test ends it
    )
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Start a helper, then ask.")
    while (asked := wait_ask(looop))["prompt"] != "Deploy to staging?":
        looop.run("_", "answer", asked["id"], "yes")  # Claude Code asks permission for the command
    assert pids_with(marker), "the detached command is running"
    try:
        if how == "down":
            looop.run("down", timeout=90)
        else:
            looop.run("_", "worker", "kill", "w1", "--reason", "test")
        # the verb returns once everything of the worker is gone: nothing to wait for
        left = processes_with(marker)
        assert not ended(looop, "w1")["alive"]
        print(f"\n{agent}, {how}: {time.monotonic() - began:.1f}s; left running: {left}")
        assert not left, f"{agent}'s detached tool command outlived `{how}`: {left}"
    finally:
        for pid in pids_with(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.real_agent
@pytest.mark.timeout(120)
@pytest.mark.parametrize("agent", ["pi", "claude"])
def test_a_resumed_real_agent_worker_continues_its_conversation_where_it_was_killed(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    script = model_server.script(
        "w1",
        Bash("echo one"),
        Bash(ask("w1", "First question?")),
        # the script's step is the number of assistant turns in the conversation: only an agent
        # that got its old conversation back asks the second question
        Bash(ask("w1", "Second question?")),
        Bash(verb("w1", "kill")),
    )
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Ask twice.")
    assert wait_ask(looop)["prompt"] == "First question?"
    looop.run("_", "worker", "kill", "w1", "--reason", "interrupted by the test")
    assert ended(looop, "w1")["state"] == "killed"

    looop.run("_", "worker", "resume", "w1")
    second = wait_ask(looop)
    assert second["prompt"] == "Second question?", f"the resumed agent started over: {second}"
    looop.run("_", "answer", second["id"], "go on")
    assert ended(looop, "w1")["end_reason"] == "ended itself"
    resumed = script.requests[-1]["messages"]
    assert "You were interrupted" in orjson.dumps(resumed).decode() and script.results[0].strip() == "one"
    print(f"\n{agent}, resume: {time.monotonic() - began:.1f}s")


LONG_MESSAGE = "\n".join(" ".join(f"line{j}-word{i}" for i in range(25)) for j in range(8))


def unwrapped(text: str) -> str:
    """A user message as typed: Claude Code 2.1.332 sends a long or many-line paste (a human's
    too) inside <pasted_content id="..."> tags."""
    match = re.fullmatch(r'\s*<pasted_content id="(\w+)">\n(.*)\n</pasted_content id="\1">\s*', text, re.S)
    return match.group(2) if match else text


@pytest.mark.real_agent
@pytest.mark.timeout(60)
@pytest.mark.parametrize("agent", ["pi", *CLAUDES])
@pytest.mark.parametrize(
    "message",
    ["Good. Now end your session:\nrun the kill verb of the contract.", LONG_MESSAGE],
    ids=["two-lines", "long"],
)
def test_a_real_agent_idle_at_its_prompt_takes_what_worker_tell_types_as_its_next_user_turn(
    agent: str,
    message: str,
    looop: Looop,
    up: Up,
    agent_cli: Callable[[str], Path],
    model_server: ModelServer,
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    script = model_server.script("w1", Say("Done: the tests pass."), Bash(verb("w1", "kill")))
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Run the tests.")
    wait_for(lambda: worker(looop, "w1").get("state") == "idle", 40, f"w1 idle\n{screens(looop)}")
    assert len(script.requests) == 1
    # typed as one paste, newlines and all, then the submit key (Claude Code takes a long
    # burst for a paste, and a "\r" in it for a newline: it would sit in its input box)
    looop.run("_", "worker", "tell", "w1", input=message)
    assert ended(looop, "w1")["end_reason"] == "ended itself"  # it took the message as a new turn
    told = [i for i, _ in enumerate(script.requests) if message in "\n".join(script.user_messages(i))]
    assert told, [script.user_messages(i) for i in range(len(script.requests))]
    # the task, then the message, whole and alone in its turn: typed and submitted once
    assert [unwrapped(text) for text in script.user_messages(told[0])[1:]] == [message]
    print(f"\n{agent}, tell: {time.monotonic() - began:.1f}s")


@pytest.mark.real_agent
@pytest.mark.timeout(60)
@pytest.mark.parametrize("agent", ["pi", *CLAUDES])
def test_a_real_agent_busy_when_worker_tell_types_queues_the_message_and_its_next_request_carries_it(
    agent: str, looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, agent)
    script = model_server.script("w1", Bash(ask("w1", "Which branch?")), Bash(verb("w1", "kill")))
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Fix the bug.")
    asked = wait_ask(looop)  # its tool call blocks in `_ ask`: the agent is mid-turn
    message = "Also update the changelog."
    looop.run("_", "worker", "tell", "w1", message)
    wait_for(lambda: message in screen(looop, "w1"), 30, f"the message queued\n{screens(looop)}")
    looop.run("_", "answer", asked["id"], "main")
    assert ended(looop, "w1")["end_reason"] == "ended itself"
    assert script.results[0].strip() == "main"  # the answer stayed the answer
    after = len(script.requests) - 1  # the request that carried the answer, and the message
    assert any(message in text for text in script.said(after)), script.said(after)
    print(f"\n{agent}, tell while busy: {time.monotonic() - began:.1f}s")


@pytest.mark.real_agent
@pytest.mark.timeout(60)
def test_pi_given_a_worker_tell_right_after_it_started_takes_the_message_once_it_has_its_terminal(
    looop: Looop, up: Up, agent_cli: Callable[[str], Path], model_server: ModelServer
) -> None:
    """Typed at once, pi's terminal is still cooked: the kernel would echo the text and turn the
    submit key into a newline. (Claude Code, told in its first seconds, still loses the message
    once typed in raw mode: 2.1.197 keeps it in its input box unsent, 2.1.332 drops it. It
    probes the terminal then (XTVERSION, DA1), but answering DA1 did not help: not known yet.)"""
    began = time.monotonic()
    work = real_fleet(looop, up, agent_cli, model_server, "pi")
    script = model_server.script("w1", Say("Looking."), Say("Noted."))
    looop.run("_", "worker", "start", "w1", "--cwd", str(work), "Look around.")
    message = "Also read the README first."
    assert looop.run("_", "worker", "tell", "w1", message).stdout == f"told w1: {message}\n"

    def arrived() -> bool:
        return any(message in text for i in range(len(script.requests)) for text in script.said(i))

    wait_for(arrived, 40, "the message as a user turn")
    print(f"\npi, tell at start: {time.monotonic() - began:.1f}s")
