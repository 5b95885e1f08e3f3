"""Verbs the root agent calls many times a minute must not import the daemon's heavy modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Looop

PROBE = """
import sys
from looop.cli import main
sys.argv = ["looop", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("pykka", "pexpect", "ptyprocess", "pyte") if m in sys.modules)
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["_", "state", "--json"],
        ["_", "answer", "nope-1", "x"],
        ["_", "goal", "write", "g", "b"],
        ["_", "claim", "w", "r"],
        ["_", "worker", "start", "w", "hi"],
        ["_", "kill", "w"],
    ],
)
def test_verbs_stay_light(looop: Looop, argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        env=looop.env,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert "HEAVY:\n" in done.stderr, done.stderr
