"""An ask belongs to one run of a worker: a new run with the same id never takes an old run's answer."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson
import pytest

from looop.store.asks import cancel_asks_of
from looop.store.bootstrap import open_data_dir
from looop.store.paths import DataDir
from tests.conftest import AGENT, Looop, Up, alive, ended, report, script, wait_for, worker

DEPLOY = "ask Deploy to prod? | yes,no"


@pytest.fixture
def fleet(looop: Looop, up: Up) -> Iterator[Up]:
    up.configure(interactive=AGENT, idle_after="1s", kill_grace="1s")
    up.start()
    yield up


def pending(looop: Looop) -> list[dict[str, Any]]:
    asks = looop.state()["asks"]
    assert isinstance(asks, list)
    return asks


def answer_file(looop: Looop, ask_id: str) -> dict[str, Any]:
    value = orjson.loads((looop.data / "answers" / f"{ask_id}.json").read_bytes())
    assert isinstance(value, dict)
    return value


def first_ask_of(looop: Looop, worker_id: str, path: str) -> dict[str, Any]:
    """The worker's pending ask, or (the bug) its report written with an answer it never asked for."""
    result = looop.data / "reports" / path

    def seen() -> dict[str, Any] | None:
        asks = [a for a in pending(looop) if a["worker"] == worker_id]
        if asks:
            return asks[0]
        if result.exists():
            return {"report": result.read_text()}
        return None

    found = wait_for(seen, timeout=30, what=f"an ask of {worker_id}")
    assert isinstance(found, dict)
    return found


def test_a_new_worker_with_the_same_id_never_gets_the_answer_its_frozen_predecessor_missed(
    looop: Looop, fleet: Up
) -> None:
    looop.run("_", "worker", "start", "w1", script(DEPLOY, "report first.md {answer}"))
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="the first ask")
    first = worker(looop, "w1")
    os.killpg(first["pgid"], signal.SIGSTOP)  # frozen: its `_ ask` cannot take the answer
    looop.run("_", "answer", "w1-1", "yes")
    assert answer_file(looop, "w1-1")["answer"] == "yes"
    looop.run("_", "worker", "kill", "w1")
    assert ended(looop, "w1")["state"] == "killed"
    void = answer_file(looop, "w1-1")
    assert void["cancelled"] and not void.get("delivered_at")
    assert void["reason"] == "worker w1 killed"
    assert "looop · ask cancelled · w1-1 · worker w1 killed; its answer yes was never delivered" in (
        looop.journal()
    )
    assert not (looop.data / "reports/first.md").exists()

    looop.run("_", "worker", "start", "w1", script(DEPLOY, "report second.md {answer}"))
    ask = first_ask_of(looop, "w1", "second.md")
    assert ask.get("id") == "w1-2", ask  # a new ask the root agent sees, not the old answer
    assert worker(looop, "w1")["state"] == "asking"
    assert not (looop.data / "reports/second.md").exists()
    looop.run("_", "answer", "w1-2", "no")
    assert report(looop, "second.md") == "no\n"
    assert worker(looop, "w1")["run"] != first["run"]


def test_up_voids_the_undelivered_answer_of_a_worker_it_finds_dead(looop: Looop, fleet: Up) -> None:
    looop.run("_", "worker", "start", "w1", script(DEPLOY, "report first.md {answer}"))
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="the first ask")
    first = worker(looop, "w1")
    os.kill(fleet.pids[0], signal.SIGKILL)
    wait_for(lambda: not alive(fleet.pids[0]), what="up to die")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(first["pgid"], signal.SIGKILL)
    wait_for(lambda: not alive(first["pid"]), what="the worker to die")
    looop.run("_", "answer", "w1-1", "yes")  # while looop is down: nobody takes it
    fleet.start()
    assert worker(looop, "w1")["state"] == "dead"
    void = answer_file(looop, "w1-1")
    assert void["cancelled"] and void["reason"] == "worker w1 dead (found at up)"
    assert "cancelled asks w1-1" in looop.journal()

    looop.run("_", "worker", "start", "w1", script(DEPLOY, "report second.md {answer}"))
    ask = first_ask_of(looop, "w1", "second.md")
    assert ask.get("id") == "w1-2", ask
    looop.run("_", "answer", "w1-2", "no")
    assert report(looop, "second.md") == "no\n"


