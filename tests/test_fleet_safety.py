"""Fleet safety: budgets, ask deadlines, expiring claims, stalls, the worker cap."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import AGENT, Looop, Up, blocked, ended, report, screen, script, wait_for, worker


@pytest.fixture
def fleet(looop: Looop, up: Up) -> Up:
    up.configure(interactive=AGENT, idle_after="1s", kill_grace="1s", interval="0.5s")
    return up


def notices(looop: Looop) -> list[str]:
    return [str(n["message"]) for n in looop.state()["notifications"]]


def test_a_worker_past_its_budget_is_stopped_and_the_fleet_budget_refuses_new_workers(
    looop: Looop, fleet: Up
) -> None:
    fleet.configure(
        interactive=AGENT, kill_grace="1s", budget={"worker": {"usd": 1.0}, "fleet": {"usd": 1.5}}
    )
    fleet.start()
    looop.run(
        "_", "worker", "start", "w1", script("cost 0.85", "say spent most", "sleep 2", "cost 0.3", "sleep 30")
    )
    wait_for(
        lambda: any("worker w1 spent 0.85 of its 1 usd budget (80 %)" in n for n in notices(looop)),
        what="80 %",
    )
    final = ended(looop, "w1")
    assert (final["state"], final["killed_by"]) == ("killed", "looop")
    assert final["end_reason"] == "over budget: worker w1 spent 1.15 of its 1 usd budget (100 %)"
    assert any("w1 spent 1.15 of its 1 usd budget (100 %); it is stopped" in n for n in notices(looop))
    spend = looop.state()["spend"]
    assert (spend["by_session"], spend["total"]) == ({"w1": {"usd": 1.15}}, {"usd": 1.15})
    assert "spend: 1.15 usd  (budget: fleet 1.5 usd; worker 1 usd)" in looop.run("_", "state").stdout
    assert " · spend 1.15 of 1.5 usd" in looop.run("status").stdout
    looop.run("_", "worker", "start", "w2", script("cost 0.4", "sleep 30"))
    wait_for(
        lambda: any("the fleet spent 1.55 of its 1.5 usd budget" in n for n in notices(looop)), what="fleet"
    )
    done = looop.run("_", "worker", "start", "w3", "hi", code=5)
    assert done.stderr.startswith("looop: not started: the fleet spent 1.55 of its 1.5 usd budget (100 %)")
    assert "looop · budget · fleet · the fleet spent 1.55" in looop.journal()


def test_an_ask_past_its_deadline_takes_its_default_or_is_escalated(looop: Looop, fleet: Up) -> None:
    fleet.start()
    done = looop.run(
        "_", "ask", "w1", "--prompt", "Proceed?", "--options", "yes,no", "--timeout", "0.5", "--default", "NO"
    )
    assert done.stdout == "no\n"
    assert "looop · answer · w1-1 · no (its default: no answer by its deadline)" in looop.journal()
    done = looop.run("_", "ask", "w1", "--prompt", "Which region?", "--timeout", "0.5", code=124)
    assert "escalated to the human" in done.stderr
    [ask] = looop.state()["asks"]
    assert ask["urgent"] and ask["id"] == "w1-2"
    assert any(
        "ask w1-2 from w1 needs a decision (its deadline passed): Which region?" in n for n in notices(looop)
    )
    assert "URGENT" in looop.run("status").stdout
    # an ask nobody waits on any more is settled by the pulse
    asker = looop.popen("_", "ask", "w2", "--prompt", "Go?", "--timeout", "3", "--default", "go")
    blocked(asker, "the asker to wait")
    asker.kill()
    asker.wait()
    assert not (looop.data / "answers/w2-1.json").exists()  # the asker did not settle it itself
    wait_for(lambda: "answer · w2-1 · go (its default" in looop.journal(), what="the pulse to settle it")


def test_claims_expire_wait_and_are_released_when_their_holder_dies(looop: Looop, fleet: Up) -> None:
    fleet.start()
    looop.run("_", "claim", "w1", "db", "--ttl", "1")
    [held] = looop.state()["claims"]
    assert held["holder"] == "w1" and held["expires"]
    assert "db is claimed by w1" in looop.run("_", "claim", "w2", "db", code=6).stderr
    waited = looop.run("_", "claim", "w2", "db", "--wait", "--timeout", "20")
    assert waited.stdout == "db: claimed by w2\n"
    assert looop.run("_", "claim", "w3", "db", "--wait", "--timeout", "0.5", code=6).stderr.startswith(
        "looop: db"
    )
    looop.run("_", "worker", "start", "holder", script("claim deploy", "sleep 30"))
    wait_for(lambda: any(c["resource"] == "deploy" for c in looop.state()["claims"]), what="the claim")
    pid = worker(looop, "holder")["pid"]
    import os
    import signal

    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: all(c["resource"] != "deploy" for c in looop.state()["claims"]), what="the release")


def test_a_silent_worker_is_marked_stalled_with_its_last_screen(looop: Looop, fleet: Up) -> None:
    fleet.configure(interactive=AGENT, kill_grace="1s", idle_after="1s", stall_after="3s")
    fleet.start()
    looop.run("_", "worker", "start", "w1", script("say thinking hard", "sleep 9", "say back"))
    looop.run("_", "wait")
    state = wait_for(
        lambda: (
            (s := orjson.loads(looop.run("_", "wait", "--json", timeout=60).stdout))
            and any(w["state"] == "stalled" for w in s["workers"])
            and s
        ),
        timeout=60,
        what="the stall to wake _ wait",
    )
    [stalled] = state["workers"]
    assert any("thinking hard" in line for line in stalled["last_screen"])
    assert "looop · worker stalled · w1 · nothing for" in looop.journal()
    wait_for(
        lambda: "back" in screen(looop, "w1") and worker(looop, "w1")["state"] != "stalled", what="recovery"
    )


def test_the_worker_cap_refuses_or_queues(looop: Looop, fleet: Up) -> None:
    fleet.configure(interactive=AGENT, kill_grace="1s", max_workers=2)
    fleet.start()
    looop.run("_", "worker", "start", "a", script("ask Done?", "exit"))
    looop.run("_", "worker", "start", "b", script("sleep 60"))
    done = looop.run("_", "worker", "start", "c", "hi", code=5)
    assert (
        done.stderr
        == "looop: 2 workers run, as many as `max_workers` allows: end one, raise it, or use --queue\n"
    )
    queued = looop.popen("_", "worker", "start", "c", "--queue", script("report c.md started", "exit"))
    wait_for(lambda: "worker start · c · queued: 2 workers run" in looop.journal(), what="the queue")
    blocked(queued, "the queued start to wait for a free slot")
    assert not (looop.data / "sessions/c").exists()
    looop.run("_", "answer", "a-1", "yes")
    out, err = queued.communicate(timeout=60)
    assert queued.returncode == 0 and out.startswith("worker c started"), err
    assert report(looop, "c.md") == "started\n"


def test_a_queued_worker_killed_is_taken_off_the_queue_and_its_start_says_so(looop: Looop, fleet: Up) -> None:
    fleet.configure(interactive=AGENT, kill_grace="1s", max_workers=1)
    fleet.start()
    looop.run("_", "worker", "start", "a", script("sleep 60"))
    queued = looop.popen("_", "worker", "start", "b", "--queue", script("exit"))
    wait_for(lambda: "worker start · b · queued: 1 workers run" in looop.journal(), what="the queue")
    assert looop.run("_", "worker", "kill", "b").stdout == "worker b taken off the queue\n"
    _, err = queued.communicate(timeout=60)
    assert (
        queued.returncode == 5
        and err == "looop: worker b was taken off the queue: killed by the root agent\n"
    )
    assert "worker kill · b · by root: killed by the root agent (taken off the queue)" in looop.journal()
    looop.run("_", "worker", "kill", "a")
    assert not (looop.data / "sessions/b").exists()  # it never started


def test_configured_defaults_escalate_a_waiting_ask_and_time_leases(looop: Looop, fleet: Up) -> None:
    fleet.configure(interactive=AGENT, interval="0.5s", ask_deadline="1s", claim_ttl="30m")
    fleet.start()
    asker = looop.popen("_", "ask", "w1", "--prompt", "Anyone there?")
    wait_for(lambda: any(a["urgent"] for a in looop.state()["asks"]), what="the pulse to escalate the ask")
    assert asker.poll() is None  # the configured deadline escalates; only --timeout ends a wait
    state = looop.state()
    assert state["summary"]["needs_decision"] == ["w1-1"]
    looop.run("_", "answer", "w1-1", "here")
    assert asker.communicate(timeout=30)[0] == "here\n"
    looop.run("_", "claim", "w1", "db")
    [lease] = looop.state()["claims"]
    assert lease["expires"] is not None


def test_an_ask_escalated_while_the_config_is_broken_still_notifies_the_human(looop: Looop) -> None:
    looop.run("_", "state")
    (looop.data / "config.json").write_text("{not json")
    done = looop.run("_", "ask", "w1", "--prompt", "Ship it?", "--timeout", "1", code=124)
    assert "escalated to the human" in done.stderr and "Traceback" not in done.stderr
    notices = (looop.data / "notifications.jsonl").read_text()
    assert "ask w1-1 from w1 needs a decision" in notices
    assert "looop · notify hook · config · not run: " in looop.journal()


def test_an_ask_the_pulse_settles_with_its_default_is_delivered_to_its_asker(looop: Looop, up: Up) -> None:
    up.configure(interval="1s")  # the pulse settles overdue asks each beat, racing the askers
    up.start()
    askers = [
        looop.popen("_", "ask", f"r{i}", "--prompt", "Go?", "--timeout", "1s", "--default", "go")
        for i in range(20)
    ]
    for asker in askers:
        out, err = asker.communicate(timeout=60)
        assert (asker.returncode, out) == (0, "go\n"), err
