"""Typed reads of fields of the JSON records looop writes: a wrong type or an out-of-range number
is a `CorruptFile` naming the file, the key and the value, never a crash further on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from looop.base.errors import CorruptFile, NewerSchema
from looop.base.files import SCHEMA_VERSION

MAX_TIME = 253402300799.0  # 9999-12-31T23:59:59Z: the last second a timestamp can show
MAX_AMOUNT = 1e15  # the largest spend (usd or tokens) one record or one limit may state


def _bad(where: str, key: str, value: object, expected: str) -> CorruptFile:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    return CorruptFile(where, f"key {key!r} is {shown}, expected {expected}")


def finite(value: object, lo: float, hi: float) -> float | None:
    """`value` as a float when it is a real number in [lo, hi], else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and lo <= number <= hi else None


def number(
    raw: Mapping[str, Any],
    key: str,
    where: str,
    *,
    lo: float = 0.0,
    hi: float = MAX_TIME,
    default: float | None = None,
) -> float:
    """The number at `key` (a timestamp by default: 0 to `MAX_TIME`); `default` when it is absent
    (required when no default is given)."""
    if key not in raw and default is not None:
        return default
    value = raw.get(key)
    found = finite(value, lo, hi)
    if found is None:
        raise _bad(where, key, value, f"a number from {lo:g} to {hi:g}")
    return found


def optional_number(
    raw: Mapping[str, Any], key: str, where: str, *, lo: float = 0.0, hi: float = MAX_TIME
) -> float | None:
    """Like `number`, but absent or null is None."""
    return None if raw.get(key) is None else number(raw, key, where, lo=lo, hi=hi)


def text(raw: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    """The string at `key`; `default` when absent (required when no default is given)."""
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise _bad(where, key, value, "a string")
    return value


def optional_text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    return None if raw.get(key) is None else text(raw, key, where)


def texts(raw: Mapping[str, Any], key: str, where: str) -> list[str] | None:
    """A list of strings, or None when absent or null."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad(where, key, value, "a list of strings")
    return list(value)


def flag(raw: Mapping[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(where, key, value, "true or false")
    return value


def mapping(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    """A JSON object, or None when absent or null."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(where, key, value, "an object")
    return value


def version(raw: Mapping[str, Any], where: str, known: int = SCHEMA_VERSION) -> int:
    """The record's schema version `v`: 1 when absent (written before looop stamped one); one past
    `known` is `NewerSchema`, for its fields may mean what this looop would misread."""
    value = raw.get("v", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(where, "v", value, "a schema version (a whole number from 1)")
    if value > known:
        raise NewerSchema(where, f"written by a newer looop (schema v{value}; this one reads up to v{known})")
    return value
