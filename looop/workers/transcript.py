"""An agent's transcript: everything it printed, raw, in a file of capped size (its previous
part kept as `NAME.1`), written by the session's pump."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

from looop.base.files import open_private, replace
from looop.store.paths import rotated

TRANSCRIPT_CAP = 4 * 1024 * 1024


class Transcript:
    """Everything the agent printed, raw; rotated to `NAME.1` when it reaches `cap` bytes."""

    def __init__(self, path: Path, cap: int = TRANSCRIPT_CAP) -> None:
        self.path = path
        self.cap = cap
        self._file = self._open()
        self.size = self._file.tell()
        self.error: str | None = None

    def _open(self) -> BinaryIO:
        fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
        handle = os.fdopen(fd, "ab")
        handle.seek(0, os.SEEK_END)
        return handle

    def write(self, data: bytes) -> None:
        """Append; a failing disk is recorded, never fatal to the session."""
        try:
            if self.size + len(data) > self.cap:
                self.rotate()
            self._file.write(data)
            self._file.flush()
            self.size += len(data)
        except OSError as exc:
            self.error = f"transcript write failed: {exc.strerror or exc}"

    def rotate(self) -> None:
        """Keep the previous part as `NAME.1` (replacing an older one) and start afresh."""
        self._file.close()
        replace(self.path, rotated(self.path))
        self._file = self._open()
        self.size = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
