"""The polling watcher (LOOOP_WATCH=poll, and wherever inotify is missing) sees what inotify sees:
entries created, rewritten, renamed or removed in a watched directory, never its noise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from looop.base.watching import DirWatcher


def test_polling_sees_entries_created_changed_renamed_and_removed_but_not_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOOP_WATCH", "poll")
    (tmp_path / "sub").mkdir()
    with DirWatcher(frozenset({"journal.md"})) as watcher:
        assert not watcher.event_driven and watcher.fileno() == -1
        watcher.watch([tmp_path])
        assert not watcher.wait(0)
        (tmp_path / "journal.md").write_text("noise\n")
        (tmp_path / ".a.tmp").write_text("a temp file\n")
        (tmp_path / "sub" / "below").write_text("not watched\n")  # inotify does not see it either
        assert not watcher.wait(0)
        for change in (
            lambda: (tmp_path / "a").write_text("1"),
            lambda: (tmp_path / "a").write_text("22"),
            lambda: os.replace(tmp_path / ".a.tmp", tmp_path / "a"),
            lambda: (tmp_path / "a").rename(tmp_path / "b"),
            lambda: (tmp_path / "b").unlink(),
        ):
            change()
            assert watcher.wait(5)
            assert not watcher.wait(0)  # each change is told once


def test_polling_tells_of_a_watched_directory_removed_and_watches_it_again_once_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOOP_WATCH", "poll")
    watched = tmp_path / "asks"
    watched.mkdir()
    with DirWatcher() as watcher:
        watcher.watch([watched])
        watched.rmdir()
        assert watcher.wait(5)
        watched.mkdir()
        watcher.watch([watched])
        (watched / "w1-1.json").write_text("{}")
        assert watcher.wait(5)
