"""The installed program is its own manual."""

from __future__ import annotations

import pytest

from looop.world.state_shape import STATE_VERSION
from tests.conftest import Looop


def test_top_level_help_carries_the_whole_contract(looop: Looop) -> None:
    text = looop.run("--help").stdout
    for section in (
        "ROLES",
        "HOW TO RUN IT",
        "ROOT AGENT CONTRACT",
        "VERBS",
        "INVARIANTS",
        "WORKER CONTRACT",
        "DATA DIR",
        "ENVIRONMENT",
        "EXIT CODES",
    ):
        assert section in text, section
    for phrase in (
        "looop _ wait --json",
        '"$LOOOP_BIN" _ ask "$LOOOP_SESSION_ID"',
        "LOOOP _ ask ID --prompt",
        "AGENT PROFILES",
        "PermissionRequest hook",
        "LOOOP_DATA_DIR",
        "LOOOP_CONFIG",
        "session_ttl",
        "journal.md",
        "PLAYBOOK.md",
        "reports/",
        "claims/",
        "looop up",
        "looop down",
        "looop _ worker tell ID MESSAGE...",
        f"`v` is the state's version ({STATE_VERSION})",
    ):
        assert phrase in text, phrase
    assert not (looop.data).exists(), "help must not create a data dir"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["_", "state"], "--json"),
        (["_", "wait"], "--timeout"),
        (["_", "answer"], "ASK_ID"),
        (["_", "goal", "write"], "ID [BODY]"),
        (["_", "goal", "archive"], "goals/archive/"),
        (["_", "sensor", "write"], "NAME [SCRIPT]"),
        (["_", "playbook", "write"], "PLAYBOOK.md"),
        (["_", "run"], "--reason"),
        (["_", "notify"], "MESSAGE"),
        (["_", "ask"], "--options"),
        (["_", "claim"], "RESOURCE"),
        (["_", "unclaim"], "RESOURCE"),
        (["_", "cost"], "--unit"),
        (["_", "worker", "tell"], "ID [MESSAGE]..."),
    ],
)
def test_every_verb_has_exact_help(looop: Looop, argv: list[str], expected: str) -> None:
    text = looop.run(*argv, "--help").stdout
    assert f"Usage: looop {' '.join(argv)}" in text
    assert expected in text


def test_the_help_and_the_readme_show_the_built_in_profiles_as_they_are(looop: Looop) -> None:
    from pathlib import Path

    from looop.workers.profiles import BUILT_IN

    def flat(text: str) -> str:
        return " ".join(text.replace("`", " ").split())

    manual = flat(looop.run("--help").stdout)
    readme = flat((Path(__file__).resolve().parent.parent / "README.md").read_text())
    for profile in BUILT_IN.values():
        command = " ".join(profile.command)
        assert command in manual and command in readme, command


def test_every_worker_verb_of_the_cli_is_in_the_help_s_verbs_list(looop: Looop) -> None:
    from looop.cli.worker_control import worker_group

    text = looop.run("--help").stdout
    verbs = text.split("VERBS", 1)[1].split("INVARIANTS", 1)[0]
    for name in worker_group.commands:
        assert f"looop _ worker {name} ID" in verbs, name
    contract = " ".join(text.split("ROOT AGENT CONTRACT", 1)[1].split("VERBS", 1)[0].split())
    assert "`idle` but not done, or going the wrong way, needs direction: tell it" in contract
    assert "do not kill it (killing loses its context" in contract
