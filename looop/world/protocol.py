"""The wire format of the pulse's control socket, shared by its client and its server: one JSON
object per line each way, over a private unix socket; blank lines are keepalives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeGuard

import orjson

from looop.base import fields
from looop.base.errors import CorruptFile, InvalidInput
from looop.store.childenv import env_problem
from looop.store.locate import socket_file
from looop.store.paths import DataDir

if TYPE_CHECKING:  # in `typing` from 3.11; only mypy reads it (the annotations stay strings)
    from typing_extensions import NotRequired

MAX_LINE = 64 << 20
"""The longest request line, newline included: a worker's whole prompt travels in one."""
KEEPALIVE = 1.0
"""Seconds between the blank lines the daemon sends on every connection whose reply is pending."""


def socket_path(dd: DataDir) -> Path:
    """`.control.sock` in the data dir, or a private runtime dir when that path is too long."""
    return Path(socket_file(str(dd.root)))


def encode(message: Mapping[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def too_large(size: int) -> str:
    return f"request too large: {size} bytes; the limit is {MAX_LINE}"


# requests, one TypedDict per op ------------------------------------------------------------------


class StateRequest(TypedDict):
    """`_ state`: the state rendered as `format` ("json" or "text")."""

    op: Literal["state"]
    format: str


class WaitRequest(TypedDict):
    """`_ wait`: woken once the world holds news since the world hash `since`."""

    op: Literal["wait"]
    since: str


class AnswerRequest(TypedDict):
    """A worker waiting for the answer to its ask `ask`."""

    op: Literal["answer"]
    ask: str


class PingRequest(TypedDict):
    op: Literal["ping"]


class ShutdownRequest(TypedDict):
    op: Literal["shutdown"]


class SensorRequest(TypedDict):
    """Run the sensor `name` now."""

    op: Literal["sensor"]
    name: str


class WorkerStart(TypedDict):
    op: Literal["worker_start"]
    id: str
    prompt: str
    cwd: str | None
    worktree: str | None
    queue: bool
    env: dict[str, str] | None


class WorkerResume(TypedDict):
    op: Literal["worker_resume"]
    id: str
    prompt: str
    env: dict[str, str] | None


class WorkerKill(TypedDict):
    """`_ worker kill` (`by` root) and `_ kill` (`by` the worker itself, from process `caller`,
    which the server sets from SO_PEERCRED where it can)."""

    op: Literal["worker_kill"]
    id: str
    by: NotRequired[str]
    reason: NotRequired[str]
    caller: NotRequired[int]
    grace: NotRequired[float]


class WorkerTell(TypedDict):
    op: Literal["worker_tell"]
    id: str
    message: str
    by: str


WorkerRequest = WorkerStart | WorkerResume | WorkerKill | WorkerTell
"""The worker verbs, which the fleet replies to."""
Request = (
    StateRequest | WaitRequest | AnswerRequest | PingRequest | ShutdownRequest | SensorRequest | WorkerRequest
)
WORKER_OPS = ("worker_start", "worker_resume", "worker_kill", "worker_tell")


def is_worker_verb(request: Request) -> TypeGuard[WorkerRequest]:
    return request["op"] in WORKER_OPS


# replies ---------------------------------------------------------------------------------------


class Failure(TypedDict):
    ok: Literal[False]
    error: str
    code: NotRequired[int]


class Started(TypedDict):
    """To worker_start and worker_resume."""

    ok: Literal[True]
    id: str
    pid: int
    cwd: str


class Killed(TypedDict):
    ok: Literal[True]
    id: str
    state: str | None
    how: NotRequired[str | None]  # the signal that ended it
    processes: NotRequired[int]
    already: NotRequired[bool]


class Told(TypedDict):
    ok: Literal[True]
    id: str
    characters: int
    submitted: bool


class Woken(TypedDict):
    """To wait: the world hash of the news."""

    ok: Literal[True]
    world_hash: str


class Answered(TypedDict):
    ok: Literal[True]
    ask: str


class Pong(TypedDict):
    ok: Literal[True]
    pid: int


class Stopping(TypedDict):
    ok: Literal[True]
    pid: int
    stopping: list[str]


class Served(TypedDict):
    """To state: the rendered state."""

    ok: Literal[True]
    output: str


# parsing, once at the server's edge ------------------------------------------------------------


class UnknownOp(InvalidInput):
    """A request whose `op` no handler knows."""


def parse_request(raw: Mapping[str, Any]) -> Request:
    """`raw` as the request its `op` names, each field's type checked (keys it does not know are
    dropped; a key a client may leave out gets the default the server always gave it).

    `UnknownOp` for an unknown op, else `InvalidInput` naming the field."""
    op = raw.get("op")
    parse = _PARSERS.get(op) if isinstance(op, str) else None
    if parse is None:
        raise UnknownOp(f"unknown op {op!r}")
    try:
        return parse(raw, f"the {op} request")
    except CorruptFile as exc:  # the field readers' error, for a file: here it is bad input
        raise InvalidInput(exc.message) from None


def _env(raw: Mapping[str, Any]) -> dict[str, str]:
    env = raw.get("env")
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise InvalidInput("--env: expected KEY=VALUE")
    for key, value in env.items():
        problem = env_problem(key, value)
        if problem is not None:
            raise InvalidInput(f"--env {problem}")
    return env


def _start(raw: Mapping[str, Any], where: str) -> WorkerStart:
    return {
        "op": "worker_start",
        "id": fields.text(raw, "id", where),
        "prompt": fields.text(raw, "prompt", where, ""),
        "cwd": fields.optional_text(raw, "cwd", where),
        "worktree": fields.optional_text(raw, "worktree", where),
        "queue": fields.flag(raw, "queue", where),
        "env": _env(raw),
    }


def _resume(raw: Mapping[str, Any], where: str) -> WorkerResume:
    prompt = fields.text(raw, "prompt", where, "")
    return {"op": "worker_resume", "id": fields.text(raw, "id", where), "prompt": prompt, "env": _env(raw)}


def _kill(raw: Mapping[str, Any], where: str) -> WorkerKill:
    request: WorkerKill = {"op": "worker_kill", "id": fields.text(raw, "id", where)}
    if (by := fields.optional_text(raw, "by", where)) is not None:
        request["by"] = by
    if (reason := fields.optional_text(raw, "reason", where)) is not None:
        request["reason"] = reason
    if (grace := fields.optional_number(raw, "grace", where)) is not None:
        request["grace"] = grace
    if (caller := raw.get("caller")) is not None:
        if isinstance(caller, bool) or not isinstance(caller, int):
            raise InvalidInput(f"{where}: key 'caller' is {caller!r}, expected a process id")
        request["caller"] = caller
    return request


def _tell(raw: Mapping[str, Any], where: str) -> WorkerTell:
    message, by = fields.text(raw, "message", where, ""), fields.optional_text(raw, "by", where)
    return {"op": "worker_tell", "id": fields.text(raw, "id", where), "message": message, "by": by or "root"}


_PARSERS: dict[str, Callable[[Mapping[str, Any], str], Request]] = {
    "state": lambda raw, where: {"op": "state", "format": fields.text(raw, "format", where, "json")},
    "wait": lambda raw, where: {"op": "wait", "since": fields.text(raw, "since", where, "")},
    "answer": lambda raw, where: {"op": "answer", "ask": fields.text(raw, "ask", where)},
    "ping": lambda raw, where: {"op": "ping"},
    "shutdown": lambda raw, where: {"op": "shutdown"},
    "sensor": lambda raw, where: {"op": "sensor", "name": fields.text(raw, "name", where)},
    "worker_start": _start,
    "worker_resume": _resume,
    "worker_kill": _kill,
    "worker_tell": _tell,
}
