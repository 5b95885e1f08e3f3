"""The real agent CLIs the suite drives: pinned npm packages installed once into a cache dir.

`python3 -m tests.agent_clis` installs them all with the standard library alone (`.ci/run` does,
so a failing npm shows early); the `agent_cli` fixture in conftest.py installs on first use and
skips, loudly, only when npm or its registry cannot be reached.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AgentPackage:
    """One agent CLI: its npm package, the pinned version, and the command it installs."""

    name: str  # what the tests call it: "claude", "claude-newest", "pi"
    package: str
    version: str
    command: str  # the program it installs, which is also the name of its looop profile
    node: AgentPackage | None = None  # the node it needs, when not the machine's: first on its PATH

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def directory(self) -> Path:
        return cache_dir() / f"{self.package.lstrip('@').replace('/', '+')}-{self.version}"

    @property
    def bin_dir(self) -> Path:
        return self.directory / "node_modules" / ".bin"

    @property
    def executable(self) -> Path:
        return self.bin_dir / self.command


# node itself, from npm (one package per platform): for the agents that need a newer one
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64"}.get(
    platform.machine().lower(), platform.machine()
)
NODE_22 = AgentPackage("node-22", f"node-linux-{_ARCH}", "22.23.5", "node")

# Claude Code 2.1.197 is the newest that runs on node 20, the oldest the claude profile supports;
# "claude-newest" is the newest release (it needs node >= 22): profiles break when an agent
# changes its screens, so the claude profile's tests run against both. pi 0.73.1 needs node >= 20.6.
PACKAGES = {
    "claude": AgentPackage("claude", "@anthropic-ai/claude-code", "2.1.197", "claude"),
    "claude-newest": AgentPackage("claude-newest", "@anthropic-ai/claude-code", "2.1.332", "claude", NODE_22),
    "pi": AgentPackage("pi", "@mariozechner/pi-coding-agent", "0.73.1", "pi"),
}
CLAUDES = ("claude", "claude-newest")  # the Claude Code versions the claude profile is tested with


def program(agent: str) -> str:
    """The program (and looop profile) an agent of PACKAGES runs: "claude" for both Claude Codes."""
    return PACKAGES[agent].command


class Unavailable(Exception):
    """npm or its registry cannot be reached: the tests that need the CLI are skipped, loudly."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "looop-tests" / "agents"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive fcntl lock on `path` (released when the holder dies): one installer at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def installed(agent: AgentPackage) -> bool:
    return agent.executable.exists() and (agent.node is None or installed(agent.node))


