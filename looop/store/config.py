"""`config.json`: the runner wiring, seeded inline when absent and validated on every load."""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypedDict, cast

import orjson

from looop.base.errors import ConfigError
from looop.base.fields import MAX_AMOUNT, finite
from looop.base.files import JSON_OPTIONS, atomic_write, why_untrusted

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION = 3650 * 86400.0  # 10 years: the longest timeout, ttl, deadline or interval anywhere


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as `90`, `90s`, `15m`, `12h`, `3d`, at most
    `MAX_DURATION`; raise ValueError naming the value (the CLI's exit 2, the config's exit 3)."""
    if isinstance(value, bool):
        raise ValueError("expected seconds or a duration such as 90s, 15m, 12h, 3d")
    if isinstance(value, int | float):
        seconds = finite(value, -math.inf, math.inf)
        if seconds is None:
            raise ValueError(f"{value!r} is not a finite number of seconds")
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 90s, 15m, 12h, 3d")
        unit = match.group(2).lower()
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {match.group(2)!r} in {value!r} (use s, m, h or d)")
        seconds = float(match.group(1)) * _UNITS[unit]
    else:
        raise ValueError("expected seconds or a duration such as 90s, 15m, 12h, 3d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if not seconds <= MAX_DURATION:  # also inf, from a string of very many digits
        raise ValueError(f"{value!r} is more than the limit of 3650d (10 years)")
    return seconds


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be more than 0 seconds")
    return seconds


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number >= 0")
    return value


def _argv(value: object) -> list[str]:
    if isinstance(value, str) and value.strip():
        argv = [value]
    elif isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        argv = list(value)
    else:
        raise ValueError("expected a non-empty string or a list of non-empty strings")
    if any("\0" in arg for arg in argv):
        raise ValueError("a command cannot hold a NUL byte")
    return argv


def _optional_argv(value: object) -> list[str] | None:
    return None if value is None else _argv(value)


def _optional_command(value: object) -> str | list[str] | None:
    return None if value is None else _command(value)


def _optional_duration(value: object) -> float | None:
    return None if value is None else _positive_duration(value)


def _budget(value: object) -> dict[str, dict[str, float]]:
    """`{"worker": {"usd": 2}, "fleet": {"usd": 20, "tokens": 5e6}}`: limits per unit."""
    if not isinstance(value, dict) or not set(value) <= {"worker", "fleet"}:
        raise ValueError('expected {"worker": {UNIT: LIMIT}, "fleet": {UNIT: LIMIT}}')
    limits: dict[str, dict[str, float]] = {}
    for scope, per_unit in value.items():
        if not isinstance(per_unit, dict) or not set(per_unit) <= {"usd", "tokens"}:
            raise ValueError(f"{scope}: expected limits by unit (usd, tokens)")
        for unit, limit in per_unit.items():
            if finite(limit, 0.0, MAX_AMOUNT) is None or limit <= 0:
                raise ValueError(f"{scope}.{unit}: expected a number > 0 and at most {MAX_AMOUNT:g}")
        limits[scope] = {unit: float(limit) for unit, limit in per_unit.items()}
    return limits


def _env(value: object) -> dict[str, str]:
    """`{"API_KEY": "...", "IS_SANDBOX": "1"}`: set in every worker's environment."""
    from looop.store.childenv import env_problem

    if not isinstance(value, dict):
        raise ValueError('expected {"NAME": "value", ...}')
    for key, item in value.items():
        problem = env_problem(key, item)
        if problem is not None:
            raise ValueError(problem)
    return dict(value)


def _positive_count(value: object) -> int:
    count = _count(value)
    if count == 0:
        raise ValueError("expected a whole number >= 1")
    return count


def _command(value: object) -> str | list[str]:
    argv = _argv(value)
    return value if isinstance(value, str) else argv


