"""Preparing a worker's start: its request checked, its sandbox, prompt and argv made, before any
actor exists. Plain functions, run off the fleet actor's thread (a worktree runs git)."""

from __future__ import annotations

import os
import uuid
from typing import Any

from looop.base.errors import ConfigError, Conflict, InvalidInput, NotFound
from looop.base.files import atomic_write, ensure_dir, replace, write_json
from looop.base.ids import check_session_id, check_text
from looop.daemon.session_messages import SessionSpec
from looop.store import journal
from looop.store.childenv import env_problem, looop_bin, worker_env
from looop.store.config import Config, load_config
from looop.store.paths import DataDir
from looop.store.worker_records import WorkerRecord, read_record
from looop.workers.contract import RESUMED, WorkerFiles, agent_argv, worker_prompt
from looop.workers.profiles import filled_settings, profile_of
from looop.workers.sandbox import Sandbox, prepare


def session_of(request: dict[str, Any]) -> str:
    """The worker id a request names, checked."""
    return check_session_id(str(request.get("id", "")), "worker id")


def check_start(request: dict[str, Any]) -> str:
    """The task of a start or resume request, refused whole when a worker's argv or files could
    not carry it (a request may come from any client, not only looop's CLI)."""
    task = check_text(str(request.get("prompt", "")), "the prompt")
    for key in ("cwd", "worktree"):
        if request.get(key) is not None:
            check_text(str(request[key]), f"--{key}")
    env = request.get("env")
    if env is not None:
        if not isinstance(env, dict):
            raise InvalidInput("--env: expected KEY=VALUE")
        for key, value in env.items():
            problem = env_problem(key, value)
            if problem is not None:
                raise InvalidInput(f"--env {problem}")
    return task


def resumable(dd: DataDir, session: str) -> WorkerRecord:
    """The record of an ended worker that `_ worker resume` can start again, or why not."""
    record = read_record(dd, session)
    if record is None:
        raise NotFound(f"no worker {session!r} (see `looop status`)")
    if not record.get("agent_session"):
        raise Conflict(f"worker {session} has no agent session id to resume")
    config = load_config(dd.config)
    if profile_of(config.interactive, config.resume, config.profiles).resume is None:
        raise InvalidInput("the config has no `resume` command (see `looop --help`)")
    return record


def prepare_start(
    dd: DataDir,
    session: str,
    task: str,
    config: Config,
    request: dict[str, Any],
    resumed: WorkerRecord | None,
) -> SessionSpec:
    """Everything that can fail on bad input happens here, before any actor exists."""
    try:
        profile = profile_of(config.interactive, config.resume, config.profiles)
    except ConfigError as exc:
        raise ConfigError(f"{dd.config}: {exc.message}") from None
    if resumed is None:
        command = profile.command
        ensure_dir(dd.session(session))
        cwd, repo = request.get("cwd"), request.get("worktree")
        sandbox = prepare(dd, session, None if cwd is None else str(cwd), None if repo is None else str(repo))
        agent_session = str(uuid.uuid4())
    else:
        command = profile.resume or profile.command
        sandbox = Sandbox.restore(resumed.get("sandbox") or {"cwd": resumed.get("cwd")})
        agent_session = str(resumed["agent_session"])
        how = f"{resumed.get('state')}: {resumed.get('end_reason')}"
        task = RESUMED.format(how=how) + (f"\n{task.strip()}\n" if task.strip() else "")
    extra = {**(config.env or {}), **(request.get("env") or {})}  # --env over the config's
    if resumed is not None:
        missing = profile.missing_conversation({**os.environ, **extra}, sandbox.cwd, agent_session)
        if missing is not None:
            raise Conflict(
                f"worker {session} has no conversation to resume ({missing} does not exist: its"
                " agent ended before it began one); start it again with `_ worker start`"
            )
    looop = looop_bin(dd)
    prompt = worker_prompt(session, task, dd.root, dd.reports, looop, sandbox.note())
    files = WorkerFiles(
        dd.prompt(session), dd.contract(session), dd.agent_settings(session), dd.session(session)
    )
    argv = sandbox.wrapper + agent_argv(command, prompt, files, agent_session)
    atomic_write(dd.prompt(session), prompt.full.encode())
    atomic_write(dd.contract(session), prompt.contract.encode())
    settings = filled_settings(profile, looop, session)
    if settings is not None:
        write_json(dd.agent_settings(session), settings)
    run = uuid.uuid4().hex  # this run's own: an ask of an earlier run of the id is not its
    if read_record(dd, session) is not None:
        transcript, previous = dd.transcript(session), dd.previous_transcript(session)
        if transcript.exists():
            replace(transcript, previous)
        journal.record(
            dd,
            "worker start",
            session,
            ("resuming it" if resumed else "reusing an ended session's id")
            + f"; its previous transcript is now {previous.name}",
            who="looop",
        )
    return SessionSpec(
        session,
        argv,
        sandbox.cwd,
        worker_env(dd, session, run, extra),
        sandbox.public(),
        config.idle_after,
        config.kill_grace,
        config.stall_after,
        agent_session,
        run,
        profile,
        config.ask_deadline,
        tuple(extra),
    )
