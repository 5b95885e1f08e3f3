"""The root agent's hottest read, served by a running `up`: `_ state` without importing looop's
modules (or orjson) in the calling process. (`_ wait` blocks anyway: it takes the ordinary path.)

It speaks the control socket's one protocol (see `looop.world.client`): one JSON request line; blank
keepalive lines while the daemon works; one JSON reply line, `{"ok": true, "output": TEXT}` or
`{"ok": false, "error": MESSAGE, "code": N}`. It parses them with the standard library's json,
which costs this process far less to import than orjson. The `up` process gathers the state from
the files on every request (nothing is cached). When no daemon answers (none there, or silent
for SILENCE seconds: stopped, wedged), `served` returns False and the caller does the work
itself from the files.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import TYPE_CHECKING

from looop.store.locate import data_root, socket_file

if TYPE_CHECKING:  # the wire's type, for mypy alone: importing the protocol would load orjson
    from looop.world.protocol import StateRequest

SILENCE = 6.0  # as looop.world.client.SILENCE (not imported: this module stays light)


def served(as_json: bool) -> bool:
    """Print the daemon's reply to `_ state` (`as_json`: `--json`); False if there is none.

    Exits with the daemon's code on an error reply."""
    root = data_root()
    asked: StateRequest = {"op": "state", "format": "json" if as_json else "text"}
    request = json.dumps(asked) + "\n"
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(SILENCE)  # each read: the daemon sends a keepalive line every second
    try:
        conn.connect(socket_file(root))
        conn.sendall(request.encode())
        reply = bytearray()
        while chunk := conn.recv(1 << 16):
            reply += chunk
    except OSError:
        return False
    finally:
        conn.close()
    try:
        message = json.loads(reply)  # keepalives are blank lines: whitespace to a JSON parser
    except ValueError:
        return False  # cut short: the daemon went away (a down, a crash); the caller takes over
    if not isinstance(message, dict):
        return False
    if message.get("ok") is True and isinstance(message.get("output"), str):
        sys.stdout.buffer.write(message["output"].encode())
        sys.stdout.flush()
        return True
    code = message.get("code")
    sys.stderr.write(f"looop: {message.get('error')}\n")
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 256 else 1)