def _patterns(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("expected a list of regular expressions")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
    return list(value)


_DIALOG_NEEDS = {"name", "pattern", "question", "keys"}


def _texts(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("expected a list of non-empty strings")
    return list(value)


def _dialogs(value: object) -> list[dict[str, Any]]:
    shape = '[{"name": N, "pattern": REGEX, "question": TEXT, "keys": {ANSWER: KEYS}, "hooked": BOOL}]'
    if not isinstance(value, list):
        raise ValueError(f"expected {shape}")
    for dialog in value:
        if not isinstance(dialog, dict) or not _DIALOG_NEEDS <= set(dialog) <= _DIALOG_NEEDS | {"hooked"}:
            raise ValueError(f"expected {shape}")
        if not isinstance(dialog.get("hooked", False), bool):
            raise ValueError("a dialog's hooked is true or false")
        if not all(isinstance(dialog[k], str) and dialog[k] for k in ("name", "pattern", "question")):
            raise ValueError("a dialog's name, pattern and question are non-empty strings")
        _patterns([dialog["pattern"]])
        keys = dialog["keys"]
        if not isinstance(keys, dict) or not keys or not all(isinstance(v, str) and v for v in keys.values()):
            raise ValueError("a dialog's keys map each answer to the keys it types")
        if not all(answer.strip() and "," not in answer for answer in keys):
            raise ValueError("a dialog's answers are non-empty and hold no comma (they are its options)")
    return list(value)


def _keys(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError('expected the keys to type, such as "\\r"')
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _settings(value: object) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise ValueError("expected a JSON object (the agent's settings file) or null")
    return value


_PROFILE_PARTS: dict[str, Callable[[object], Any]] = {
    "command": _argv,
    "resume": _optional_argv,
    "settings": _settings,
    "dialogs": _dialogs,
    "blocked_markers": _patterns,
    "busy_markers": _texts,
    "screen_skip": _patterns,
    "submit": _keys,
    "bracketed_paste": _flag,
    "raw_mode": _flag,
}


def _profiles(value: object) -> dict[str, dict[str, Any]]:
    """`{"NAME": {PART: VALUE}}`: overrides of a built-in profile's parts, or a new profile."""
    if not isinstance(value, dict):
        raise ValueError('expected {"NAME": {"command": [...], ...}}')
    profiles: dict[str, dict[str, Any]] = {}
    for name, parts in value.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError(f"{name!r} is not a profile name (letters, digits, _ . -)")
        if not isinstance(parts, dict):
            raise ValueError(f"{name}: expected an object of parts ({', '.join(_PROFILE_PARTS)})")
        checked: dict[str, Any] = {}
        for part, part_value in parts.items():
            check = _PROFILE_PARTS.get(part)
            if check is None:
                raise ValueError(f"{name}: unknown part {part!r} (known: {', '.join(_PROFILE_PARTS)})")
            try:
                checked[part] = check(part_value)
            except ValueError as exc:
                raise ValueError(f"{name}.{part}: {exc}") from None
        profiles[name] = checked
    return profiles


def _key(
    check: Callable[[object], Any], default: Any = None, *, safety: bool = False, factory: Any = None
) -> Any:
    """A config key: its check, its default, and whether `_ state` shows it among the safety
    settings in force. Each key is declared once, here in `Config`; the loader and `_ state`
    read the declarations."""
    metadata = {"check": check, "safety": safety}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Config:
    """Validated settings with defaults filled in; each key declared once, with its check."""

    path: Path
    interactive: str | list[str] = _key(_command, "")  # "" until loaded: the agent on PATH
    interval: float = _key(_positive_duration, 60.0)
    session_ttl: float = _key(parse_duration, 3 * 86400.0, safety=True)
    sensor_timeout: float | None = _key(_positive_duration, None)
    notify: list[str] | None = _key(_optional_argv, None)
    max_restarts: int = _key(_count, 5)
    restart_period: float = _key(_positive_duration, 60.0)
    idle_after: float = _key(_positive_duration, 30.0)
    kill_grace: float = _key(_positive_duration, 5.0)
    stall_after: float = _key(_positive_duration, 15 * 60.0, safety=True)
    max_workers: int = _key(_positive_count, 10, safety=True)
    budget: dict[str, dict[str, float]] | None = _key(_budget, None, safety=True)
    resume: str | list[str] | None = _key(_optional_command, None)
    # asks without --timeout are escalated after this
    ask_deadline: float | None = _key(_optional_duration, 3600.0, safety=True)
    # leases taken without --ttl expire after this
    claim_ttl: float | None = _key(_optional_duration, None, safety=True)
    # overrides of agent profiles
    profiles: dict[str, dict[str, Any]] = _key(_profiles, factory=dict)
    # added to every worker's environment (`up`'s)
    env: dict[str, str] | None = _key(_env, None)

    @property
    def effective_sensor_timeout(self) -> float:
        """Config `sensor_timeout`, else the smaller of `interval` and 30 s."""
        return self.sensor_timeout if self.sensor_timeout is not None else min(self.interval, 30.0)


_KEYS: dict[str, Callable[[object], Any]] = {
    key.name: key.metadata["check"] for key in fields(Config) if "check" in key.metadata
}
_DEFAULTS = Config(path=Path("config.json"))


class SafetySettings(TypedDict):
    """The `Config` keys marked `safety`, as `_ state` shows them (`limits`)."""

    session_ttl: float
    stall_after: float
    max_workers: int
    budget: dict[str, dict[str, float]] | None
    ask_deadline: float | None
    claim_ttl: float | None


def safety_settings(config: Config | None) -> SafetySettings:
    """The fleet's safety settings in force (the defaults when the config is unreadable)."""
    shown = config or _DEFAULTS
    settings = {key.name: getattr(shown, key.name) for key in fields(Config) if key.metadata.get("safety")}
    return cast(SafetySettings, settings)  # the keys marked `safety` (`tests/test_state_shape.py`)


def default_interactive() -> str:
    """`claude` when it is on PATH, else `pi`."""
    import shutil

    return "claude" if shutil.which("claude") else "pi"


def seed_config(path: Path) -> None:
    """Write the starter config when none exists; an existing file is never overwritten."""
    if path.exists():
        return
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: its directory does not exist")
    starter = {"interactive": default_interactive(), "interval": "60s", "session_ttl": "3d"}
    atomic_write(path, orjson.dumps(starter, option=JSON_OPTIONS))


def setting(path: Path, name: str) -> Any:
    """One setting, or its default when the config cannot be read: a worker's verb must not fail
    because someone broke the config (`_ state` reports that)."""
    try:
        return getattr(load_config(path), name)
    except ConfigError:
        return getattr(Config, name)


def _open_directory(path: Path) -> str | None:
    """Why other users could replace the file at `path` through its directory, or None: a
    directory they may write into, unless it is sticky (as /tmp is) and the file ours."""
    try:
        info = os.stat(path.parent)
    except OSError:
        return None
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        return "in a directory other users can write"
    return None


def load_config(path: Path) -> Config:
    """Parse and validate `path`; every problem is one `ConfigError` naming the file and the key."""
    try:
        with path.open("rb") as handle:
            untrusted = why_untrusted(os.fstat(handle.fileno()))
            data = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if untrusted is None:  # nor may anyone else swap the file: its directory is checked too
        untrusted = _open_directory(path)
    if untrusted:  # its commands run as this user: only this user may choose them
        raise ConfigError(f"{path}: refusing a config {untrusted}")
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_") or key == "v":
            continue  # comments and the schema version
        check = _KEYS.get(key)
        if check is None:
            known = ", ".join(sorted(_KEYS))
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: {known}; prefix comments with _)")
        try:
            values[key] = check(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: key {key!r}: {exc}") from None
    if "interactive" not in values:
        values["interactive"] = default_interactive()
    return Config(path=path, **values)
