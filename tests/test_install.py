"""The README's install-and-run command works as written for a new user: an empty HOME, no pipx or
uv, only a python3 that is not ours to pip-install into; and a python3 without venv says what to
install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "packaging/install.sh"
BASE_PYTHON = Path(sys.base_prefix) / "bin/python3"  # the interpreter under the suite's venv


def readme_install_command() -> str:
    setup = (ROOT / "README.md").read_text().split("## Set up", 1)[1]
    return setup.split("```sh\n", 1)[1].split("```", 1)[0].strip()


def bare_path(tmp_path: Path, python: str) -> str:
    """A PATH with python3 (as given) and the base system tools, but no pipx and no uv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    system = [d for d in ("/usr/local/bin", "/usr/bin", "/bin") if Path(d).is_dir()]
    for tool in ("pipx", "uv"):
        found = shutil.which(tool, path=os.pathsep.join(system))
        if found:
            pytest.skip(f"{found} is installed system-wide; this test needs a PATH without it")
    return os.pathsep.join([str(bin_dir), *system])


def new_user_env(tmp_path: Path, path: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": path, "LANG": "C.UTF-8"}
    cache = Path.home() / ".cache/pip"  # the wheels this machine already has, to spare the network
    if cache.is_dir():
        env["PIP_CACHE_DIR"] = str(cache)
    return env


@pytest.mark.timeout(600)
def test_the_readmes_install_command_runs_as_written_for_a_new_user(tmp_path: Path) -> None:
    command = readme_install_command()
    assert "packaging/install.sh" in command and "pip install ." not in command
    env = new_user_env(tmp_path, bare_path(tmp_path, str(BASE_PYTHON)))
    home = Path(env["HOME"])
    link = home / ".local/bin/looop"
    try:
        done = subprocess.run(
            ["sh", "-c", command],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=540,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert link.is_symlink()
        assert Path(os.readlink(link)) == home / ".local/share/looop/venv/bin/looop"
        assert "looop is up (pid " in done.stdout and "looop  world " in done.stdout
        assert f"{home}/.local/bin is not on your PATH" in done.stderr
        assert (home / ".local/state/looop/PLAYBOOK.md").exists()  # the default data dir
        on_path = {**env, "PATH": f"{home}/.local/bin{os.pathsep}{env['PATH']}"}
        state = subprocess.run(
            ["looop", "_", "state"], env=on_path, capture_output=True, text=True, timeout=60
        )
        assert state.returncode == 0 and state.stdout.startswith("looop  world "), state.stderr
        down = subprocess.run(["looop", "down"], env=on_path, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0 and down.stdout.startswith("looop is down (pid "), down.stderr
    finally:
        if link.exists():
            subprocess.run([str(link), "down"], env=env, capture_output=True, timeout=120)


def test_a_python_without_venv_gets_one_line_on_what_to_install(tmp_path: Path) -> None:
    # Debian's python3 without python3-venv: no ensurepip, and `-m venv` fails
    stub = tmp_path / "debian-python3"
    stub.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "*ensurepip*) echo \"ModuleNotFoundError: No module named 'ensurepip'\" >&2; exit 1 ;;\n"
        "*'-m venv'*) echo 'The virtual environment was not created successfully' >&2; exit 1 ;;\n"
        "esac\n"
        f'exec {BASE_PYTHON} "$@"\n'
    )
    stub.chmod(0o755)
    env = new_user_env(tmp_path, bare_path(tmp_path, str(stub)))
    done = subprocess.run(
        ["sh", str(INSTALL)], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "install python3-venv" in done.stderr and f"python{version}-venv" in done.stderr
    home = Path(env["HOME"])
    assert not (home / ".local/share/looop").exists() and not (home / ".local/bin").exists()