def test_asking_again_within_a_run_re_attaches_but_an_ask_from_outside_the_run_does_not(
    looop: Looop, fleet: Up
) -> None:
    looop.run("_", "worker", "start", "w1", script(DEPLOY, "report w1.md {answer}"))
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="the worker's ask")
    run = worker(looop, "w1")["run"]
    args = ("_", "ask", "w1", "--prompt", "Deploy to prod?", "--options", "yes,no")
    by_hand = looop.popen(*args)  # a human trying `_ ask` outside any run of w1
    wait_for(lambda: [a["id"] for a in pending(looop)] == ["w1-1", "w1-2"], what="a second ask")
    # the run's tool, re-run; its stderr a terminal, where the status line shows which ask it took
    again, terminal = popen_on_terminal(looop, *args, LOOOP_SESSION_ID="w1", LOOOP_RUN_ID=run)
    assert terminal.readline() == b"looop: ask w1-1 is waiting for an answer\r\n"
    looop.run("_", "answer", "w1-1", "yes")
    out, err = again.communicate(timeout=30)
    assert (again.returncode, out) == (0, "yes\n"), err
    terminal.close()
    assert report(looop, "w1.md") == "yes\n"
    assert [a["id"] for a in pending(looop)] == ["w1-2"]
    looop.run("_", "answer", "w1-2", "no")
    assert by_hand.communicate(timeout=30)[0] == "no\n"


def popen_on_terminal(looop: Looop, *args: str, **env: str) -> tuple[subprocess.Popen[str], BinaryIO]:
    """`looop ARGS` in the background with its stderr on a pseudo-terminal (stdout a pipe);
    returns the process and the terminal's other end, to read what it printed there."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [looop.program, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
        env={**looop.env, **env},
    )
    os.close(terminal)
    looop.started.append(process)
    return process, os.fdopen(controller, "rb", buffering=0)


def test_an_answered_ask_prints_only_the_answer_when_stderr_is_not_a_terminal(looop: Looop) -> None:
    """Agents merge a tool's stderr into its result: the model must see the answer alone."""
    asker = looop.popen("_", "ask", "w1", "--prompt", "Deploy?")
    wait_for(lambda: pending(looop), what="the ask")
    looop.run("_", "answer", "w1-1", "yes")
    assert asker.communicate(timeout=30) == ("yes\n", "")
    assert asker.returncode == 0
    defaulted = looop.popen("_", "ask", "w1", "--prompt", "Again?", "--timeout", "1", "--default", "no")
    assert defaulted.communicate(timeout=30) == ("no\n", "")
    assert "w1-1 · Deploy?" in looop.journal()  # the status line's news is in the journal


def test_a_waiting_asker_whose_answer_is_voided_exits_8(looop: Looop) -> None:
    asker = looop.popen("_", "ask", "w1", "--prompt", "Deploy?")
    wait_for(lambda: pending(looop), what="the ask")
    asker.send_signal(signal.SIGSTOP)
    try:
        looop.run("_", "answer", "w1-1", "yes")
        dd = open_data_dir(DataDir(looop.data))
        assert cancel_asks_of(dd, "w1", "worker w1 killed") == ["w1-1"]
        assert cancel_asks_of(dd, "w1", "worker w1 killed") == []  # once, for good
    finally:
        asker.send_signal(signal.SIGCONT)
    _, err = asker.communicate(timeout=30)
    assert asker.returncode == 8, err
    assert err.strip().endswith("looop: ask w1-1 was cancelled: worker w1 killed")
    assert not answer_file(looop, "w1-1").get("delivered_at")
    looop.run("_", "answer", "w1-1", "no", code=5)
    done = looop.popen("_", "ask", "w1", "--prompt", "Deploy?")
    wait_for(lambda: [a["id"] for a in pending(looop)] == ["w1-2"], what="a new ask")
    done.kill()
    done.wait()
