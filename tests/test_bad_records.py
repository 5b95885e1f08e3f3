"""Out-of-range durations are refused in one line; a file with a wrong-typed or out-of-range field
is a line under `problems`, never a crash of `_ state`, `status`, `_ wait` or the pulse."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path, PosixPath
from typing import IO, Any

import orjson
import pytest

from looop.base.files import tail_lines
from looop.store import journal
from tests.conftest import Looop, Up, wait_for

HUGE = "99999999999999999999999999d"


def one_line_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("_", "ask", "w1", "--prompt", "q", "--timeout", HUGE, "--default", "no"),
        ("_", "claim", "w1", "thing", "--ttl", HUGE),
        ("_", "claim", "w1", "thing", "--ttl", "9999999999999999d"),
        ("_", "claim", "w1", "thing", "--wait", "--timeout", HUGE),
        ("_", "wait", "--timeout", HUGE),
        ("_", "run", "--timeout", "99999999999999999999999999", "true"),
        ("_", "ask", "w1", "--prompt", "q", "--timeout", "4000d"),
    ],
)
def test_a_duration_past_the_bound_is_refused_in_one_line(looop: Looop, args: tuple[str, ...]) -> None:
    done = looop.run(*args, code=2)
    one_line_error(done)
    assert not list(looop.data.glob("asks/*.json"))


def test_the_bound_names_the_value_and_the_limit(looop: Looop) -> None:
    done = looop.run("_", "claim", "w1", "thing", "--ttl", "4000d", code=2)
    assert "4000d" in done.stderr and "3650d" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [("ask_deadline", 1e300), ("interval", 1e20), ("sensor_timeout", 1e300), ("claim_ttl", "99999999d")],
)
def test_a_config_duration_past_the_bound_stops_up_in_one_line(
    looop: Looop, up: Up, key: str, value: object
) -> None:
    up.configure(**{key: value})
    done = looop.run("up", code=3)
    one_line_error(done)
    assert key in done.stderr
    assert any(key in p for p in looop.state()["problems"])


def test_a_budget_limit_must_be_finite_and_bounded(looop: Looop) -> None:
    looop.run("_", "state")
    (looop.data / "config.json").write_text('{"budget": {"fleet": {"usd": 1e300}}}')
    one_line_error(looop.run("_", "notify", "hi", code=3))
    one_line_error(looop.run("_", "cost", "w1", "1e300", code=2))


def state_lists(looop: Looop, needle: str) -> None:
    """`_ state`, `_ state --json` and `status` all succeed; `_ state` names the problem, `status`
    (one screen) says there are problems."""
    problems = looop.state()["problems"]
    assert any(needle in p for p in problems), problems
    for args, shown in ((("_", "state"), needle), (("status",), f"problems ({len(problems)} skipped; ")):
        done = looop.run(*args)
        assert "problems" in done.stdout and shown in done.stdout, done.stdout
        assert "Traceback" not in done.stderr


def plant_ask(looop: Looop, **fields: object) -> None:
    looop.run("_", "state")
    ask = {"id": "w9-1", "worker": "w9", "prompt": "q", "reference": None, "options": None}
    (looop.data / "asks" / "w9-1.json").write_bytes(orjson.dumps({**ask, "created": 1.0, **fields}))


@pytest.mark.parametrize("deadline", [1e300, "x", -1e300])
def test_an_ask_with_a_bad_deadline_is_a_problem(looop: Looop, deadline: object) -> None:
    plant_ask(looop, deadline=deadline)
    state_lists(looop, "deadline")


def test_an_ask_with_a_bad_created_is_a_problem(looop: Looop) -> None:
    plant_ask(looop, created=[1])
    state_lists(looop, "created")


def test_a_claim_with_a_huge_expiry_is_a_problem(looop: Looop) -> None:
    looop.run("_", "claim", "w1", "thing")
    path = looop.data / "claims" / "thing.json"
    path.write_bytes(orjson.dumps({**orjson.loads(path.read_bytes()), "expires": 1e300}))
    state_lists(looop, "expires")


def test_records_written_before_v_read_as_version_1_and_new_ones_carry_it(looop: Looop) -> None:
    plant_ask(looop)  # as an older looop wrote it: no `v`
    assert [a["id"] for a in looop.state()["asks"]] == ["w9-1"]
    looop.run("_", "answer", "w9-1", "yes")
    answer = looop.data / "answers" / "w9-1.json"
    assert orjson.loads(answer.read_bytes())["v"] == 1
    answer.write_bytes(orjson.dumps({"id": "w9-1", "answer": "yes", "answered_at": 1.0}))
    looop.run("_", "claim", "w1", "thing")
    claim = looop.data / "claims" / "thing.json"
    assert orjson.loads(claim.read_bytes())["v"] == 1
    claim.write_bytes(orjson.dumps({"resource": "thing", "holder": "w1", "since": 1.0, "expires": None}))
    state = looop.state()
    assert (state["asks"], state["problems"]) == ([], [])
    assert [(c["resource"], c["holder"]) for c in state["claims"]] == [("thing", "w1")]
    assert "claimed by w1" in looop.run("_", "claim", "w2", "thing", code=6).stderr


def plant_newer(looop: Looop, record: str) -> tuple[Path, tuple[str, ...]]:
    """A file of `record` as a newer looop would write it, and a move that would rewrite it."""
    if record == "ask":
        plant_ask(looop, v=2)
        return looop.data / "asks" / "w9-1.json", ("_", "answer", "w9-1", "yes")
    if record == "answer":
        plant_ask(looop)
        path = looop.data / "answers" / "w9-1.json"
        path.write_bytes(orjson.dumps({"v": 2, "id": "w9-1", "answer": "no", "answered_at": 1.0}))
        return path, ("_", "answer", "w9-1", "yes")
    looop.run("_", "claim", "w1", "thing")
    path = looop.data / "claims" / "thing.json"
    path.write_bytes(orjson.dumps({**orjson.loads(path.read_bytes()), "v": 2}))
    return path, ("_", "claim", "w2", "thing")


@pytest.mark.parametrize("record", ["ask", "answer", "claim"])
def test_a_record_of_a_newer_looop_is_a_problem_and_never_rewritten(looop: Looop, record: str) -> None:
    path, move = plant_newer(looop, record)
    before = path.read_bytes()
    state_lists(looop, "written by a newer looop (schema v2; this one reads up to v1)")
    assert looop.state()["asks"] == looop.state()["claims"] == []
    one_line_error(looop.run(*move, code=9))
    if record == "claim":
        one_line_error(looop.run("_", "unclaim", "w1", "thing", code=9))
    assert path.read_bytes() == before
    assert record == "answer" or not (looop.data / "answers" / "w9-1.json").exists()


@pytest.mark.parametrize("v", ["2", 0, True, 1.5, None])
def test_an_ask_with_a_bad_schema_version_is_a_problem(looop: Looop, v: object) -> None:
    plant_ask(looop, v=v)
    state_lists(looop, "key 'v'")


def test_a_notification_with_a_bad_time_is_a_problem(looop: Looop) -> None:
    looop.run("_", "notify", "first")
    with (looop.data / "notifications.jsonl").open("a") as handle:
        handle.write('{"at":"x"}\n')
    looop.run("_", "notify", "after")
    state_lists(looop, "notifications.jsonl")
    assert [n["message"] for n in looop.state()["notifications"]] == ["first", "after"]


def plant_pulse(looop: Looop, **fields: object) -> None:
    looop.run("_", "state")
    pulse = looop.data / "sessions" / "pulse"
    pulse.mkdir(parents=True, exist_ok=True)
    status = {"id": "pulse", "pid": os.getpid(), "status": "up", "beats": 1, **fields}
    (pulse / "state.json").write_bytes(orjson.dumps(status))


def test_a_pulse_status_with_a_bad_start_is_a_problem(looop: Looop) -> None:
    plant_pulse(looop, started="x", last_beat_at=[], last_beat_duration="y", sensors={"ci": "z"})
    state_lists(looop, "started")


def plant_session(looop: Looop, session: str, **fields: object) -> None:
    directory = looop.data / "sessions" / session
    directory.mkdir(parents=True, exist_ok=True)
    record = {"id": session, "state": "exited", "alive": False, "started": 1.0, "ended": 2.0, **fields}
    (directory / "state.json").write_bytes(orjson.dumps(record))


@pytest.mark.parametrize("fields", [{"sandbox": "x"}, {"started": "x"}, {"ended": 1e300}])
def test_a_session_record_with_a_wrong_field_is_a_problem(looop: Looop, fields: dict[str, Any]) -> None:
    looop.run("_", "state")
    plant_session(looop, "w7", **fields)
    state_lists(looop, "w7")


def test_the_pulse_beats_on_past_a_session_record_it_cannot_understand(looop: Looop, up: Up) -> None:
    up.configure(interval="1s", session_ttl="1s")
    plant_session(looop, "w7", sandbox="x")
    plant_session(looop, "w8")  # an ordinary old session: reaped
    up.start()
    wait_for(lambda: not (looop.data / "sessions" / "w8").exists(), 30, "w8 reaped")
    beats = up.pulse()["beats"]
    up.wait_beats(beats + 3)
    assert up.pulse()["running"]
    state_lists(looop, "w7")
    assert (looop.data / "sessions" / "w7").exists()


def test_a_blocked_wait_survives_a_bad_ask_and_returns_on_the_next_change(looop: Looop, up: Up) -> None:
    up.configure()
    up.start()
    up.wait_beats(1)  # the first beat's readings are in: nothing else changes for a minute
    looop.run("_", "wait", "--json")
    waiter = looop.popen("_", "wait", "--json")
    plant_ask(looop, deadline=1e300)
    wait_for(lambda: any("deadline" in p for p in looop.state()["problems"]), what="the problem")
    assert waiter.poll() is None
    tmp = looop.data / "snapshots" / ".ci.txt.tmp"
    tmp.write_text("red\n")
    os.replace(tmp, looop.data / "snapshots" / "ci.txt")
    out, err = waiter.communicate(timeout=20)
    assert waiter.returncode == 0, err
    assert orjson.loads(out)["snapshots"]["ci"] == "red\n"
    assert up.pulse()["running"]


def test_a_notice_over_the_bound_is_refused_and_help_says_the_bound(looop: Looop) -> None:
    done = looop.run("_", "notify", input="x" * (64 * 1024 + 1), code=2)
    one_line_error(done)
    assert "64 KiB" in done.stderr
    assert "64 KiB" in looop.run("_", "notify", "--help").stdout
    looop.run("_", "notify", input="x" * 1000)


@pytest.mark.parametrize("at", [1e300, -1e300, math.nan, math.inf, 1e20, -1.0])
def test_a_timestamp_never_raises(at: float) -> None:
    assert journal.timestamp(at) == "invalid time"


class CountingPath(PosixPath):
    """A path whose opened files count the bytes read from them."""

    read_total = 0

    def open(self, *args: Any, **kwargs: Any) -> IO[Any]:  # type: ignore[override]
        handle = super().open(*args, **kwargs)
        outer = self

        class Counting:
            def __getattr__(self, name: str) -> Any:
                return getattr(handle, name)

            def __enter__(self) -> Counting:
                return self

            def __exit__(self, *exc: object) -> None:
                handle.close()

            def read(self, size: int = -1) -> bytes:
                data = handle.read(size)
                type(outer).read_total += len(data)
                return bytes(data)

        return Counting()  # type: ignore[return-value]


@pytest.mark.parametrize("shape", ["one huge line", "many lines"])
def test_tail_lines_reads_only_the_end_of_a_big_file(tmp_path: Path, shape: str) -> None:
    path = CountingPath(tmp_path / "big.jsonl")
    size = 20 * 1024 * 1024
    with open(path, "wb") as handle:
        if shape == "one huge line":
            handle.write(b"x" * size + b"\n" + b"last\n")
        else:
            line = b"y" * 99 + b"\n"
            handle.write(line * (size // len(line)) + b"last\n")
    CountingPath.read_total = 0
    lines = tail_lines(path, 10)
    assert lines[-1] == "last"
    assert CountingPath.read_total < 8 * 1024 * 1024
