"""Notices for the human: `notifications.jsonl`, shown by `_ state`, and the optional `notify` hook."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from looop import journal
from looop.config import load_config
from looop.errors import InvalidInput
from looop.fsio import SCHEMA_VERSION, StoreLock, append_line, tail_lines
from looop.paths import DataDir
from looop.procenv import child_env

HOOK_TIMEOUT = 15.0


@dataclass(frozen=True)
class Delivery:
    """What became of a notice: always recorded; `hook_error` says if the config hook failed."""

    hook_ran: bool
    hook_error: str | None = None


def notify(dd: DataDir, message: str, who: str | None = None) -> Delivery:
    """Record `message` for the human, journal it, and pass it to the config's `notify` command."""
    if not message.strip():
        raise InvalidInput("the notice is empty")
    sender = who or journal.actor()
    entry = {"v": SCHEMA_VERSION, "at": time.time(), "from": sender, "message": message}
    with StoreLock.for_path(dd.store_lock).held():
        append_line(dd.notifications, orjson.dumps(entry).decode())
        journal.record(dd, "notify", sender, message, who=sender)
    hook = load_config(dd.config).notify
    if not hook:
        return Delivery(hook_ran=False)
    error = run_hook(hook, message)
    if error:
        journal.record(dd, "notify hook", hook[0], f"failed: {error}", who="looop")
    return Delivery(hook_ran=True, hook_error=error)


def run_hook(argv: list[str], message: str) -> str | None:
    import subprocess

    try:
        done = subprocess.run(
            [*argv, message],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=HOOK_TIMEOUT,
            env=child_env(),
            check=False,
        )
    except FileNotFoundError:
        return f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return f"timed out after {HOOK_TIMEOUT:g}s"
    except OSError as exc:
        return f"{argv[0]}: {exc.strerror}"
    if done.returncode != 0:
        detail = journal.one_line(done.stderr.decode(errors="replace"), 160)
        return f"exit {done.returncode}" + (f": {detail}" if detail else "")
    return None


def recent(dd: DataDir, count: int = 10) -> list[dict[str, object]]:
    """The latest notices, oldest first."""
    found: list[dict[str, object]] = []
    for line in tail_lines(dd.notifications, count):
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            found.append(
                {
                    "at": journal.timestamp(float(entry.get("at", 0))),
                    "from": entry.get("from"),
                    "message": entry.get("message"),
                }
            )
    return found
