"""Verbs the root agent calls many times a minute must not import the daemon's heavy modules."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from tests.conftest import Looop, Up, blocked

PROBE = """
import sys
from looop.cli.entry import main
sys.argv = ["looop", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("pykka", "pexpect", "ptyprocess", "pyte", "click", "orjson") if m in sys.modules)
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def probe(looop: Looop, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a verb through the real entry point in an interpreter that then lists what it imported."""
    command = [sys.executable, "-c", PROBE, *argv]
    return subprocess.run(
        command, capture_output=True, text=True, env=looop.env, stdin=subprocess.DEVNULL, timeout=30
    )


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
    done = probe(looop, argv)
    allowed = {"click", "orjson"}  # the fast path below avoids them; no verb needs the daemon's
    heavy = set(done.stderr.split("HEAVY:")[1].strip().split(",")) - {""}
    assert heavy <= allowed, done.stderr


@pytest.mark.parametrize("argv", [["_", "state", "--json"], ["_", "state"], ["_", "wait", "--json"]])
def test_with_up_running_the_hottest_reads_import_neither_click_nor_orjson(
    looop: Looop, up: Up, argv: list[str]
) -> None:
    """`_ wait` blocks until there is news, so its start-up is no part of a wake's latency: it
    reads the files itself (orjson), without click; `_ state` is served whole by the daemon."""
    up.configure()
    up.start()
    done = probe(looop, argv)
    assert done.stderr.endswith("HEAVY:orjson\n" if "wait" in argv else "HEAVY:\n"), done.stderr
    assert done.stdout.startswith("{" if "--json" in argv else "looop  world ")


def test_the_daemon_serves_the_same_state_and_wait_as_the_files_give(looop: Looop, up: Up) -> None:
    up.configure()
    up.start()
    up.wait_beats(1)
    served = orjson.loads(looop.run("_", "state", "--json").stdout)
    click_path = [
        sys.executable,
        "-c",
        "from looop.cli.entry import guarded; from looop.cli.commands import invoke; guarded(invoke)",
        "_",
        "state",
        "--json",
    ]
    done = subprocess.run(
        click_path, capture_output=True, env=looop.env, stdin=subprocess.DEVNULL, timeout=30
    )
    local = orjson.loads(done.stdout)  # gathered in that process, from the files
    assert served["world_hash"] == local["world_hash"]
    assert served.keys() == local.keys()
    first = orjson.loads(looop.run("_", "wait", "--json").stdout)
    assert (looop.data / ".last-tick-hash").read_text() == first["world_hash"] + "\n"
    assert looop.run("_", "wait", "--json", "--timeout", "1", code=124).stdout.startswith("{")
    waiter = looop.popen("_", "wait")
    blocked(waiter, "the wait to block on the daemon")
    looop.run("_", "goal", "write", "fresh", "body")
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and "fresh" in out and out.startswith("looop  world "), err
