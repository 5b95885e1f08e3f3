"""The one owner of data-dir paths: every file looop reads or writes is named here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from looop.base.ids import PULSE_SESSION as PULSE_SESSION  # defined with the other reserved ids
from looop.base.ids import check_id
from looop.store.locate import SOCKET_NAME, data_root

JOURNAL = "journal.md"
LOG = "up.log"
TRANSCRIPT = "transcript.log"
SCREEN = "screen.txt"
ROTATED = ".1"  # a log's previous part: NAME.1
# Written often, read by no one who waits: the journal, logs, worker output (and every dot file).
# (notifications.jsonl is not: a notice from looop itself wakes the root agent.)
NOISE = frozenset({JOURNAL, LOG, TRANSCRIPT, TRANSCRIPT + ROTATED, SCREEN})


def rotated(path: Path) -> Path:
    """Where a log's previous part is kept when it is rotated (`NAME.1`)."""
    return path.with_name(path.name + ROTATED)


def default_data_dir() -> Path:
    """`$LOOOP_DATA_DIR`, else `${XDG_STATE_HOME:-~/.local/state}/looop`."""
    return Path(data_root())


@dataclass(frozen=True)
class DataDir:
    """Paths inside one data dir. Creating the object touches nothing; see `bootstrap.open_data_dir`."""

    root: Path

    @classmethod
    def from_env(cls) -> DataDir:
        return cls(default_data_dir())

    @property
    def config(self) -> Path:
        explicit = os.environ.get("LOOOP_CONFIG")
        return Path(explicit).expanduser().absolute() if explicit else self.root / "config.json"

    @property
    def playbook(self) -> Path:
        return self.root / "PLAYBOOK.md"

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    @property
    def notifications(self) -> Path:
        return self.root / "notifications.jsonl"

    @property
    def goals(self) -> Path:
        return self.root / "goals"

    @property
    def goals_archive(self) -> Path:
        return self.goals / "archive"

    @property
    def sensors(self) -> Path:
        return self.root / "sensors"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def asks(self) -> Path:
        return self.root / "asks"

    @property
    def answers(self) -> Path:
        return self.root / "answers"

    @property
    def prompts(self) -> Path:
        return self.root / "prompts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def claims(self) -> Path:
        return self.root / "claims"

    @property
    def sessions(self) -> Path:
        return self.root / "sessions"

    @property
    def daemon_lock(self) -> Path:
        """The single-instance flock of the `up` process."""
        return self.root / ".lock"

    @property
    def daemon_pid(self) -> Path:
        """Who holds `daemon_lock`: written by the holder right after it takes the flock (a file
        of its own, since closing any descriptor of the lock file would drop the flock)."""
        return self.root / ".up.pid"

    @property
    def store_lock(self) -> Path:
        """The inter-process lock every mutation takes."""
        return self.root / ".store.lock"

    @property
    def last_tick_hash(self) -> Path:
        """The root agent's cursor: the world hash its last `_ wait` returned."""
        return self.root / ".last-tick-hash"

    @property
    def cursors(self) -> Path:
        """Named cursors (`_ wait --cursor NAME`), and the facts behind recent world hashes."""
        return self.root / "cursors"

    def cursor(self, name: str | None) -> Path:
        """The cursor file of reader `name`; None is the root agent's."""
        return self.last_tick_hash if name is None else self.cursors / check_id(name, "cursor name")

    @property
    def seen(self) -> Path:
        """The facts behind recent world hashes (a dot name: no cursor can be called that)."""
        return self.cursors / ".seen"

    def seen_facts(self, world_hash: str) -> Path:
        """The facts behind a world hash looop printed (see `looop.store.cursors`)."""
        return self.seen / f"{check_id(world_hash, 'world hash')}.json"

    @property
    def seeded_marker(self) -> Path:
        return self.root / ".seeded"

    @property
    def socket(self) -> Path:
        return self.root / SOCKET_NAME

    @property
    def log(self) -> Path:
        return self.root / LOG

    @property
    def budget_notices(self) -> Path:
        """The budget crossings already notified, so a restart of `up` repeats none."""
        return self.session(PULSE_SESSION) / "budget.json"

    @property
    def wrapper(self) -> Path:
        """`bin/looop`: a launcher for this install, written when no `looop` executable is found."""
        return self.root / "bin" / "looop"

    def goal(self, goal_id: str) -> Path:
        return self.goals / f"{check_id(goal_id, 'goal id')}.md"

    def sensor(self, name: str) -> Path:
        return self.sensors / f"{check_id(name, 'sensor name')}.sh"

    def ask(self, ask_id: str) -> Path:
        return self.asks / f"{check_id(ask_id, 'ask id')}.json"

    def answer(self, ask_id: str) -> Path:
        return self.answers / f"{check_id(ask_id, 'ask id')}.json"

    def claim(self, resource: str) -> Path:
        return self.claims / f"{check_id(resource, 'resource')}.json"

    def session(self, session_id: str) -> Path:
        return self.sessions / check_id(session_id, "session id")

    def session_state(self, session_id: str) -> Path:
        return self.session(session_id) / "state.json"

    def session_costs(self, session_id: str) -> Path:
        return self.session(session_id) / "cost.jsonl"

    def transcript(self, session_id: str) -> Path:
        return self.session(session_id) / TRANSCRIPT

    def previous_transcript(self, session_id: str) -> Path:
        return rotated(self.transcript(session_id))

    def screen(self, session_id: str) -> Path:
        return self.session(session_id) / SCREEN

    def contract(self, session_id: str) -> Path:
        """The worker contract alone, for agents that take it as a system prompt file."""
        return self.session(session_id) / "contract.md"

    def agent_settings(self, session_id: str) -> Path:
        """The settings file a profile writes for this worker's agent (Claude Code's `--settings`)."""
        return self.session(session_id) / "agent-settings.json"

    def last_verb(self, session_id: str) -> Path:
        """Touched by every verb a worker calls (stall detection)."""
        return self.session(session_id) / ".last-verb"

    def worktree(self, session_id: str) -> Path:
        return self.session(session_id) / "worktree"

    def prompt(self, session_id: str) -> Path:
        return self.prompts / f"{check_id(session_id, 'session id')}.md"

    def directories(self) -> list[Path]:
        """Every directory a seeded data dir has."""
        return [
            self.root,
            self.goals,
            self.goals_archive,
            self.sensors,
            self.snapshots,
            self.asks,
            self.answers,
            self.prompts,
            self.reports,
            self.claims,
            self.sessions,
        ]
