"""Environment for processes looop starts (sensors, `_ run`, hooks, workers)."""

from __future__ import annotations

import os
import sys


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, minus what a single-binary build leaks into children, plus `extra`.

    A PyInstaller binary points `LD_LIBRARY_PATH` into its unpack folder; children must get the
    user's original value back, or system programs load the wrong libraries.
    """
    env = dict(os.environ)
    if getattr(sys, "frozen", False):
        original = env.pop("LD_LIBRARY_PATH_ORIG", None)
        if original is None:
            env.pop("LD_LIBRARY_PATH", None)
        else:
            env["LD_LIBRARY_PATH"] = original
    if extra:
        env.update(extra)
    return env
