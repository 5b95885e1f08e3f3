"""Fifty processes mutating one data dir at once lose and tear nothing."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import Looop, wait_for

ENTRY = re.compile(r"^- \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S+ · [a-z ]+ · .+ · .+$")


def test_a_storm_of_fifty_writers_loses_and_tears_nothing(looop: Looop) -> None:
    looop.run("_", "state")
    bodies = {i: f"{i:03d}" * 20000 for i in range(50)}  # 60 KB each: a torn write would show
    procs: list[subprocess.Popen[str]] = []
    for i in range(20):
        procs.append(looop.popen("_", "goal", "write", f"g{i}", bodies[i]))
    for i in range(20, 30):
        procs.append(looop.popen("_", "goal", "write", "shared", bodies[i]))
    for i in range(30, 40):
        procs.append(looop.popen("_", "notify", f"notice {i}"))
    askers = [looop.popen("_", "ask", f"s{i}", "--prompt", f"question {i}") for i in range(40, 50)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    wait_for(lambda: len(looop.state()["asks"]) == 10, timeout=30, what="all ten asks")
    for i in range(40, 50):
        looop.run("_", "answer", f"s{i}-1", f"answer {i}")
    for i, asker in zip(range(40, 50), askers, strict=True):
        out, err = asker.communicate(timeout=30)
        assert (asker.returncode, out) == (0, f"answer {i}\n"), err

    for i in range(20):
        assert (looop.data / f"goals/g{i}.md").read_text() == bodies[i] + "\n"
    assert (looop.data / "goals/shared.md").read_text() in {bodies[i] + "\n" for i in range(20, 30)}
    lines = looop.journal().splitlines()
    assert all(ENTRY.match(line) for line in lines), [line for line in lines if not ENTRY.match(line)]
    assert sum(" · goal write · " in line for line in lines) == 30
    assert sum(" · notify · " in line for line in lines) == 10
    assert sum(" · ask · " in line for line in lines) == 10
    assert sum(" · answer · " in line for line in lines) == 10
    notices = {n["message"] for n in looop.state()["notifications"]}
    assert notices == {f"notice {i}" for i in range(30, 40)}
    leftovers = [p for p in looop.data.rglob(".*.tmp")]
    assert leftovers == []
