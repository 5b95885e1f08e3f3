"""Where the data dir and the control socket are, as plain strings: the one place that decides,
cheap enough for `looop.world.light_client` (no pathlib objects, no dataclasses)."""

from __future__ import annotations

import os

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
SOCKET_NAME = ".control.sock"


def data_root() -> str:
    """`$LOOOP_DATA_DIR`, else `${XDG_STATE_HOME:-~/.local/state}/looop`, absolute."""
    explicit = os.environ.get("LOOOP_DATA_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(os.path.abspath(os.path.expanduser(state_home)), "looop")


def socket_file(root: str) -> str:
    """`.control.sock` in the data dir, or a private runtime dir when that path is too long."""
    inside = os.path.join(root, SOCKET_NAME)
    if len(os.fsencode(inside)) <= MAX_SOCKET_PATH:
        return inside
    import hashlib
    import tempfile

    base = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(), f"looop-{os.getuid()}")
    return os.path.join(base, hashlib.sha256(os.fsencode(root)).hexdigest()[:16] + ".sock")
