"""`config.json` errors name the file and the key in one line; durations take units."""

from __future__ import annotations

import pytest

from looop.store.config import parse_duration
from tests.conftest import Looop


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(45, 45.0), ("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("12h", 43200.0), ("3d", 259200.0)],
)
def test_durations_accept_seconds_and_units(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["5x", "m", "-3s", True, [], "1.5.2h"])
def test_bad_durations_are_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"interval": true}', "key 'interval'"),
        ('{"interval": "5x"}', "unknown unit 'x'"),
        ('{"session_ttl": "soon"}', "key 'session_ttl'"),
        ('{"interactive": 3}', "key 'interactive'"),
        ('{"notify": [1]}', "key 'notify'"),
        ('{"intervall": "60s"}', "unknown key 'intervall'"),
        ('{"env": ["A=1"]}', "key 'env': expected {"),
        ('{"env": {"A": 1}}', "key 'env': A: expected a string value"),
        ('{"env": {"1A": "x"}}', "key 'env': '1A' is not a variable name"),
        ('{"env": {"A": "x\\u0000y"}}', "key 'env': A: a value cannot hold a NUL byte"),
        ('{"env": {"LOOOP_BIN": "/bin/true"}}', "key 'env': LOOOP_BIN: looop sets its own LOOOP_* variables"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_a_bad_config_is_one_line_naming_file_and_key(looop: Looop, content: str, expected: str) -> None:
    looop.run("_", "state")
    (looop.data / "config.json").write_text(content)
    done = looop.run("_", "notify", "hello", code=3)
    assert done.stderr.count("\n") == 1, done.stderr
    assert str(looop.data / "config.json") in done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_state_reports_a_bad_config_instead_of_failing(looop: Looop) -> None:
    looop.run("_", "state")
    (looop.data / "config.json").write_text('{"interval": "5x"}')
    problems = looop.state()["problems"]
    assert any("interval" in p for p in problems)


def test_comment_keys_and_argv_commands_are_accepted(looop: Looop) -> None:
    looop.run("_", "state")
    (looop.data / "config.json").write_text(
        '{"_why": "a comment", "interactive": ["claude", "--model", "opus"],'
        ' "interval": 30, "notify": ["true"]}'
    )
    looop.run("_", "notify", "hello")
    assert looop.state()["problems"] == []
