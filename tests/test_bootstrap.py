"""A fresh data dir is created private and seeded once from the files embedded in the program."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import Looop

SEEDS = ["PLAYBOOK.md", "goals/setup.md", "goals/playbook-daily.md", "sensors/today.sh"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_dir_is_seeded_private(looop: Looop) -> None:
    looop.run("_", "state")
    assert mode(looop.data) == 0o700
    for name in SEEDS:
        assert (looop.data / name).read_text().strip(), name
    assert mode(looop.data / "sensors/today.sh") == 0o700
    assert mode(looop.data / "PLAYBOOK.md") == 0o600
    assert mode(looop.data / ".store.lock") == 0o600
    for directory in (
        "asks",
        "answers",
        "snapshots",
        "prompts",
        "reports",
        "claims",
        "sessions",
        "goals/archive",
    ):
        assert mode(looop.data / directory) == 0o700, directory
    config = orjson.loads((looop.data / "config.json").read_bytes())
    assert config["interactive"] in ("claude", "pi")
    assert config["interval"] == "60s" and config["session_ttl"] == "3d"
    assert looop.state()["goals"] == ["playbook-daily", "setup"]


def test_the_starter_playbook_puts_the_interview_first(looop: Looop) -> None:
    looop.run("_", "state")
    playbook = (looop.data / "PLAYBOOK.md").read_text()
    first_priority = playbook.split("## Priority 0", 1)[1].split("##", 1)[0]
    assert "interview" in first_priority.lower() or "interviewed" in first_priority.lower()
    assert "looop _ playbook write" in first_priority


def test_seeding_happens_once_and_never_overwrites(looop: Looop) -> None:
    looop.run("_", "state")
    (looop.data / "goals/setup.md").unlink()
    (looop.data / "PLAYBOOK.md").write_text("mine\n")
    looop.run("_", "state")
    assert not (looop.data / "goals/setup.md").exists()
    assert (looop.data / "PLAYBOOK.md").read_text() == "mine\n"


def test_seeding_keeps_files_already_in_a_new_data_dir(looop: Looop) -> None:
    (looop.data / "goals").mkdir(parents=True)
    (looop.data / "goals/setup.md").write_text("already here\n")
    looop.run("_", "state")
    assert (looop.data / "goals/setup.md").read_text() == "already here\n"
    assert (looop.data / "goals/playbook-daily.md").exists()


def test_the_default_data_dir_follows_xdg_state_home(looop: Looop, tmp_path: Path) -> None:
    env = {k: v for k, v in looop.env.items() if k != "LOOOP_DATA_DIR"}
    subprocess.run(
        [sys.executable, "-m", "looop", "_", "state"],
        env={**env, "XDG_STATE_HOME": str(tmp_path / "xdg")},
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    assert (tmp_path / "xdg/looop/PLAYBOOK.md").exists()
    subprocess.run(
        [sys.executable, "-m", "looop", "_", "state"],
        env=env,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    assert (tmp_path / "home/.local/state/looop/PLAYBOOK.md").exists()


def test_looop_config_overrides_the_config_path_and_is_seeded_there(looop: Looop, tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.json"
    looop.run("_", "state", env={"LOOOP_CONFIG": str(config)})
    assert "interactive" in orjson.loads(config.read_bytes())
    assert not (looop.data / "config.json").exists()


def test_the_today_sensor_prints_a_plan_worthy_reading(looop: Looop) -> None:
    looop.run("_", "state")
    out = subprocess.run(
        [str(looop.data / "sensors/today.sh")], capture_output=True, text=True, check=True
    ).stdout
    for label in ("date:", "time:", "workday:"):
        assert label in out
