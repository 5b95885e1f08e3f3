"""Notices for the human: `notifications.jsonl`, shown by `_ state`, and the optional `notify` hook.

A verb waits for the hook, so that the user sees its error; in the pulse (`hooks_off_thread`)
the hook runs on a thread of its own, for its callers are actors that must never wait for it."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypedDict

import orjson

from looop.base import fields
from looop.base.background import Background
from looop.base.errors import ConfigError, CorruptFile, InvalidInput
from looop.base.files import SCHEMA_VERSION, StoreLock, append_line, tail_lines
from looop.store import journal
from looop.store.childenv import child_env
from looop.store.config import load_config
from looop.store.paths import DataDir

HOOK_TIMEOUT = 15.0
MAX_NOTICE = 64 * 1024  # bytes of one notice: a tail of the notices stays cheap to read
KILL_GRACE = 1.0
HOOK_QUEUE = 32  # notices waiting for the hook in the pulse; the hook is skipped for more (journaled)
log = logging.getLogger("looop")
_off_thread: list[Background] = []  # the pulse's hook runner, while `hooks_off_thread` holds
# a notice as the state shows it (`recent`): its time as a timestamp; `from` is no name a class
# can declare
Notice = TypedDict("Notice", {"at": str, "from": str | None, "message": str, "wakes": bool})


@dataclass(frozen=True)
class Delivery:
    """What became of a notice: always recorded; `hook_error` says if the config hook failed;
    `hook_queued`: it is to run on the pulse's hook thread (which journals a failure)."""

    hook_ran: bool
    hook_error: str | None = None
    hook_queued: bool = False


@contextlib.contextmanager
def hooks_off_thread(drain: float) -> Iterator[None]:
    """Within (the pulse), `notify` queues the hook for a thread of its own and returns at once;
    at the end, the hooks still queued get up to `drain` seconds (the process is about to end)."""
    runner = Background("notify-hook", HOOK_QUEUE)
    _off_thread.append(runner)
    try:
        yield
    finally:
        _off_thread.remove(runner)
        left = runner.drain(drain)
        if left:
            log.warning("%s notify hook(s) not run or not finished: looop is stopping", left)


def notify(dd: DataDir, message: str, who: str | None = None, wakes: bool = True) -> Delivery:
    """Record `message` for the human, journal it, and pass it to the config's `notify` command
    (waited for, except in the pulse: see `hooks_off_thread`). `wakes` False: it tells of
    something that wakes the root agent by itself (a worker's end)."""
    if not message.strip():
        raise InvalidInput("the notice is empty")
    if len(message.encode(errors="replace")) > MAX_NOTICE:
        raise InvalidInput(f"the notice is {len(message.encode(errors='replace'))} bytes; at most 64 KiB")
    sender = who or journal.actor()
    entry = {"v": SCHEMA_VERSION, "at": time.time(), "from": sender, "message": message, "wakes": wakes}
    with StoreLock.for_path(dd.store_lock).held():
        append_line(dd.notifications, orjson.dumps(entry).decode())
        journal.record(dd, "notify", sender, message, who=sender)
    try:
        hook = load_config(dd.config).notify
    except ConfigError as exc:  # the notice is recorded: a broken config only costs the hook
        skipped = f"not run: {exc.message}"
        journal.record(dd, "notify hook", "config", skipped, who="looop")
        return Delivery(hook_ran=False, hook_error=skipped)
    if not hook:
        return Delivery(hook_ran=False)
    if not _off_thread:
        return Delivery(hook_ran=True, hook_error=_deliver(dd, hook, message))
    if _off_thread[-1].submit(functools.partial(_deliver, dd, hook, message)):
        return Delivery(hook_ran=False, hook_queued=True)
    skipped = f"not run: {HOOK_QUEUE} notices already wait for it"
    journal.record(dd, "notify hook", hook[0], skipped, who="looop")
    return Delivery(hook_ran=False, hook_error=skipped)


def _deliver(dd: DataDir, hook: list[str], message: str) -> str | None:
    """Run the hook with `message`; journal its failure, which is returned."""
    error = run_hook(hook, message)
    if error:
        journal.record(dd, "notify hook", hook[0], f"failed: {error}", who="looop")
    return error


def run_hook(argv: list[str], message: str) -> str | None:
    """Run the hook in a process group of its own; once its leader exits (or at HOOK_TIMEOUT)
    the whole group is ended, so that a child it left behind neither holds us nor lives on."""
    import subprocess

    from looop.base.processes import drain_and_end

    try:
        process = subprocess.Popen(
            [*argv, message],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
            start_new_session=True,
        )
    except FileNotFoundError:
        return f"{argv[0]}: command not found"
    except OSError as exc:
        return f"{argv[0]}: {exc.strerror}"
    assert process.stderr is not None
    err_fd = process.stderr.fileno()
    stderr = bytearray()

    def sink(fd: int, chunk: bytes) -> None:
        if fd == err_fd:
            stderr.extend(chunk[: max(0, 4096 - len(stderr))])

    timed_out = drain_and_end(process, time.monotonic() + HOOK_TIMEOUT, sink, KILL_GRACE)
    code = process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    if timed_out:
        return f"timed out after {HOOK_TIMEOUT:g}s"
    if code != 0:
        detail = journal.one_line(stderr.decode(errors="replace"), 160)
        return f"exit {code}" + (f": {detail}" if detail else "")
    return None


def recent(dd: DataDir, count: int = 10) -> tuple[list[Notice], list[str]]:
    """The latest notices, oldest first, and lines describing the ones that cannot be read."""
    found: list[Notice] = []
    problems: list[str] = []
    where = str(dd.notifications)
    for line in tail_lines(dd.notifications, count):
        try:
            entry = orjson.loads(line)
            if not isinstance(entry, dict):
                raise CorruptFile(where, "a line is not a JSON object")
            found.append(
                {
                    "at": journal.timestamp(fields.number(entry, "at", where, default=0.0)),
                    "from": fields.optional_text(entry, "from", where),
                    "message": fields.text(entry, "message", where, default=""),
                    "wakes": fields.flag(entry, "wakes", where, default=True),
                }
            )
        except orjson.JSONDecodeError:
            continue  # a line cut by a crash mid-append: nothing to tell
        except CorruptFile as problem:
            problems.append(problem.message)
    return found, problems
