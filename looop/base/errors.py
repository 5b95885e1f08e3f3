"""The one error hierarchy: every failure a user can cause maps to a line and an exit code."""

from __future__ import annotations


class LooopError(Exception):
    """Base of every error looop reports to a user; `main()` prints `message` and exits `exit_code`."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CodedError(LooopError):
    """An error whose exit code was decided elsewhere: by click (usage errors) or by the `up`
    process (its reply to a request)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InvalidInput(LooopError):
    """A malformed argument: a bad id, an empty body, an answer outside the options."""

    exit_code = 2


class ConfigError(LooopError):
    """`config.json` is not valid JSON or a key has a wrong type or unit."""

    exit_code = 3


class NotFound(LooopError):
    """The named goal, ask, session or resource does not exist."""

    exit_code = 4


class Conflict(LooopError):
    """The move contradicts the current state (an ask already answered, an id already in use)."""

    exit_code = 5


class ClaimHeld(LooopError):
    """Another session holds the lease on a resource."""

    exit_code = 6

    def __init__(self, resource: str, holder: str) -> None:
        super().__init__(f"{resource} is claimed by {holder}")
        self.resource = resource
        self.holder = holder


class NotRunning(LooopError):
    """The verb needs the `up` process and it is not running."""

    exit_code = 7


class Cancelled(LooopError):
    """An ask was cancelled before it was answered (its worker ended, or it was withdrawn)."""

    exit_code = 8


class TimedOut(LooopError):
    """A wait or a command ran past its `--timeout`."""

    exit_code = 124


class CorruptFile(LooopError):
    """A file in the data dir cannot be parsed; readers report it and skip it."""

    exit_code = 9

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class NewerSchema(CorruptFile):
    """A file written by a newer looop (its `v` is past the one this looop knows): reported like
    a corrupt file, and never rewritten or taken over, for it may mean what this looop cannot tell."""


class StorageError(LooopError):
    """The file system refused a write (disk full, permissions); nothing earlier is damaged."""

    exit_code = 10


class NotAnswering(LooopError):
    """The `up` process is there (the socket connects) but gives no reply: stopped, wedged, or it
    closed the connection without one."""
