"""What the click commands share to read their arguments: the context settings, a body inline or
on stdin, durations, `--reason`, and shell completion of ids from the data dir."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from looop.base.errors import InvalidInput

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def read_body(inline: tuple[str, ...] | str | None, what: str) -> str:
    """An inline body, else all of stdin (UTF-8 without NUL bytes); refuse to wait on a terminal."""
    if isinstance(inline, tuple):
        inline = " ".join(inline) if inline else None
    if inline is not None:
        return inline
    if sys.stdin.isatty():
        raise InvalidInput(f"no {what} given: pass it inline or pipe it on stdin")
    from looop.base.ids import decode_text

    return decode_text(sys.stdin.buffer.read(), f"the {what} on stdin")


def parse_seconds(_ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A click callback accepting `30`, `90s`, `15m`…"""
    if value is None:
        return None
    from looop.store.config import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


reason_option = click.option("--reason", default="", help="Why: recorded in the journal.")


def _ids_in(directory: str, suffix: str = "") -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """Shell completion from the names of a data-dir directory (`sessions`, `goals`, ...)."""

    def complete(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
        import os

        from looop.base.ids import is_reserved, is_valid_id
        from looop.store.locate import data_root

        try:
            names = os.listdir(os.path.join(data_root(), directory))
        except OSError:
            return []
        ids = [n.removesuffix(suffix) for n in names if n.endswith(suffix) and not n.startswith(".")]
        return sorted(i for i in ids if is_valid_id(i) and i.startswith(incomplete) and not is_reserved(i))

    return complete


complete_workers = _ids_in("sessions")
complete_asks = _ids_in("asks", ".json")
complete_goals = _ids_in("goals", ".md")
