"""The single binary (PyInstaller, `make binary`) runs with an empty environment, as on a machine
without Python: help, a seeded data dir, up, a worker that asks and is answered, down."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import AGENT, Looop, alive, report, script, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        ["sh", str(ROOT / "packaging/binary.sh")],
        env={**os.environ, "DIST": str(dist), "PYTHON": str(Path(sys.executable))},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dist / "looop"


@pytest.fixture
def bare(binary: Path, tmp_path: Path) -> Iterator[Looop]:
    """The binary with nothing but HOME and a data dir in its environment (`env -i`)."""
    home = tmp_path / "home"
    home.mkdir()
    runner = Looop(
        tmp_path / "data", {"HOME": str(home), "LOOOP_DATA_DIR": str(tmp_path / "data")}, str(binary)
    )
    yield runner
    runner.run("down", code=None, timeout=60)


def test_the_binary_is_the_whole_program_with_an_empty_environment(bare: Looop) -> None:
    manual = bare.run("--help").stdout
    assert "ROOT AGENT CONTRACT" in manual and "WORKER CONTRACT" in manual
    assert "looop  world " in bare.run("_", "state").stdout
    assert (bare.data / "PLAYBOOK.md").read_text().startswith("#")
    assert os.access(bare.data / "sensors/today.sh", os.X_OK)
    (bare.data / "config.json").write_bytes(orjson.dumps({"interactive": AGENT, "kill_grace": "1s"}))
    out = bare.run("up").stdout
    pid = int(out.split("(pid ")[1].split(")")[0])
    bare.run(
        "_",
        "worker",
        "start",
        "w1",
        script(
            "ask Ship it? | yes,no",
            "report w1.md {answer} bin={env:LOOOP_BIN} ld={env:LD_LIBRARY_PATH}",
            "kill",
        ),
    )
    ask = wait_for(lambda: orjson.loads(bare.run("_", "state", "--json").stdout)["asks"], what="the ask")[0]
    bare.run("_", "answer", ask["id"], "yes")
    # the worker ran the binary as $LOOOP_BIN, without the unpack folder's libraries
    assert report(bare, "w1.md") == f"yes bin={bare.program} ld=\n"
    wait_for(lambda: "worker end · w1 · killed: ended itself" in bare.journal(), what="the worker's end")
    assert bare.run("down").stdout.startswith(f"looop is down (pid {pid})")
    assert not alive(pid)


def test_pyoxidizer_bzl_still_parses() -> None:
    pyoxidizer = Path(sys.executable).parent / "pyoxidizer"
    if not pyoxidizer.exists():
        pytest.skip("pyoxidizer is not installed (pip install -e '.[test]' brings it)")
    done = subprocess.run(
        [str(pyoxidizer), "list-targets"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["exe", "*install"]


def test_pyoxidizer_bzl_builds_with_a_python_that_pyproject_allows() -> None:
    bzl = (ROOT / "pyoxidizer.bzl").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    built = re.search(r'default_python_distribution\(python_version = "(3\.\d+)"\)', bzl)
    floor = re.search(r'^requires-python = ">=(3\.\d+)"$', pyproject, re.MULTILINE)
    assert built and floor, "pyoxidizer.bzl names its Python and pyproject.toml its oldest"
    version = tuple(int(part) for part in built.group(1).split("."))
    assert version >= tuple(int(part) for part in floor.group(1).split("."))
    assert "$ORIGIN/lib" in bzl  # where the extension modules that cannot load from memory go
