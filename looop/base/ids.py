"""Validation of input before anything happens: ids that name files (goals, sensors, sessions, asks,
resources), and text, which looop carries as UTF-8 without NUL bytes."""

from __future__ import annotations

import re
import unicodedata

from looop.base.errors import InvalidInput

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

UNDECODED = re.compile(r"\\udc([89a-f][0-9a-f])")  # how repr() shows an undecodable byte

PULSE_SESSION = "pulse"
"""`sessions/pulse/`: the `up` process's own records (its status, its budget notices)."""
RESERVED_SESSIONS = frozenset({PULSE_SESSION})
"""Session ids looop keeps for itself: no worker may have one."""


def check_id(value: str, kind: str = "id") -> str:
    """Return `value` if it is a safe id, else raise `InvalidInput` before anything touches the disk."""
    if not ID_PATTERN.fullmatch(value) or value in (".", ".."):
        raise InvalidInput(
            f"invalid {kind} {shown(value)}: use 1-64 characters from A-Z a-z 0-9 . _ -,"
            " starting with a letter or digit"
        )
    return value


def check_session_id(value: str, kind: str = "session id") -> str:
    """Return `value` if a worker may have it as its session id: a safe id, and not one of
    `RESERVED_SESSIONS`, else raise `InvalidInput`."""
    check_id(value, kind)
    if is_reserved(value):
        raise InvalidInput(f"{kind} {value!r} is reserved: looop keeps its own records in sessions/{value}/")
    return value


def is_reserved(value: str) -> bool:
    """True when `value` names one of `RESERVED_SESSIONS`, in any letter case (case-insensitive
    file systems, macOS's among them, alias them)."""
    return value.lower() in RESERVED_SESSIONS


def is_valid_id(value: str) -> bool:
    """True when `value` would pass `check_id`."""
    return bool(ID_PATTERN.fullmatch(value))


def text_problem(value: str) -> str | None:
    """Why `value` cannot be carried as text, else None: a NUL byte, or bytes that were not UTF-8
    (Python decodes argv, the environment and file names with surrogateescape: lone surrogates)."""
    if "\0" in value:
        return "holds a NUL byte"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid UTF-8"
    return None


def check_text(value: str, what: str) -> str:
    """Return `value` if it is carriable text (see `text_problem`), else raise `InvalidInput`."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInput(f"{what} {shown(value)} {problem}")
    return value


def decode_text(data: bytes, what: str) -> str:
    """`data` as UTF-8 text without NUL bytes, else `InvalidInput` naming the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    if "\0" in text:
        raise InvalidInput(f"{what} holds a NUL byte (byte {data.index(0)})")
    return text


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters shown as `^[`-style escapes (C1 ones as `?`) and format
    characters (Unicode category Cf: bidi overrides, zero-width spaces) as `\\u202e`: words from
    a worker or the root (an ask, a screen, a told message) must neither drive the operator's
    terminal (clear it, move the cursor, set its title) nor hide or reorder what a line shows."""
    text = _CONTROLS.sub(
        lambda m: f"^{chr((ord(m.group()) + 64) % 128)}" if ord(m.group()) < 0x80 else "?", text
    )
    if text.isascii():
        return text
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cf" else c for c in text)


def shown(value: str, limit: int = 80) -> str:
    """`value` quoted for an error line: undecodable bytes as \\xNN, long values cut."""
    cut = value if len(value) <= limit else value[: limit - 3] + "..."
    return UNDECODED.sub(r"\\x\1", repr(cut))
