"""Environment for processes looop starts (sensors, `_ run`, hooks, workers)."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from looop.store.paths import DataDir


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, minus what a single-binary build leaks into children, plus `extra`.

    A PyInstaller binary points `LD_LIBRARY_PATH` into its unpack folder; children must get the
    user's original value back, or system programs load the wrong libraries. Its `_PYI_*`
    variables would make a child that runs the binary again (a worker's `$LOOOP_BIN`, the `up`
    process itself) reuse this process's unpack folder, which is deleted when this process ends.
    """
    env = dict(os.environ)
    if getattr(sys, "frozen", False):
        original = env.pop("LD_LIBRARY_PATH_ORIG", None)
        if original is None:
            env.pop("LD_LIBRARY_PATH", None)
        else:
            env["LD_LIBRARY_PATH"] = original
        for private in [k for k in env if k.startswith("_PYI_") or k == "_MEIPASS2"]:
            del env[private]
        env["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    if extra:
        env.update(extra)
    return env


def looop_bin(dd: DataDir) -> str:
    """A path that runs this same looop, for `"$LOOOP_BIN"` inside workers: the single binary when
    frozen, else the console script beside this interpreter, else a wrapper script in the data dir."""
    if getattr(sys, "frozen", False):
        return sys.executable
    script = Path(sys.executable).parent / "looop"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    from looop.base.files import atomic_write, ensure_dir

    package_parent = Path(__file__).resolve().parent.parent
    wrapper = dd.wrapper
    ensure_dir(wrapper.parent)
    atomic_write(
        wrapper,
        (
            "#!/bin/sh\n"
            f"PYTHONPATH={shlex.quote(str(package_parent))}${{PYTHONPATH:+:$PYTHONPATH}} "
            f'exec {shlex.quote(sys.executable)} -m looop "$@"\n'
        ).encode(),
        mode=0o700,
    )
    return str(wrapper)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_problem(key: object, value: object) -> str | None:
    """Why `KEY=value` cannot go into a worker's environment (a line naming the key), or None."""
    if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
        return f"{key!r} is not a variable name (letters, digits and _, not first a digit)"
    if key.startswith("LOOOP_"):
        return f"{key}: looop sets its own LOOOP_* variables"
    if not isinstance(value, str):
        return f"{key}: expected a string value"
    if "\0" in value:
        return f"{key}: a value cannot hold a NUL byte"
    return None


def caller_run(session: str) -> str | None:
    """The run of worker `session` this process belongs to (its `LOOOP_RUN_ID`, when it runs
    inside that worker), else None: an ask made there is that run's, and only it re-attaches."""
    if os.environ.get("LOOOP_SESSION_ID") != session:
        return None
    return os.environ.get("LOOOP_RUN_ID") or None


def worker_env(dd: DataDir, session: str, run: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A worker's environment: the user's (`up`'s), a terminal, `extra` (the config's `env`, then
    `--env`), and how to reach looop (`run` names this run of the session: its asks are its own)."""
    env = child_env({"TERM": "xterm-256color"})
    env.setdefault("LANG", "C.UTF-8")
    for inherited in ("COLUMNS", "LINES"):  # the pty has its own size
        env.pop(inherited, None)
    env.update(extra or {})
    env.update(
        {
            "LOOOP_BIN": looop_bin(dd),
            "LOOOP_SESSION_ID": session,
            **run_marks(run),
            "LOOOP_DATA_DIR": str(dd.root),
        }
    )
    return env


def run_marks(run: str) -> dict[str, str]:
    """What every process of a worker's run carries in its environment, wherever it went (a
    run id is unique, so it finds them under another data dir too): how the run is ended whole."""
    return {"LOOOP_RUN_ID": run}
