"""Leases on shared resources and self-reported spend."""

from __future__ import annotations

from tests.conftest import Looop


def test_a_claim_is_a_lease_only_its_holder_releases(looop: Looop) -> None:
    assert "claimed by w1" in looop.run("_", "claim", "w1", "repo.main").stdout
    assert "already held" in looop.run("_", "claim", "w1", "repo.main").stdout
    done = looop.run("_", "claim", "w2", "repo.main", code=6)
    assert done.stderr == "looop: repo.main is claimed by w1\n"
    looop.run("_", "unclaim", "w2", "repo.main", code=6)
    [claim] = looop.state()["claims"]
    assert claim["resource"] == "repo.main" and claim["holder"] == "w1"
    assert "released" in looop.run("_", "unclaim", "w1", "repo.main").stdout
    looop.run("_", "claim", "w2", "repo.main")
    assert "was not claimed" in looop.run("_", "unclaim", "w1", "other").stdout
    journal = looop.journal()
    assert "w1 · claim · repo.main · claimed" in journal and "w1 · unclaim · repo.main · released" in journal


def test_costs_add_up_per_session_and_unit(looop: Looop) -> None:
    looop.run("_", "cost", "w1", "0.25", "--note", "first pass")
    looop.run("_", "cost", "w1", "0.5")
    looop.run("_", "cost", "w1", "1200", "--unit", "tokens")
    assert looop.run("_", "cost", "w2", "1").stdout == "w2: total 1 usd\n"
    spend = looop.state()["spend"]
    assert spend["by_session"]["w1"] == {"usd": 0.75, "tokens": 1200.0}
    assert spend["total"] == {"usd": 1.75, "tokens": 1200.0}
    assert (looop.data / "sessions/w1/cost.jsonl").read_text().count("\n") == 3
    assert "w1 · cost · w1 · 0.25 usd (first pass), total 0.25 usd" in looop.journal()


def test_bad_costs_are_refused(looop: Looop) -> None:
    for amount in ("abc", "-1", "nan", "inf"):
        looop.run("_", "cost", "w1", amount, code=2)
    looop.run("_", "cost", "w1", "1", "--unit", "eur", code=2)
    assert not (looop.data / "sessions/w1").exists()
