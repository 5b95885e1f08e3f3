"""Worker sessions end to end: a real `up`, the fake agent in a real pty, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import (
    AGENT,
    FAKE_AGENT,
    Looop,
    Up,
    alive,
    ended,
    processes_with,
    report,
    run_processes,
    screen,
    script,
    unique_marker,
    wait_for,
    worker,
)


@pytest.fixture
def fleet(looop: Looop, up: Up) -> Iterator[Up]:
    up.configure(interactive=AGENT, idle_after="1s", kill_grace="1s", max_workers=40)
    up.start()
    yield up


def test_a_worker_asks_gets_the_root_agents_answer_reports_and_ends_itself(looop: Looop, fleet: Up) -> None:
    started = looop.run(
        "_",
        "worker",
        "start",
        "w1",
        script(
            "say hello {env:TERM} {size}",
            "ask Deploy to staging? | yes,no",
            "report w1-result.md answer={answer} cwd={cwd} bin={env:LOOOP_BIN}",
            "cost 0.25 usd",
            "kill",
        ),
    )
    assert started.stdout.startswith("worker w1 started (pid ")
    # the root agent's loop: wait, see the ask, answer it
    state = orjson.loads(looop.run("_", "wait", "--json", timeout=60).stdout)
    while not state["asks"]:
        state = orjson.loads(looop.run("_", "wait", "--json", timeout=60).stdout)
    [ask] = state["asks"]
    assert (ask["id"], ask["worker"], ask["options"]) == ("w1-1", "w1", ["yes", "no"])
    assert [w["state"] for w in state["workers"] if w["id"] == "w1"] == ["asking"]
    looop.run("_", "answer", ask["id"], "yes")

    text = report(looop, "w1-result.md")
    assert text.startswith(f"answer=yes cwd={os.getcwd()} bin=/")
    final = ended(looop, "w1")
    assert (final["state"], final["killed_by"], final["end_reason"]) == ("killed", "w1", "ended itself")
    assert final["cost"] == {"usd": 0.25} and final["pending_ask"] is None
    prompt = (looop.data / "prompts/w1.md").read_text()
    assert prompt.startswith("# looop worker contract") and "FAKE: kill" in prompt
    shown = screen(looop, "w1")
    assert "hello xterm-256color 50x200" in shown and "contract: yes" in shown
    journal = looop.journal()
    assert (
        "looop · worker start · w1 · pid" in journal
        and "w1 · worker kill · w1 · by w1: ended itself" in journal
    )
    assert "looop · worker end · w1 · killed: ended itself" in journal


def test_the_root_agent_kills_a_worker_its_ask_is_cancelled_and_its_claims_released(
    looop: Looop, fleet: Up
) -> None:
    looop.run("_", "worker", "start", "w1", script("claim db", "ask Which table?"))
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="the ask")
    assert [c["resource"] for c in looop.state()["claims"]] == ["db"]
    assert worker(looop, "w1")["claims"] == ["db"]
    done = looop.run("_", "worker", "kill", "w1", "--reason", "wrong approach")
    assert done.stdout == "worker w1 killed (SIGTERM): ended 2 processes\n"  # the agent and its `_ ask`
    final = worker(looop, "w1")
    assert (final["state"], final["killed_by"], final["end_reason"]) == ("killed", "root", "wrong approach")
    state = looop.state()
    assert state["asks"] == [] and state["claims"] == []
    answer = orjson.loads((looop.data / "answers/w1-1.json").read_bytes())
    assert answer["cancelled"] and answer["reason"] == "worker w1 killed"
    assert looop.run("_", "worker", "kill", "w1").stdout == "worker w1 had already ended (killed)\n"
    assert not alive(final["pid"])


def test_a_crashing_worker_is_recorded_with_its_exit_status_and_not_restarted(
    looop: Looop, fleet: Up
) -> None:
    looop.run("_", "worker", "start", "w1", script("claim db", "crash 3"))
    final = ended(looop, "w1")
    assert (final["state"], final["exit_code"], final["end_reason"]) == ("exited", 3, "exit 3")
    assert looop.state()["claims"] == []
    assert "looop · worker end · w1 · exited: exit 3 (exit 3); released db" in looop.journal()
    fleet.wait_beats(1)
    assert worker(looop, "w1")["pid"] == final["pid"]  # temporary: never started again by itself


def test_a_worker_printing_20_mb_never_stalls_and_its_transcript_is_capped(looop: Looop, fleet: Up) -> None:
    looop.run("_", "worker", "start", "w1", script("print 20000000", "report w1-after.md survived", "exit"))
    assert report(looop, "w1-after.md") == "survived\n"
    final = ended(looop, "w1")
    assert final["state"] == "exited" and final["exit_code"] == 0
    session = looop.data / "sessions/w1"
    sizes = [p.stat().st_size for p in session.glob("transcript.log*")]
    assert len(sizes) == 2 and max(sizes) <= 4 * 1024 * 1024
    assert (session / "transcript.log").read_bytes().count(b"flood done") == 1
    assert "flood done" in screen(looop, "w1")


def test_two_workers_contend_for_one_claim(looop: Looop, fleet: Up) -> None:
    looop.run(
        "_", "worker", "start", "first", script("claim deploy-slot", "ask Release it?", "unclaim deploy-slot")
    )
    wait_for(lambda: worker(looop, "first").get("state") == "asking", what="first to hold the claim")
    looop.run(
        "_",
        "worker",
        "start",
        "second",
        script("claim deploy-slot", "claim-until deploy-slot", "report second.md got it", "exit"),
    )
    wait_for(lambda: "claim deploy-slot: exit 6" in screen(looop, "second"), what="a refusal")
    assert "deploy-slot is claimed by first" in screen(looop, "second")
    assert not (looop.data / "reports/second.md").exists()
    looop.run("_", "answer", "first-1", "yes")
    assert report(looop, "second.md") == "got it\n"
    assert "second · claim · deploy-slot · claimed" in looop.journal()


def test_the_screen_file_shows_the_agents_last_screen_and_quiet_means_idle(looop: Looop, fleet: Up) -> None:
    looop.run("_", "worker", "start", "w1", script("say ready for input"))
    wait_for(lambda: worker(looop, "w1").get("state") == "idle", what="the worker to go idle")
    shown = screen(looop, "w1")
    lines = shown.splitlines()
    assert lines[0].startswith("╭─") and "fake agent · session w1" in lines[1]
    assert lines[3] == "? for shortcuts" and "● ready for input" in shown
    assert "\x1b" not in shown
    transcript = (looop.data / "sessions/w1/transcript.log").read_bytes()
    assert b"\x1b[2J" in transcript  # the raw output, escape codes and all


def test_a_quiet_worker_whose_screen_says_busy_stays_running(looop: Looop, fleet: Up, tmp_path: Path) -> None:
    done = tmp_path / "done"
    looop.run("_", "worker", "start", "w1", script(f"busy-until {done}"))
    wait_for(lambda: "esc to interrupt" in screen(looop, "w1"), what="the busy marker")
    # quiet for three times idle_after (1 s), as its record says: only the screen says it works
    wait_for(lambda: time.time() - worker(looop, "w1")["last_output"] > 3.0, what="a quiet spell")
    assert worker(looop, "w1")["state"] == "running"
    done.touch()
    wait_for(lambda: worker(looop, "w1")["state"] == "idle", what="idle once the marker is gone")


def test_thirty_workers_at_once_each_ask_and_down_leaves_no_process(looop: Looop, fleet: Up) -> None:
    ids = [f"w{i:02d}" for i in range(30)]
    starts = [
        looop.popen(
            "_", "worker", "start", w, script(f"ask Go {w}?", "report {env:LOOOP_SESSION_ID}.md {answer}")
        )
        for w in ids
    ]
    for process in starts:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    pids = [worker(looop, w)["pid"] for w in ids]
    asks = wait_for(lambda: len(a := looop.state()["asks"]) == 30 and a, timeout=60, what="30 asks")
    for ask in asks:
        looop.run("_", "answer", ask["id"], f"go-{ask['worker']}")
    for w in ids:
        assert report(looop, f"{w}.md") == f"go-{w}\n"
    assert {w["state"] for w in looop.state()["workers"]} <= {"running", "idle"}
    out = looop.run("down", timeout=120).stdout
    assert "30 workers (w00, w01" in out
    assert not any(alive(pid) for pid in pids)
    assert {w["state"] for w in looop.state()["workers"]} == {"killed"}


def test_down_ends_a_worker_that_ignores_sigterm_and_the_children_it_forked(looop: Looop, fleet: Up) -> None:
    child = unique_marker("grandchild")
    looop.run("_", "worker", "start", "stubborn", script(f"spawn-child {child}", "ignore-term", "say dug in"))
    wait_for(lambda: processes_with(child), what="the grandchild")
    wait_for(lambda: "dug in" in screen(looop, "stubborn"), what="the script")
    pid = worker(looop, "stubborn")["pid"]
    assert "1 worker (stubborn)" in looop.run("down", timeout=120).stdout
    assert not alive(pid)
    assert processes_with(child) == []
    final = worker(looop, "stubborn")
    assert (final["state"], final["signal"], final["killed_by"]) == ("killed", "SIGKILL", "looop")


def test_a_worker_that_exits_leaving_a_child_has_its_group_ended(looop: Looop, fleet: Up) -> None:
    child = unique_marker("grandchild")
    looop.run("_", "worker", "start", "w1", script(f"spawn-child {child}", "exit"))
    final = ended(looop, "w1")
    assert (final["state"], final["exit_code"]) == ("exited", 0)
    wait_for(lambda: processes_with(child) == [], timeout=10, what="the orphan to be ended")


def detached_worker(looop: Looop, worker_id: str, *then: str) -> tuple[str, dict[str, Any]]:
    """Start a worker whose agent first starts a grandchild that leaves its group and session
    and ignores SIGTERM (as a tool command of Claude Code does); return its marker and record."""
    child = unique_marker("detached")
    looop.run("_", "worker", "start", worker_id, script(f"detach {child}", *then))
    wait_for(lambda: processes_with(child), what="the detached grandchild")
    record = worker(looop, worker_id)
    assert run_processes(record["run"])  # it carries the run's mark
    return child, record


def test_worker_kill_ends_what_left_the_group_and_says_what_it_ended(looop: Looop, fleet: Up) -> None:
    child, record = detached_worker(looop, "w1", "ask Which table?")
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="the ask")
    done = looop.run("_", "worker", "kill", "w1")
    # the agent, its waiting `_ ask` and the detached grandchild, all gone when it returns
    assert done.stdout == "worker w1 killed (SIGTERM): ended 3 processes\n"
    assert processes_with(child) == [] and run_processes(record["run"]) == []
    assert "looop · worker end · w1 · killed: killed by the root agent" in looop.journal()
    assert "; ended 3 processes" in looop.journal()


def test_a_worker_ending_itself_cannot_act_after_its_kill_returns(
    looop: Looop, fleet: Up, tmp_path: Path
) -> None:
    acted = tmp_path / "acted-after-kill"
    # it ignores SIGTERM: only the SIGKILL after `kill_grace` stops it, well after a `_ kill`
    # that returned at once would have let it write the file
    child, record = detached_worker(looop, "w1", "ignore-term", f"kill {acted}")
    final = ended(looop, "w1")
    assert (final["state"], final["killed_by"], final["signal"]) == ("killed", "w1", "SIGKILL")
    assert processes_with(child) == []
    wait_for(lambda: run_processes(record["run"]) == [], what="the `_ kill` client to exit after its reply")
    assert not acted.exists()  # nothing of the run is left that could still write it


def test_a_budget_stop_ends_what_the_worker_detached(looop: Looop, fleet: Up) -> None:
    config = orjson.loads((looop.data / "config.json").read_bytes())
    (looop.data / "config.json").write_bytes(orjson.dumps({**config, "budget": {"worker": {"usd": 1}}}))
    child, record = detached_worker(looop, "w1", "cost 2", "sleep 30")
    final = ended(looop, "w1")
    assert (final["state"], final["killed_by"]) == ("killed", "looop")
    assert final["end_reason"].startswith("over budget")
    assert processes_with(child) == [] and run_processes(record["run"]) == []


def test_a_kill_run_as_claude_code_runs_a_tool_command_hears_its_reply_and_its_shell_acts_no_more(
    looop: Looop, fleet: Up, tmp_path: Path
) -> None:
    """Claude Code runs `_ kill` in a shell of its own session, its output piped back: the
    client is spared and hears the reply; its shell, like the agent, is ended before it."""
    out, acted = tmp_path / "out", tmp_path / "acted"
    tool = f'"$LOOOP_BIN" _ kill "$LOOOP_SESSION_ID" >{out} 2>&1; echo "exit $?" >>{out}; touch {acted}'
    config = orjson.loads((looop.data / "config.json").read_bytes())
    agent = ["sh", "-c", f"setsid sh -c '{tool}' | cat; touch {acted}; sleep 30"]
    (looop.data / "config.json").write_bytes(orjson.dumps({**config, "interactive": agent}))
    looop.run("_", "worker", "start", "w1", "the task")
    final = ended(looop, "w1")
    assert (final["state"], final["killed_by"]) == ("killed", "w1")
    wait_for(lambda: run_processes(final["run"]) == [], what="the `_ kill` client to exit")
    assert out.read_text() == "worker w1 killed (SIGTERM): ended 3 processes\n"  # sh, sh, cat
    assert not acted.exists()


def test_down_ends_what_a_worker_detached(looop: Looop, fleet: Up) -> None:
    child, record = detached_worker(looop, "w1", "say ready")
    assert "1 worker (w1)" in looop.run("down", timeout=120).stdout
    assert processes_with(child) == [] and run_processes(record["run"]) == []


def test_an_agent_that_exits_by_itself_leaves_nothing_it_detached(looop: Looop, fleet: Up) -> None:
    child, record = detached_worker(looop, "w1", "exit")
    final = ended(looop, "w1")
    assert (final["state"], final["exit_code"]) == ("exited", 0)
    assert processes_with(child) == [] and run_processes(record["run"]) == []  # before it is recorded


def test_env_from_the_config_and_from_the_command_reaches_the_agent_and_only_names_are_kept(
    looop: Looop, fleet: Up
) -> None:
    config = orjson.loads((looop.data / "config.json").read_bytes())
    config["env"] = {"FROM_CONFIG": "secret-c1", "BOTH": "secret-c2"}
    (looop.data / "config.json").write_bytes(orjson.dumps(config))
    looop.run(
        "_",
        "worker",
        "start",
        "w1",
        "--env",
        "BOTH=secret-x3",
        "--env",
        "API_KEY=secret=x4",  # the first = splits
        script("report env.md {env:FROM_CONFIG} {env:BOTH} {env:API_KEY} {env:LOOOP_SESSION_ID}", "exit"),
    )
    assert report(looop, "env.md") == "secret-c1 secret-x3 secret=x4 w1\n"
    ended(looop, "w1")
    assert "looop · worker start · w1 · pid" in looop.journal()
    assert "; env: FROM_CONFIG, BOTH, API_KEY" in looop.journal()
    for path in [*looop.data.rglob("*")]:  # journal, state, prompts, logs: names, never values
        if path.is_file() and path.name not in ("config.json", "env.md"):
            assert b"secret-" not in path.read_bytes(), path


def test_bad_env_entries_are_refused_with_one_line(looop: Looop, fleet: Up) -> None:
    for entry, said in [
        ("1X=y", "looop: --env '1X' is not a variable name (letters, digits and _, not first a digit)\n"),
        ("NOVALUE", "looop: --env 'NOVALUE': expected KEY=VALUE\n"),
        ("LOOOP_SESSION_ID=w2", "looop: --env LOOOP_SESSION_ID: looop sets its own LOOOP_* variables\n"),
    ]:
        done = looop.run("_", "worker", "start", "w1", "--env", entry, script("say hi"), code=2)
        assert done.stderr == said
    assert looop.state()["workers"] == []


def test_worker_verbs_refuse_bad_requests_with_one_line(looop: Looop, up: Up, tmp_path: Path) -> None:
    up.configure(interactive=AGENT)
    done = looop.run("_", "worker", "start", "w1", "hi", code=7)
    assert done.stderr == "looop: looop is not up (start it with `looop up`)\n"
    assert looop.run("_", "kill", "w1", code=7).stderr.startswith("looop: looop is not up")
    up.start()
    assert "invalid worker id '../x'" in looop.run("_", "worker", "start", "../x", "hi", code=2).stderr
    assert looop.run("_", "worker", "start", "w1", "--cwd", str(tmp_path / "nope"), "hi", code=2).stderr == (
        f"looop: --cwd {tmp_path / 'nope'}: no such directory\n"
    )
    assert (
        "not both"
        in looop.run("_", "worker", "start", "w1", "--cwd", ".", "--worktree", ".", "hi", code=2).stderr
    )
    assert (
        "is not a git repository"
        in looop.run("_", "worker", "start", "w1", "--worktree", str(tmp_path), "x", code=2).stderr
    )
    assert looop.run("_", "worker", "kill", "ghost", code=4).stderr == (
        "looop: no worker 'ghost' (see `looop _ state`)\n"
    )
    looop.run("_", "worker", "start", "w1", script("say hi"))
    done = looop.run("_", "worker", "start", "w1", "again", code=5)
    assert done.stderr.startswith("looop: worker w1 is already running (pid ")
    config = looop.data / "config.json"
    config.write_bytes(orjson.dumps({"interactive": "no-such-agent-cli", "interval": "60s"}))
    done = looop.run("_", "worker", "start", "w2", "hi", code=1)
    assert done.stderr.count("\n") == 1 and "cannot start 'no-such-agent-cli'" in done.stderr
    assert worker(looop, "w2")["state"] == "dead"
    assert worker(looop, "w1")["alive"]  # nothing else was touched


def test_a_relative_cwd_is_the_callers_and_a_worker_may_end_only_itself(
    looop: Looop, fleet: Up, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    looop.run("_", "worker", "start", "w1", "--cwd", "sub", script("report w1.md {cwd}"), cwd=tmp_path)
    assert report(looop, "w1.md") == f"{tmp_path / 'sub'}\n"
    done = looop.run("_", "kill", "w1", env={"LOOOP_SESSION_ID": "w2"}, code=2)
    assert done.stderr.startswith("looop: session w2 can end only itself, not w1 (")
    assert worker(looop, "w1")["alive"]


def test_an_ended_workers_id_can_be_reused_and_its_old_transcript_is_kept(looop: Looop, fleet: Up) -> None:
    looop.run("_", "worker", "start", "w1", script("say first life", "exit"))
    first = ended(looop, "w1")
    looop.run("_", "worker", "start", "w1", script("say second life"))
    wait_for(lambda: worker(looop, "w1").get("pid") not in (None, first["pid"]), what="the new session")
    session = looop.data / "sessions/w1"
    wait_for(lambda: b"second life" in (session / "transcript.log").read_bytes(), what="the new transcript")
    assert b"first life" in (session / "transcript.log.1").read_bytes()
    assert b"first life" not in (session / "transcript.log").read_bytes()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    (path / "README").write_text("hello\n")
    git("add", ".", cwd=path)
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init", cwd=path)
    return path


def test_a_worktree_sandbox_on_its_own_branch(looop: Looop, fleet: Up, repo: Path) -> None:
    done = looop.run(
        "_", "worker", "start", "w1", "--worktree", str(repo), script("report w1.md {cwd}", "exit")
    )
    tree = looop.data / "sessions/w1/worktree"
    assert done.stdout.endswith(f"in {tree}\n")
    assert report(looop, "w1.md") == f"{tree}\n"
    assert (tree / "README").read_text() == "hello\n"
    assert git("branch", "--show-current", cwd=tree).strip() == "looop/w1"
    assert "a git worktree of" in (looop.data / "prompts/w1.md").read_text()
    sandbox = ended(looop, "w1")["sandbox"]
    assert (sandbox["kind"], sandbox["branch"], sandbox["repo"]) == ("worktree", "looop/w1", str(repo))


def test_box_runs_the_agent_when_it_is_installed(looop: Looop, up: Up, repo: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    box = bin_dir / "box"
    box.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/box-args\n[ "$1" = run ] && shift\nexec "$@"\n')
    box.chmod(0o755)
    up.configure(interactive=AGENT)
    up.start(PATH=f"{bin_dir}:{os.environ['PATH']}")
    looop.run(
        "_", "worker", "start", "w1", "--worktree", str(repo), script("report w1.md boxed in {cwd}", "exit")
    )
    assert report(looop, "w1.md") == f"boxed in {looop.data / 'sessions/w1/worktree'}\n"
    assert (tmp_path / "box-args").read_text().startswith(f"run {sys.executable} {FAKE_AGENT} ")
    assert ended(looop, "w1")["sandbox"]["kind"] == "box"


@pytest.mark.parametrize(
    ("command", "system_prompts"),
    [
        # Claude Code: the contract as an appended system prompt, the task as the first message
        (["claude", "--permission-mode", "acceptEdits", "--append-system-prompt", "{contract}", "{task}"], 1),
        # pi: --append-system-prompt takes a file too
        (["pi", "--append-system-prompt", "{contract_file}", "{task}"], 1),
        # any CLI: the whole prompt from a file
        (["agent", "{prompt_file}"], 0),
        # a string is split like a shell would (without one)
        ("agent --model 'big model'", 0),
    ],
)
def test_interactive_placeholders_deliver_the_contract_and_the_task(
    looop: Looop, fleet: Up, command: str | list[str], system_prompts: int
) -> None:
    # the documented shapes, with the fake agent standing in for the real CLI
    if isinstance(command, list):
        configured: str | list[str] = [*AGENT, *command[1:]]
    else:
        configured = f"{sys.executable} {FAKE_AGENT} {command.split(' ', 1)[1]}"
    (looop.data / "config.json").write_bytes(
        orjson.dumps({"interactive": configured, "interval": "60s", "kill_grace": "1s"})
    )
    looop.run("_", "worker", "start", "w1", script("say task received", "exit"))
    ended(looop, "w1")
    shown = screen(looop, "w1")
    assert f"contract: yes; system prompts: {system_prompts}" in shown and "task received" in shown


def test_worker_kill_ends_a_member_of_its_live_group_that_carries_another_runs_mark(
    looop: Looop, fleet: Up
) -> None:
    marker = unique_marker("other-run")
    child = f"LOOOP_RUN_ID=another bash -c 'trap \"\" HUP; exec -a {marker} sleep 4012'"
    child += " </dev/null >/dev/null 2>&1"
    agent = ["bash", "-c", f"{child} & echo ready; sleep 600", "agent"]
    config = orjson.loads((looop.data / "config.json").read_bytes())
    (looop.data / "config.json").write_bytes(orjson.dumps({**config, "interactive": agent}))
    looop.run("_", "worker", "start", "w1", "the task")

    def child_alive() -> bool:  # the sleep itself, named by its argv[0] (the shells mention it too)
        return any(line.startswith(marker) for line in processes_with(marker))

    wait_for(child_alive, what="the child that says it is another run's")
    looop.run("_", "worker", "kill", "w1")
    assert not child_alive()  # the agent's group was still its own: all of it ends
