"""The state a real `up` and real workers lead to has the shape `looop.world.state_shape` declares:
every key it must have, no key it does not declare, each value of its declared type."""

from __future__ import annotations

import types
import typing
from typing import Any

import orjson

from looop.world.state_shape import STATE_VERSION, State
from tests.conftest import AGENT, Looop, Up, ended, script, wait_for, worker


def mismatches(value: object, hint: Any, where: str) -> list[str]:
    """Where `value` is not of the type `hint` (the few kinds of types the state's declare)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {value!r:.60} is no object"]
        found = [f"{where}: no {key!r}" for key in sorted(hint.__required_keys__ - value.keys())]
        declared = hint.__required_keys__ | hint.__optional_keys__
        found += [f"{where}: {key!r} is not declared" for key in sorted(value.keys() - declared)]
        hints = typing.get_type_hints(hint)
        for key in sorted(value.keys() & declared):
            found += mismatches(value[key], hints[key], f"{where}.{key}")
        return found
    if hint is Any:
        return []
    if origin in (typing.Union, types.UnionType):
        return [] if any(not mismatches(value, arg, where) for arg in args) else [f"{where}: {value!r:.60}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r:.60} is no list"]
        return [m for i, item in enumerate(value) for m in mismatches(item, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r:.60} is no object"]
        return [m for key, item in value.items() for m in mismatches(item, args[1], f"{where}[{key!r}]")]
    if hint is None or hint is type(None):
        return [] if value is None else [f"{where}: {value!r:.60} is not null"]
    wanted = (int, float) if hint is float else hint  # JSON has one kind of number
    ok = isinstance(value, wanted) and (hint is bool or not isinstance(value, bool))
    return [] if ok else [f"{where}: {value!r:.60} is not {hint.__name__}"]


def assert_shaped(state: dict[str, Any]) -> None:
    assert mismatches(state, State, "state") == []
    assert state["v"] == STATE_VERSION


def test_the_checker_sees_a_missing_an_undeclared_and_a_mistyped_key() -> None:
    state = {"v": 1, "world_hash": 7, "extra": None}
    found = mismatches(state, State, "state")
    assert "state.world_hash: 7 is not str" in found
    assert "state: 'extra' is not declared" in found
    assert "state: no 'workers'" in found


def test_the_state_of_asking_failed_and_killed_workers_is_shaped_as_declared(looop: Looop, up: Up) -> None:
    up.configure(interactive=AGENT, kill_grace="1s", budget={"fleet": {"usd": 10}})
    looop.run("_", "sensor", "write", "ci", "#!/bin/sh\necho green\n")
    looop.run("_", "goal", "write", "ship", "ship it")
    looop.run("_", "notify", "hello")
    up.start()
    up.wait_beats(1)
    steps = ("cost 0.25", "claim db", "say compiling the thing", "ask Go on? | yes,no")
    looop.run("_", "worker", "start", "w1", script(*steps))
    looop.run("_", "worker", "start", "w2", script("say Error: the model refused", "crash 3"))
    wait_for(lambda: worker(looop, "w1").get("state") == "asking", what="w1's ask")
    wait_for(lambda: looop.state()["claims"] and worker(looop, "w1").get("cost"), what="w1's claim and spend")
    assert "error_line" in ended(looop, "w2")
    state = looop.state()
    assert state["asks"] and state["notifications"] and state["pulse"]["sensors"], state
    assert_shaped(state)
    looop.run("_", "worker", "kill", "w1")
    ended(looop, "w1")
    assert_shaped(looop.state())
    waited = orjson.loads(looop.run("_", "wait", "--json", "--all").stdout)
    assert "news" in waited
    assert_shaped(waited)
