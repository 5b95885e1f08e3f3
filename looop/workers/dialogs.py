"""An agent's own dialogs as asks: Claude Code's permission requests, through its hook.

The claude profile's settings file runs `looop _ dialog SESSION` as Claude Code's
`PermissionRequest` hook: Claude Code passes the request as JSON on stdin and waits for a
decision on stdout. looop files it as an ask of the worker's (the tool, and the command or path
it concerns, with the options yes / always / no), blocks until the root agent answers, and
answers the hook. A call of the worker's own looop verbs (ask, claim, unclaim, cost and kill,
for itself) is allowed without an ask: the worker is never shown a dialog for `_ ask` itself.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import orjson

from looop.base.errors import Cancelled, InvalidInput
from looop.store.asks import open_ask
from looop.store.childenv import caller_run
from looop.store.config import setting
from looop.store.paths import DataDir
from looop.workers.contract import WORKER_VERBS
from looop.world.asking import await_answer

OPTIONS = ["yes", "always", "no"]
_UNQUOTED_SYNTAX = frozenset("`$;&|<>()\n\\*?[]{}~#")  # expansions, lists, redirections, globs
_QUOTED_SYNTAX = frozenset("`$\\")  # what still expands inside double quotes


@dataclass(frozen=True)
class PermissionRequest:
    """What Claude Code asks permission for: a tool, what it concerns, its suggested rules."""

    tool: str
    concern: str
    suggestions: list[Any]

    @classmethod
    def parse(cls, raw: bytes) -> PermissionRequest:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"the permission request on stdin is not JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("tool_name"), str):
            raise InvalidInput("the permission request on stdin has no tool_name")
        tool_input = data.get("tool_input")
        tool_input = tool_input if isinstance(tool_input, dict) else {}
        for key in ("command", "file_path", "path", "url", "pattern"):
            if isinstance(tool_input.get(key), str):
                concern = tool_input[key]
                break
        else:
            concern = orjson.dumps(tool_input).decode() if tool_input else ""
        suggestions = data.get("permission_suggestions")
        return cls(data["tool_name"], concern, suggestions if isinstance(suggestions, list) else [])


def is_own_verb(command: str, looop: str, session: str) -> bool:
    """Is `command` nothing but one of the worker verbs (`WORKER_VERBS`) called for the worker's own
    `session`, spelled with looop's absolute path (as the contract does), with no other shell
    syntax? A variable such as `$LOOOP_BIN` does not count: the agent's shell could have changed
    it. The root agent's verbs (`_ run`, `_ answer`, `_ worker ...`) are never allowed unasked."""
    if not _only_words(command):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return len(words) >= 4 and words[:2] == [looop, "_"] and words[2] in WORKER_VERBS and words[3] == session


def _only_words(command: str) -> bool:
    """True when the shell would take `command` as plain words: nothing expands, nothing chains."""
    quote = ""
    for char in command:
        if quote == "'":
            quote = "" if char == "'" else quote
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char in _QUOTED_SYNTAX:
                return False
        elif char in "'\"":
            quote = char
        elif char in _UNQUOTED_SYNTAX:
            return False
    return quote == ""


def decide(dd: DataDir, session: str, raw: bytes, looop: str) -> bytes:
    """Answer one PermissionRequest hook call: the JSON decision Claude Code reads on stdout."""
    request = PermissionRequest.parse(raw)
    if request.tool == "Bash" and is_own_verb(request.concern, looop, session):
        return _decision({"behavior": "allow"})
    question = f"Claude Code asks permission to use {request.tool}" + (":" if request.concern else ".")
    if request.concern:
        question += f" {request.concern}"
    ask = open_ask(
        dd,
        session,
        question,
        request.concern or None,
        OPTIONS,
        setting(dd.config, "ask_deadline"),
        run=caller_run(session),
    )
    try:
        answer = await_answer(dd, ask.id, None)
    except Cancelled as exc:
        return _decision({"behavior": "deny", "message": f"looop: {exc.message}", "interrupt": True})
    if answer == "no":
        return _decision({"behavior": "deny", "message": "The root agent said no to this."})
    decision: dict[str, Any] = {"behavior": "allow"}
    if answer == "always" and request.suggestions:
        decision["updatedPermissions"] = request.suggestions
    return _decision(decision)


def _decision(decision: dict[str, Any]) -> bytes:
    output = {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}}
    return orjson.dumps(output, option=orjson.OPT_APPEND_NEWLINE)