def install(agent: AgentPackage, timeout: float = 600) -> Path:
    """The agent's executable, installed into the cache first if it is not there yet: into a temp
    dir that is renamed into place once npm succeeded, so a half install is never used."""
    if installed(agent):
        return agent.executable
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable(f"npm is not on PATH: cannot install {agent.spec}")
    env = dict(os.environ)
    if agent.node is not None:  # first, outside the lock (flock: a second fd of ours would wait on it)
        env["PATH"] = os.pathsep.join([str(install(agent.node, timeout).parent), env.get("PATH", "")])
    with _locked(cache_dir() / ".lock"):
        if installed(agent):
            return agent.executable
        temp = Path(tempfile.mkdtemp(prefix=f".{agent.name}-", dir=cache_dir()))
        try:
            try:
                done = subprocess.run(
                    [
                        npm,
                        "install",
                        "--prefix",
                        str(temp),
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "--fetch-retries=1",  # an unreachable registry fails in about 30 s, not 70
                        agent.spec,
                    ],
                    stdin=subprocess.DEVNULL,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                raise Unavailable(f"npm install {agent.spec} took over {timeout:.0f}s") from None
            if done.returncode != 0:
                lines = [
                    line.removeprefix("npm error").strip()
                    for line in (done.stderr + done.stdout).splitlines()
                ]
                said = [
                    line for line in lines if line.startswith(("code ", "FetchError", "request to", "404"))
                ]
                raise Unavailable(f"npm install {agent.spec} failed: {'; '.join(said or lines[:2])}")
            if not (temp / "node_modules" / ".bin" / agent.command).exists():
                raise Unavailable(f"npm install {agent.spec} did not install {agent.command}")
            os.chmod(temp, 0o755)
            if agent.directory.exists():  # a leftover without the executable: replace it
                shutil.rmtree(agent.directory)
            os.rename(temp, agent.directory)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return agent.executable


API_KEY = "sk-ant-api03-looop-tests-" + "x" * 60 + "-scriptedAA"  # any well-formed key: no real server


def seed_home(agent: str, home: Path, base_url: str, trusted: Iterable[Path] = ()) -> dict[str, str]:
    """Pre-seed the agent's config in `home` so no first-run dialog shows and it talks to the
    scripted model at `base_url` (a ModelServer url); return the environment it needs besides
    HOME. `trusted`: folders Claude Code shows no trust dialog for (pi has none)."""
    home.mkdir(parents=True, exist_ok=True)
    if agent == "claude":
        config = {
            "hasCompletedOnboarding": True,
            "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
            "projects": {str(Path(d).resolve()): {"hasTrustDialogAccepted": True} for d in trusted},
        }
        (home / ".claude.json").write_text(json.dumps(config, indent=2))
        return {
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": API_KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
    if agent == "pi":
        settings = home / ".pi" / "agent"
        settings.mkdir(parents=True, exist_ok=True)
        models = {
            "providers": {
                "scripted": {
                    "baseUrl": base_url + "/v1",
                    "api": "openai-completions",
                    "apiKey": "scripted",
                    "models": [{"id": "scripted-model"}],
                }
            }
        }
        (settings / "models.json").write_text(json.dumps(models, indent=2))
        (settings / "settings.json").write_text(
            json.dumps({"defaultProvider": "scripted", "defaultModel": "scripted-model"})
        )
        return {"PI_OFFLINE": "1"}
    raise ValueError(f"no agent named {agent!r}: {sorted(PACKAGES)}")


# Variables of the tester's own agent setup that would point the CLI elsewhere (CLAUDE_CONFIG_DIR,
# ANTHROPIC_AUTH_TOKEN, a Bedrock switch, PI_CODING_AGENT_DIR, ...): dropped from `up`'s environment.
FOREIGN_PREFIXES = ("ANTHROPIC_", "CLAUDE", "PI_", "OPENAI_")


def without_agent_settings(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith(FOREIGN_PREFIXES)}


def agent_environment(
    agent: str, home: Path, base_url: str, trusted: Iterable[Path] = (), path: str | None = None
) -> dict[str, str]:
    """What `looop up` needs in its environment so its workers run the real `agent` (workers
    inherit `up`'s environment): HOME seeded by `seed_home`, the CLI's bin dir first on PATH, then
    the node it needs (its own pinned one, else the machine's)."""
    package = PACKAGES[agent]
    env = seed_home(package.command, home, base_url, trusted)
    if package.node is not None:
        node_dir: str | None = str(package.node.bin_dir)
    else:
        found = shutil.which("node")
        node_dir = str(Path(found).parent) if found else None
    dirs = [str(package.bin_dir)] + ([node_dir] if node_dir else [])
    env["PATH"] = os.pathsep.join([*dirs, path if path is not None else os.environ.get("PATH", "")])
    env["HOME"] = str(home)
    return env


def main() -> int:
    failed = 0
    for agent in PACKAGES.values():
        try:
            path = install(agent)
        except Unavailable as exc:
            print(f"agent_clis: {exc}", file=sys.stderr)
            failed = 1
        else:
            node = f" (runs on {agent.node.spec})" if agent.node is not None else ""
            print(f"agent_clis: {agent.spec} at {path}{node}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
