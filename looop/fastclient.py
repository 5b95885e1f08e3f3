"""The root agent's hottest read, served by a running `up`: `_ state` without importing looop's
modules (or orjson) in the calling process. (`_ wait` blocks anyway: it takes the ordinary path.)

The `up` process gathers the state from the files on every request (nothing is cached) and
replies with a status line, `ok` or `error CODE MESSAGE`, then the output exactly as the verb
prints it, after blank keepalive lines while it waits. When no daemon answers (none there, or
silent for SILENCE seconds: stopped, wedged), `served` returns False and the caller does the
work itself from the files.
"""

from __future__ import annotations

import socket
import sys

from looop.locate import data_root, socket_file

SILENCE = 6.0  # as looop.control.SILENCE (not imported: this module stays light)


def served(op: str, as_json: bool) -> bool:
    """Print the reply to `op` (`state`) from the daemon; False if there is none.

    Exits with the daemon's code on an error reply."""
    root = data_root()
    request = f'{{"op":"{op}","format":"{"json" if as_json else "text"}"}}\n'
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
    status, _, output = bytes(reply).lstrip(b"\n").partition(b"\n")
    if status == b"ok":
        sys.stdout.buffer.write(output)
        sys.stdout.flush()
        return True
    if status.startswith(b"error "):
        code, _, message = status[6:].decode(errors="replace").partition(" ")
        sys.stderr.write(f"looop: {message}\n")
        sys.exit(int(code) if code.isdigit() else 1)
    return False  # the daemon went away (a down, a crash): the caller takes over
