"""Asks and answers across real processes: the worker blocks, the root agent answers."""

from __future__ import annotations

import signal
import subprocess

import orjson

from looop.store.asks import cancel_asks_of
from looop.store.bootstrap import open_data_dir
from looop.store.paths import DataDir
from tests.conftest import Looop, blocked, wait_for


def pending(looop: Looop) -> list[dict[str, object]]:
    asks = looop.state()["asks"]
    assert isinstance(asks, list)
    return asks


def start_ask(
    looop: Looop, *extra: str, session: str = "w1", prompt: str = "Deploy?"
) -> subprocess.Popen[str]:
    asker = looop.popen("_", "ask", session, "--prompt", prompt, *extra)
    wait_for(
        lambda: any(a["worker"] == session and a["prompt"] == prompt for a in pending(looop)), what="the ask"
    )
    return asker


def test_an_answer_reaches_the_blocked_asker_at_once(looop: Looop) -> None:
    asker = start_ask(looop, "--ref", "reports/plan.md", "--options", "yes,no")
    [ask] = pending(looop)
    assert ask == {
        **ask,
        "id": "w1-1",
        "worker": "w1",
        "prompt": "Deploy?",
        "reference": "reports/plan.md",
        "options": ["yes", "no"],
    }
    blocked(asker, "the asker to block on file events")  # not on a clock: the answer wakes it
    looop.run("_", "answer", "w1-1", "YES")
    out, err = asker.communicate(timeout=10)
    assert asker.returncode == 0, err
    assert out == "yes\n"  # the option's own spelling
    assert pending(looop) == []
    delivered = orjson.loads((looop.data / "answers/w1-1.json").read_bytes())
    assert delivered["answer"] == "yes" and delivered["delivered_at"]
    assert "w1 · ask · w1-1 · Deploy? [yes, no]" in looop.journal()
    assert "root · answer · w1-1 · yes" in looop.journal()


def test_the_prompt_can_come_on_stdin(looop: Looop) -> None:
    asker = looop.popen("_", "ask", "w2", stdin=subprocess.PIPE)
    assert asker.stdin is not None
    asker.stdin.write("Which branch?\nmain or dev\n")
    asker.stdin.close()
    wait_for(lambda: pending(looop), what="the ask")
    assert pending(looop)[0]["prompt"] == "Which branch?\nmain or dev"
    looop.run("_", "answer", "w2-1", "main")
    assert asker.wait(timeout=10) == 0


def test_answers_are_checked_against_the_ask(looop: Looop) -> None:
    asker = start_ask(looop, "--options", "a,b")
    looop.run("_", "answer", "nope-1", "a", code=4)
    done = looop.run("_", "answer", "w1-1", "c", code=2)
    assert done.stderr == "looop: ask w1-1 takes one of: a, b\n"
    looop.run("_", "answer", "w1-1", "b")
    done = looop.run("_", "answer", "w1-1", "a", code=5)
    assert "already answered" in done.stderr
    assert asker.wait(timeout=10) == 0


def test_an_interrupted_ask_re_attaches_when_asked_again(looop: Looop) -> None:
    first = start_ask(looop)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=10)
    assert [a["id"] for a in pending(looop)] == ["w1-1"]
    second = looop.popen("_", "ask", "w1", "--prompt", "Deploy?")
    blocked(second, "the second asker to block")  # re-attached and waiting, not served later
    looop.run("_", "answer", "w1-1", "go")
    out, _ = second.communicate(timeout=10)
    assert out == "go\n"
    assert [a["id"] for a in pending(looop)] == []
    third = start_ask(looop)  # delivered: the same question again is a new ask
    assert [a["id"] for a in pending(looop)] == ["w1-2"]
    third.kill()


def test_an_answer_given_while_nobody_waits_is_delivered_on_the_next_ask(looop: Looop) -> None:
    first = start_ask(looop)
    first.kill()
    first.wait()
    looop.run("_", "answer", "w1-1", "later")
    done = looop.run("_", "ask", "w1", "--prompt", "Deploy?")
    assert done.stdout == "later\n"


def test_a_cancelled_ask_makes_the_asker_exit_8(looop: Looop) -> None:
    asker = start_ask(looop)
    dd = open_data_dir(DataDir(looop.data))
    assert cancel_asks_of(dd, "w1", "worker ended") == ["w1-1"]
    _, err = asker.communicate(timeout=10)
    assert asker.returncode == 8
    assert err.strip().endswith("looop: ask w1-1 was cancelled: worker ended")
    looop.run("_", "answer", "w1-1", "x", code=5)


def test_an_ask_waits_no_longer_than_its_timeout(looop: Looop) -> None:
    done = looop.run("_", "ask", "w1", "--prompt", "anyone?", "--timeout", "0.5", code=124)
    assert "still unanswered at its deadline and was escalated" in done.stderr
    assert [a["id"] for a in pending(looop)] == ["w1-1"]


def test_bad_options_are_refused_before_anything_is_written(looop: Looop) -> None:
    looop.run("_", "state")
    looop.run("_", "ask", "w1", "--prompt", "p", "--options", "a,,b", code=2)
    looop.run("_", "ask", "w1", "--prompt", "p", "--options", "a,A", code=2)
    looop.run("_", "ask", "w1", "--prompt", "  ", code=2)
    assert list((looop.data / "asks").iterdir()) == []
