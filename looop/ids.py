"""Validation of every id that names a file: goals, sensors, sessions, asks, resources."""

from __future__ import annotations

import re

from looop.errors import InvalidInput

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_id(value: str, kind: str = "id") -> str:
    """Return `value` if it is a safe id, else raise `InvalidInput` before anything touches the disk."""
    if not ID_PATTERN.fullmatch(value) or value in (".", ".."):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidInput(
            f"invalid {kind} {shown!r}: use 1-64 characters from A-Z a-z 0-9 . _ -,"
            " starting with a letter or digit"
        )
    return value


def is_valid_id(value: str) -> bool:
    """True when `value` would pass `check_id`."""
    return bool(ID_PATTERN.fullmatch(value))
