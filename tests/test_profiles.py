"""Agent profiles with the fake agent standing in for `claude` and `pi` on PATH: the argv, the
settings file and the contract a profile gives, resume, and dialogs that become asks. (The real
CLIs run the same profiles in test_real_agents.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from looop.workers.dialogs import is_own_verb
from tests.conftest import Looop, Up, ended, posing_as, screen, script, wait_for, worker


def logs(looop: Looop, worker_id: str) -> str:
    return looop.run("logs", worker_id).stdout


def looop_path(looop: Looop) -> str:
    return str(Path(sys.executable).parent / "looop")


def test_the_claude_profile_runs_claude_with_its_settings_session_id_and_a_literal_contract(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive="claude", kill_grace="1s")
    up.start(PATH=posing_as(tmp_path, "claude"))
    looop.run("_", "worker", "start", "w1", script("say started", "exit"))
    final = ended(looop, "w1")
    shown = logs(looop, "w1")
    binary = looop_path(looop)
    assert f"session-id {final['agent_session']}" in shown and final["profile"] == "claude"
    for verb in ("ask", "claim", "unclaim", "cost", "kill"):  # its own verbs, for itself: no other
        assert f"settings allow: Bash({binary} _ {verb} w1:*)" in shown
    assert shown.count("settings allow:") == 5
    assert f"settings hook PermissionRequest: {binary} _ dialog w1" in shown
    assert "contract: yes; system prompts: 1" in shown
    # the contract spells the absolute looop path and the literal session id: no dialog for them
    contract = (looop.data / "sessions/w1/contract.md").read_text()
    assert f"{binary} _ ask w1 --prompt" in contract and f"{binary} _ kill w1" in contract
    assert '"$LOOOP_BIN" _ ask' not in contract
    # resume runs the profile's resume command on the same agent session
    looop.run("_", "worker", "resume", "w1", script("exit"))
    again = ended(looop, "w1")
    assert (
        f"resume {final['agent_session']}" in logs(looop, "w1")
        and again["agent_session"] == final["agent_session"]
    )


def test_the_pi_profile_keeps_its_session_in_a_file_under_the_workers_session_dir(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive="pi", kill_grace="1s")
    up.start(PATH=posing_as(tmp_path, "pi"))
    looop.run("_", "worker", "start", "w1", script("exit"))
    final = ended(looop, "w1")
    session_file = looop.data / "sessions" / "w1" / f"pi-{final['agent_session']}.jsonl"
    assert f"session {session_file}" in logs(looop, "w1")
    looop.run("_", "worker", "resume", "w1", script("exit"))
    ended(looop, "w1")
    assert logs(looop, "w1").count(f"session {session_file}") == 2  # start and resume, one file


def test_a_config_overrides_part_of_a_profile_and_a_plain_argv_keeps_the_agents_traits(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    override = {"pi": {"command": ["pi", "--model", "small", "{task}"]}}
    up.configure(interactive="pi", kill_grace="1s", profiles=override)
    up.start(PATH=posing_as(tmp_path, "pi"))
    looop.run("_", "worker", "start", "w1", script("exit"))
    assert ended(looop, "w1")["command"][:3] == ["pi", "--model", "small"]
    assert "no `resume` command" not in looop.run("_", "worker", "resume", "w1", script("exit")).stderr


@pytest.mark.parametrize(
    ("profiles", "problem"),
    [
        (
            {"claude": {"screen_skip": ["("]}},
            "'profiles': claude.screen_skip: '(' is not a regular expression",
        ),
        ({"claude": {"argv": ["x"]}}, "claude: unknown part 'argv'"),
        ({"x y": {}}, "'x y' is not a profile name"),
        ({"mine": {"dialogs": [{"name": "d", "pattern": "p", "question": "q"}]}}, "mine.dialogs: expected"),
        ({"claude": {"submit": ""}}, "claude.submit: expected the keys to type"),
        ({"pi": {"bracketed_paste": "yes"}}, "pi.bracketed_paste: expected true or false"),
    ],
)
def test_a_bad_profile_in_the_config_is_one_line_naming_it(
    looop: Looop, profiles: dict[str, object], problem: str
) -> None:
    looop.run("_", "state")
    (looop.data / "config.json").write_bytes(orjson.dumps({"interactive": "claude", "profiles": profiles}))
    done = looop.run("_", "notify", "hello", code=3)
    assert problem in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_known_dialog_on_the_screen_becomes_an_ask_and_its_answer_is_typed(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    # a plain argv of claude keeps its dialogs but has no settings file, so no hook answers them
    up.configure(interactive=["claude", "{task}"], kill_grace="1s", idle_after="1s")
    up.start(PATH=posing_as(tmp_path, "claude"))
    looop.run("_", "worker", "start", "w1", script("dialog touch /tmp/x", "dialog rm -r build", "exit"))
    for command, answer in (("touch /tmp/x", "always"), ("rm -r build", "no")):
        ask = wait_for(lambda: looop.state()["asks"], what=f"the dialog about {command} as an ask")[0]
        assert ask["worker"] == "w1" and ask["options"] == ["yes", "always", "no"]
        assert ask["reference"] == command and "permission" in ask["prompt"]
        assert worker(looop, "w1")["state"] == "asking"
        looop.run("_", "answer", ask["id"], answer)
        wait_for(lambda a=answer: f"dialog answer: {a}" in screen(looop, "w1"), what=f"{answer} typed")  # type: ignore[misc]
    ended(looop, "w1")
    assert "permission dialog: typed 'no'" in looop.journal()


def test_a_dialog_on_the_screen_while_the_hook_asks_about_it_is_asked_about_once(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    """Claude Code draws its permission dialog while its PermissionRequest hook runs: the hook
    asks the root agent; the screen must not open a second ask, during the wait or after it."""
    up.configure(interactive="claude", kill_grace="1s", idle_after="3s")
    up.start(PATH=posing_as(tmp_path, "claude"))
    looop.run("_", "worker", "start", "w1", script("hooked-dialog touch /tmp/x", "say done"))
    ask = wait_for(lambda: looop.state()["asks"], what="the hook's ask")[0]
    assert ask["reference"] == "touch /tmp/x"
    wait_for(lambda: worker(looop, "w1")["state"] == "asking" and worker(looop, "w1")["pending_ask"], 30)
    wait_for(lambda: "Do you want to proceed?" in screen(looop, "w1"), what="the dialog drawn meanwhile")
    looop.run("_", "answer", ask["id"], "yes")
    wait_for(lambda: "hook decision: allow" in screen(looop, "w1"), what="the hook's decision")
    wait_for(lambda: worker(looop, "w1")["state"] == "idle", 30, "quiet after it")
    assert len(list((looop.data / "asks").glob("*.json"))) == 1
    assert "permission dialog: asked" not in looop.journal()


def test_a_dialog_looop_does_not_know_turns_the_worker_blocked_with_its_text(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive="claude", kill_grace="1s", idle_after="1s")
    up.start(PATH=posing_as(tmp_path, "claude"))
    looop.run("_", "worker", "start", "w1", script("prompt Pick a theme   Enter to confirm"))
    # every change wakes `_ wait` (exit 0, not a timeout), and one of them shows it blocked
    for _ in range(10):
        woken = orjson.loads(looop.run("_", "wait", "--json", "--timeout", "30").stdout)
        (state,) = [w for w in woken["workers"] if w["id"] == "w1"]
        if state["state"] == "blocked":
            break
    assert state["state"] == "blocked", state
    assert any("Pick a theme" in line for line in worker(looop, "w1")["blocked_by"])


def permission_request(command: str) -> bytes:
    return orjson.dumps(
        {
            "hook_event_name": "PermissionRequest",
            "tool_name": "Bash",
            "tool_input": {"command": command, "description": "x"},
            "permission_suggestions": [{"type": "addRules", "rules": [{"toolName": "Bash"}]}],
        }
    )


def test_the_permission_hook_asks_the_root_agent_and_answers_claude_code(looop: Looop) -> None:
    looop.run("_", "state")
    env = {**looop.env, "LOOOP_SESSION_ID": "w1", "LOOOP_RUN_ID": "r1"}
    hook = subprocess.Popen(
        [looop_path(looop), "_", "dialog", "w1"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert hook.stdin is not None
    hook.stdin.write(permission_request("rm -rf build"))
    hook.stdin.close()
    ask = wait_for(lambda: looop.state()["asks"], what="the permission request as an ask")[0]
    assert ask["reference"] == "rm -rf build" and ask["options"] == ["yes", "always", "no"]
    looop.run("_", "answer", ask["id"], "always")
    assert hook.stdout is not None and hook.stderr is not None
    out, err = hook.stdout.read(), hook.stderr.read()
    hook.wait(30)
    decision = orjson.loads(out)["hookSpecificOutput"]
    assert hook.returncode == 0 and err == b"" and decision["hookEventName"] == "PermissionRequest"
    assert decision["decision"]["behavior"] == "allow" and decision["decision"]["updatedPermissions"]
    # the worker's own verbs, spelled as the contract does, pass without an ask
    own = f'{looop_path(looop)} _ ask w1 --prompt "Which (a) or (b)?" --options a,b'
    done = subprocess.run(
        [looop_path(looop), "_", "dialog", "w1"], env=env, input=permission_request(own), capture_output=True
    )
    assert orjson.loads(done.stdout)["hookSpecificOutput"]["decision"] == {"behavior": "allow"}
    assert len(looop.state()["asks"]) == 0
    # the root agent's verbs, or another worker's, are asked about like any command
    for other in (f"{looop_path(looop)} _ run 'touch /x; id'", f"{looop_path(looop)} _ ask w2 --prompt hi"):
        assert not is_own_verb(other, looop_path(looop), "w1")
    # anything else with shell syntax is asked about
    sneaky = f'{looop_path(looop)} _ ask w1 --prompt "$(rm -rf ~)"'
    hook = subprocess.Popen(
        [looop_path(looop), "_", "dialog", "w1"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert hook.stdin is not None
    hook.stdin.write(permission_request(sneaky))
    hook.stdin.close()
    ask = wait_for(lambda: looop.state()["asks"], what="the sneaky command as an ask")[0]
    looop.run("_", "answer", ask["id"], "no")
    assert hook.stdout is not None
    out = hook.stdout.read()
    hook.wait(30)
    assert orjson.loads(out)["hookSpecificOutput"]["decision"]["behavior"] == "deny"


def test_the_claude_command_as_documented_works_as_a_plain_argv_with_its_settings_file(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    from looop.workers.profiles import CLAUDE

    up.configure(interactive=list(CLAUDE.command), kill_grace="1s")
    up.start(PATH=posing_as(tmp_path, "claude"))
    looop.run("_", "worker", "start", "w1", script("exit"))
    assert ended(looop, "w1")["exit_code"] == 0
    assert f"settings hook PermissionRequest: {looop_path(looop)} _ dialog w1" in logs(looop, "w1")


def test_a_dialogs_ask_is_withdrawn_when_the_dialog_goes_away_so_nothing_is_typed_blind(
    looop: Looop, up: Up, tmp_path: Path
) -> None:
    up.configure(interactive=["claude", "{task}"], kill_grace="1s", idle_after="1s")
    up.start(PATH=posing_as(tmp_path, "claude"))
    looop.run("_", "worker", "start", "w1", script("passing-dialog touch /tmp/y 3", "say after"))
    ask = wait_for(lambda: looop.state()["asks"], what="the dialog as an ask")[0]
    wait_for(lambda: "dialog answer: ''" in screen(looop, "w1"), 30, "the dialog gone by itself")
    wait_for(lambda: not looop.state()["asks"], 30, "the ask withdrawn")
    assert "no longer on the worker's screen" in looop.journal()
    assert "already cancelled" in looop.run("_", "answer", ask["id"], "yes", code=5).stderr


def test_status_shows_a_workers_control_characters_as_text_not_as_terminal_commands(looop: Looop) -> None:
    looop.run("_", "state")
    env = {**looop.env, "LOOOP_SESSION_ID": "w1", "LOOOP_RUN_ID": "r1"}
    hook = subprocess.Popen(
        [looop_path(looop), "_", "dialog", "w1"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert hook.stdin is not None
    hook.stdin.write(permission_request("x\x1b[2Jy\x07"))
    hook.stdin.close()
    wait_for(lambda: looop.state()["asks"], what="the ask")
    shown = looop.run("status", env={"COLUMNS": "200"}).stdout
    assert "x^[[2Jy^G" in shown and "\x1b" not in shown and "\x07" not in shown
    looop.run("_", "answer", looop.state()["asks"][0]["id"], "no")
    hook.wait(30)
