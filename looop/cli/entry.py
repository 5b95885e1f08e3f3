"""The console entry point: the hottest verbs run without importing click; the rest go to it.

Only exact, well-formed invocations take the fast path (`_ state [--json]`, `status [--json]`,
`_ wait [--json]`, `_ answer ID TEXT...` without options); anything else, help and errors
included, is click's.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs a fast verb ~2 ms of start-up: only the checker reads these
    from collections.abc import Callable, Mapping
    from typing import NoReturn


def fast_verb(argv: list[str]) -> Callable[[], object] | None:
    """The action for `argv` when it is a plain call of a hot verb, else None."""
    match argv:
        case ["_", "state"] | ["_", "state", "--json"] | ["status", "--json"]:
            return lambda: _state(argv[-1] == "--json")
        case ["status"]:
            return lambda: _status()
        case ["_", "wait"] | ["_", "wait", "--json"]:
            return lambda: _wait(argv[-1] == "--json")
        case ["_", "answer", ask_id, *words] if words and not any(
            w.startswith("-") for w in [ask_id, *words]
        ):
            return lambda: _answer(ask_id, " ".join(words))
    return None


def _state(as_json: bool) -> None:
    from looop.world.light_client import served

    if not served(as_json):
        from looop.cli import actions

        actions.show_state(as_json)


def _status() -> None:
    from looop.cli import actions

    actions.status(as_json=False, watch=False)


def _wait(as_json: bool) -> None:
    from looop.cli import actions

    actions.wait(as_json, None)


def _answer(ask_id: str, text: str) -> None:
    from looop.cli import actions

    actions.answer(ask_id, text)


def guarded(action: Callable[[], object]) -> NoReturn:
    """Run `action` and exit: with its result when that is an int, else 0."""
    result = attempt(action)
    sys.exit(result if isinstance(result, int) else 0)


def attempt(action: Callable[[], object]) -> object:
    """Run `action`; the one place that turns errors into one line on stderr and an exit code."""
    from looop.base.errors import LooopError

    try:
        return action()
    except LooopError as exc:
        fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:
        target = f" {exc.filename}" if exc.filename else ""
        fail(f"cannot access{target}: {exc.strerror or exc}", 10)


def fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"looop: {message}\n")
    sys.exit(code)


def check_input(argv: list[str], environ: Mapping[str, str]) -> None:
    """Refuse, before any verb runs, an argument, a `LOOOP_*` variable or a data dir path that
    looop cannot carry as text (bytes that are not UTF-8; `InvalidInput`). Plain ASCII, the usual
    case, costs no import."""
    from looop.store.locate import data_root

    ours = [(k, v) for k, v in environ.items() if k.startswith("LOOOP_")]
    root = data_root()
    if all(a.isascii() for a in [*argv, root]) and all(k.isascii() and v.isascii() for k, v in ours):
        return
    from looop.base.ids import check_text

    for arg in argv:
        check_text(arg, "argument")
    for key, value in ours:
        check_text(key, "variable name")
        check_text(value, f"${key}")
    check_text(root, "the data dir")


def main() -> NoReturn:
    import os

    attempt(lambda: check_input(sys.argv[1:], os.environ))
    action = fast_verb(sys.argv[1:])
    if action is None:
        from looop.cli.commands import invoke

        action = invoke
    guarded(action)
