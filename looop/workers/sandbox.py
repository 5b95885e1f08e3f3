"""Where a worker works: a plain directory, or a git worktree of its own (run under `box` when
`box` is on PATH, for isolation on top of the separate checkout)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from looop.base.errors import InvalidInput, LooopError
from looop.store.childenv import child_env
from looop.store.paths import DataDir

GIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sandbox:
    """A worker's working directory and, for `box`, the argv prefix that runs the agent in it."""

    cwd: Path
    kind: str  # "dir", "worktree" or "box"
    repo: Path | None = None
    branch: str | None = None
    wrapper: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cwd": str(self.cwd),
            "repo": None if self.repo is None else str(self.repo),
            "branch": self.branch,
        }

    @classmethod
    def restore(cls, public: dict[str, Any]) -> Sandbox:
        """The sandbox a session recorded (`public()`), to resume it where it worked."""
        cwd = Path(str(public.get("cwd", ".")))
        if not cwd.is_dir():
            raise InvalidInput(f"its sandbox {cwd} is gone")
        repo = public.get("repo")
        kind = str(public.get("kind", "dir"))
        box = shutil.which("box", path=child_env().get("PATH")) if kind == "box" else None
        return cls(
            cwd,
            kind,
            None if repo is None else Path(str(repo)),
            public.get("branch"),
            [box, "run"] if box else [],
        )

    def note(self) -> str:
        """What the worker contract says about it."""
        if self.repo is None:
            return f", {self.cwd}"
        return (
            f", {self.cwd}: a git worktree of {self.repo} on branch {self.branch}; commit your work"
            " there and touch no other checkout"
        )


def prepare(dd: DataDir, session: str, cwd: str | None, repo: str | None) -> Sandbox:
    """Resolve `--cwd`, or create (or reuse) the worktree for `--worktree REPO`."""
    if cwd is not None and repo is not None:
        raise InvalidInput("give --cwd or --worktree, not both")
    if repo is None:
        directory = Path(cwd or ".").expanduser().resolve()
        if not directory.is_dir():
            raise InvalidInput(f"--cwd {cwd}: no such directory")
        return Sandbox(directory, "dir")
    top = Path(
        _git(Path(repo).expanduser(), "rev-parse", "--show-toplevel", what=f"{repo} is not a git repository")
    )
    path = dd.worktree(session)
    branch = f"looop/{session}"
    if not (path / ".git").exists():
        exists = _git_ok(top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        _git(top, "worktree", "prune", what="git worktree prune failed")
        if exists:
            _git(top, "worktree", "add", str(path), branch, what=f"cannot check out {branch}")
        else:
            _git(top, "worktree", "add", "-b", branch, str(path), what=f"cannot create {branch}")
    box = shutil.which("box", path=child_env().get("PATH"))
    if box:
        return Sandbox(path, "box", top, branch, [box, "run"])
    return Sandbox(path, "worktree", top, branch)


def remove_worktree(repo: Path, checkout: Path) -> str | None:
    """`git worktree remove --force` of a checkout looop made (its branch keeps its commits); it
    may take up to GIT_TIMEOUT, so never on an actor's thread. Why it failed, else None."""
    try:
        done = _run_git(repo, "worktree", "remove", "--force", str(checkout))
    except LooopError as exc:
        return exc.message
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return None


def _run_git(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=GIT_TIMEOUT,
            env=child_env(),
            check=False,
        )
    except FileNotFoundError:
        raise LooopError("--worktree needs git, which is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise LooopError(f"git {args[0]} did not finish within {GIT_TIMEOUT:g}s") from None


def _git(where: Path, *args: str, what: str) -> str:
    done = _run_git(where, *args)
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [""])[-1]
        raise InvalidInput(f"{what}: {detail}" if detail else what)
    return done.stdout.strip()


def _git_ok(where: Path, *args: str) -> bool:
    return _run_git(where, *args).returncode == 0
