"""What the fleet (`looop.actors.fleet`) and a worker's session actor (`looop.actors.session`)
tell each other, and the spec the actor starts from (`looop.daemon.launch` prepares it).

Plain frozen dataclasses; `looop.actors.session` exports them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looop.base.processes import Ended
from looop.daemon.channels import Reply
from looop.workers.profiles import GENERIC, Profile


@dataclass(frozen=True)
class SessionSpec:
    """Everything needed to start one worker, prepared before its actor starts."""

    id: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    sandbox: dict[str, Any]
    idle_after: float
    kill_grace: float
    stall_after: float
    agent_session: str
    run: str  # this run of the session (`LOOOP_RUN_ID`); its asks carry it
    profile: Profile = GENERIC  # its dialogs, busy markers and screen chrome
    ask_deadline: float | None = None  # for the asks its dialogs become
    env_keys: tuple[str, ...] = ()  # set by the config's `env` and --env: journaled by name only


@dataclass(frozen=True)
class Spawned:
    """Told the fleet once: the agent runs as `pid`, or could not be started (`error`)."""

    session: str
    pid: int
    error: str | None = None


@dataclass(frozen=True)
class Finished:
    """Told the fleet once, when the worker's end is recorded: its final record, and what ending
    every process of its run took."""

    session: str
    final: dict[str, Any]
    swept: Ended | None


@dataclass(frozen=True)
class Terminate:
    """End every process of the worker's run: SIGTERM, then SIGKILL after the grace period.
    `spare` are left alone: the worker's own `_ kill`, which waits for the reply."""

    reason: str
    by: str
    spare: tuple[int, ...] = ()


@dataclass(frozen=True)
class Refresh:
    """Facts from other files changed: the worker's oldest pending ask, its claims, its spend.
    When the pending ask is new, `rendered` is called once the worker's screen shows what it
    printed before asking (the root agent is shown the ask after that)."""

    pending_ask: str | None
    claims: tuple[str, ...]
    cost: dict[str, float]
    rendered: Callable[[], None] | None = None


@dataclass(frozen=True)
class Tell:
    """`_ worker tell`: type `text` (checked: `profiles.check_message`) into the agent and submit
    it. `reply` hears once its submit key went, or why not (a dialog up, the worker ending, its
    text typed but not submitted); past the session's `TOLD_WAIT`, that it is
    still queued."""

    text: str
    by: str
    reply: Reply
