"""Preparing a worker's start: its request checked, its sandbox, prompt and argv made, before any
actor exists. Plain functions, run off the fleet actor's thread (a worktree runs git)."""

from __future__ import annotations

import os
import uuid

from looop.base.errors import ConfigError, Conflict, InvalidInput, NotFound
from looop.base.files import atomic_write, ensure_dir, replace, write_json
from looop.base.ids import check_session_id, check_text
from looop.daemon.session_messages import SessionSpec
from looop.store import journal
from looop.store.childenv import looop_bin, worker_env
from looop.store.config import Config, load_config
from looop.store.paths import DataDir
from looop.store.worker_records import WorkerRecord, read_record
from looop.workers.contract import RESUMED, WorkerFiles, agent_argv, worker_prompt
from looop.workers.profiles import filled_settings, profile_of
from looop.workers.sandbox import Sandbox, prepare
from looop.world.protocol import WorkerRequest, WorkerResume, WorkerStart

Launch = WorkerStart | WorkerResume
"""A request that starts a worker."""


def session_of(request: WorkerRequest) -> str:
    """The worker id a request names, checked."""
    return check_session_id(request["id"], "worker id")


def check_start(request: Launch) -> str:
    """The task of a start or resume request, refused whole when a worker's argv or files could
    not carry it (a request may come from any client, not only looop's CLI; its env is checked
    as it is parsed)."""
    task = check_text(request["prompt"], "the prompt")
    if request["op"] == "worker_start":
        for key, value in (("cwd", request["cwd"]), ("worktree", request["worktree"])):
            if value is not None:
                check_text(value, f"--{key}")
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
    request: Launch,
    resumed: WorkerRecord | None,
) -> SessionSpec:
    """Everything that can fail on bad input happens here, before any actor exists."""
    try:
        profile = profile_of(config.interactive, config.resume, config.profiles)
    except ConfigError as exc:
        raise ConfigError(f"{dd.config}: {exc.message}") from None
    if request["op"] == "worker_start":
        command = profile.command
        ensure_dir(dd.session(session))
        sandbox = prepare(dd, session, request["cwd"], request["worktree"])
        agent_session = str(uuid.uuid4())
    else:
        assert resumed is not None  # a resume comes with its record (see `resumable`)
        command = profile.resume or profile.command
        sandbox = Sandbox.restore(resumed.get("sandbox") or {"cwd": resumed.get("cwd")})
        agent_session = str(resumed["agent_session"])
        how = f"{resumed.get('state')}: {resumed.get('end_reason')}"
        task = RESUMED.format(how=how) + (f"\n{task.strip()}\n" if task.strip() else "")
    extra = {**(config.env or {}), **(request["env"] or {})}  # --env over the config's
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
