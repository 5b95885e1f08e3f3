"""The wire format of the pulse's control socket, shared by its client and its server: one JSON
object per line each way, over a private unix socket; blank lines are keepalives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from looop.store.locate import socket_file
from looop.store.paths import DataDir

MAX_LINE = 64 << 20
"""The longest request line, newline included: a worker's whole prompt travels in one."""
KEEPALIVE = 1.0
"""Seconds between the blank lines the daemon sends on every connection whose reply is pending."""


def socket_path(dd: DataDir) -> Path:
    """`.control.sock` in the data dir, or a private runtime dir when that path is too long."""
    return Path(socket_file(str(dd.root)))


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def too_large(size: int) -> str:
    return f"request too large: {size} bytes; the limit is {MAX_LINE}"
