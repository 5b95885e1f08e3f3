"""Agent profiles: what looop knows about one kind of agent CLI, as data.

A profile says how to start the agent (an argv template) and resume it, which per-worker
settings file it reads, which dialogs it can stop at and what to type to answer each, which
screen text means "a dialog is up" when looop does not know the dialog, which means "busy",
and which screen lines are chrome (status bars) rather than what the agent said. The config's
`interactive` names a profile (`"claude"`, `"pi"`, or one of its own `profiles`), or gives a plain
argv for any other agent; a plain argv whose program is a known agent keeps that agent's
dialogs and screen rules.
"""

from __future__ import annotations

import os
import re
import shlex
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from looop.base.errors import ConfigError, InvalidInput
from looop.base.ids import text_problem
from looop.workers.contract import WORKER_VERBS, fill


@dataclass(frozen=True)
class Dialog:
    """A dialog the agent stops at, known by `pattern` on its screen. The ask asks `question`
    about what the group `concern` of the pattern captured (a command, a folder), with one
    option per entry of `keys`: what is typed into the pty for that answer. A `hooked` dialog
    normally reaches looop through the hook the profile's settings set, which may still be filing
    its ask while the dialog is drawn (or have just had it answered): with those settings, the
    screen acts on it only once the agent is quiet and no ask of the worker was pending lately."""

    name: str
    pattern: str
    question: str
    keys: dict[str, str]
    hooked: bool = False

    def find(self, screen: str) -> str | None:
        """What this dialog concerns when the screen shows it ("" when it names nothing), else None."""
        match = re.search(self.pattern, screen, re.MULTILINE)
        if match is None:
            return None
        concern = match.groupdict().get("concern") or ""
        return " ".join(concern.split())


@dataclass(frozen=True)
class Profile:
    """How looop starts, resumes, answers and reads one kind of agent (see the module doc)."""

    name: str
    command: tuple[str, ...]
    resume: tuple[str, ...] | None = None
    settings: dict[str, Any] | None = None  # written to {settings_file}; "{looop}", "{session}" filled
    dialogs: tuple[Dialog, ...] = ()
    blocked_markers: tuple[str, ...] = ()  # regexes: some dialog is up (one looop may not know)
    busy_markers: tuple[str, ...] = ("esc to interrupt",)  # text, any case: working, though quiet
    screen_skip: tuple[str, ...] = ()  # regexes of chrome lines the SCREEN column skips

    conversation: tuple[str, ...] = ()  # where the agent may keep a session's conversation
    # `_ worker tell`: the message is typed, then `submit`. With `bracketed_paste` it goes between
    # ESC[200~ and ESC[201~, as a terminal sends a paste to a program that asked for them: its
    # newlines stay in the one message and the submit key after it is a key, not pasted text.
    submit: str = "\r"
    bracketed_paste: bool = False
    # The agent is a TUI that reads its terminal in raw mode: a message is typed only once it has
    # taken the terminal out of canonical mode (see TYPING). Not `bracketed_paste`: that says how
    # the text is framed, this when the agent can take keys at all; a TUI without pastes needs it too.
    raw_mode: bool = False

    def missing_conversation(self, env: dict[str, str], cwd: Path, session_uuid: str) -> str | None:
        """Where the agent's conversation for `session_uuid` would be, when it is in none of the
        places `conversation` names (nothing to resume), else None; None too when the profile
        names no place. A place may hold `{env:NAME}` (a place whose variable is unset is not
        looked at), `{cwd_slug}` (the working directory with each character but letters and
        digits as "-", as Claude Code names its project folders) and `{session_uuid}`."""
        slug = re.sub(r"[^A-Za-z0-9]", "-", str(cwd))
        places: list[str] = []
        for template in self.conversation:
            names = re.findall(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}", template)
            if not all(env.get(name) for name in names):
                continue
            values = {f"{{env:{name}}}": env[name] for name in names}
            places.append(fill(template, {**values, "{cwd_slug}": slug, "{session_uuid}": session_uuid}))
        if not places or any(os.path.exists(place) for place in places):
            return None
        return " or ".join(places)

    @property
    def reads_settings(self) -> bool:
        """Does its command hand the agent the settings file (and so the hooks in it)?"""
        return self.settings is not None and any("{settings_file}" in arg for arg in self.command)


# Screen chrome: regexes of the lines `looop status` passes over when it shows a worker's last
# screen line (kept in its `state.json` as `screen_skip`), each searched in a line with its
# trailing blanks removed. Checked against Claude Code 2.1.197 and pi 0.73.1 in a 50x200 pty.

# Rules and the input box's borders, the empty prompt, the mode line under the box
# ("? for shortcuts", "⏵⏵ accept edits on (shift+tab to cycle)"), the busy and done spinners
# ("✻ Baking… (esc to interrupt)", "✻ Baked for 3s"), the editor hint.
CLAUDE_SCREEN_SKIP: tuple[str, ...] = (
    r"^[\s─━═│┃╭╮╰╯┌┐└┘├┤╌╍]*$",
    "^[│┃]?\\s*[>\u276f]?\\s*[│┃]?$",  # \u276f: the prompt mark
    r"\? for shortcuts",
    r"⏵⏵|⏸|accept edits on|bypass permissions on|plan mode on|manual mode on|shift\+tab to cycle",
    r"esc to interrupt",
    r"^\S\s\w+ for \d+(\.\d+)?[smh]\b",
    r"ctrl\+g to edit",
)

# Rules, the footer: the working directory (with its git branch) and the token counter with
# the model ("↑1.2k ↓340 $0.004 0.7%/128k (auto)   (provider) model"), the busy line.
PI_SCREEN_SKIP: tuple[str, ...] = (
    r"^[\s─━]*$",
    r"^[~/]\S*( \([^)]*\))?$",
    r"\d%/\d+(\.\d+)?[kM]\b",
    r"esc(ape)? to interrupt|Working\.\.\.",
)

# what a terminal program that waits for one key tends to show
PROMPT_MARKERS = (r"\((?:y/n|yes/no)\)|\[(?:y/N|Y/n)\]", r"Press (?:Enter|any key)")

# Claude Code draws its dialogs as a select (a heavy angle marks the chosen option). A
# permission request normally reaches looop through the PermissionRequest hook of the worker's
# settings file (`looop _ dialog`); the agent draws the dialog while the hook runs, so the
# screen is read for it only as the fallback for when the hook cannot answer (`hooked`).
# Patterns and keys fit the oldest supported release (2.1.197) and the newest checked
# (2.1.332). 2.1.197 misreads several keys in one write (Up then Enter picked the chosen
# option), so keys it may get are one key each.
# Permission: 2.1.197 shows the command right under "Bash command"; 2.1.332 puts a tip and the
# description first and the command between dashed rules, and adds "3. Yes, and switch to auto
# mode" before "4. No": a digit picks an option at once, Escape declines in both.
_CLAUDE_PERMISSION = Dialog(
    "permission",
    r"(?:Bash command\s*\n(?:(?:.*\n)*?\s*╌{3,}\s*\n)?\s*(?:│\s*)?(?P<concern>\S[^\n]*?)\s*\n(?:.*\n)*?)?"
    r".*Do you want to proceed\?",
    "Claude Code asks permission to run this command. Allow it?",
    {"yes": "1", "always": "2", "no": "\x1b"},
    hooked=True,
)
_TRUST_QUESTION = (
    "Claude Code asks whether to trust the files in this folder (it may run code from it). Trust it?"
)
_TRUST_CONCERN = r"(?:Accessing workspace:\s*\n\s*(?P<concern>\S[^\n]*?)\s*\n(?:.*\n)*?)?"
# Folder trust: 2.1.197 numbers its options, "1. Yes, I trust this folder" first (a digit picks);
# 2.1.332 lists "No, exit" (chosen) above "Yes, I trust this folder", unnumbered and ignoring
# digits: End or Home moves to the last or first option, Enter confirms.
_CLAUDE_TRUST = Dialog(
    "trust", _TRUST_CONCERN + r".*1\. Yes, I trust this folder", _TRUST_QUESTION, {"yes": "1", "no": "2"}
)
_CLAUDE_TRUST_LISTED = Dialog(
    "trust",
    _TRUST_CONCERN + r".*No, exit\s*\n.*Yes, I trust this folder",
    _TRUST_QUESTION,
    {"yes": "\x1b[F\r", "no": "\x1b[H\r"},
)


# TYPING a message (`_ worker tell`), checked with Claude Code 2.1.197 and 2.1.332 and pi 0.73.1
# in a 50x200 pty, at the idle prompt and mid-turn: a short "text\r" in one write is taken by all
# three, but Claude Code takes a fast burst of characters for a paste, and a "\r" inside that
# burst for a newline in it: a long message sat in its input box unsent. All three take
# ESC[200~ text ESC[201~ as one bracketed paste (its newlines kept: one message), but
# 2.1.197 still lost a "\r" that came in the same write as the paste (7 times in 23 tries), so the
# submit key goes as a write of its own once the agent has redrawn (`PtySession.type_echoed`).
# 2.1.332 sends a long or many-line paste to the model inside <pasted_content> tags, as it does
# with a human's paste. Typed while busy, all three queue the message (and show it queued): pi
# sends it as a user message with its next request, Claude Code adds it to its next request as
# "The user sent a new message while you were working: ..." (2.1.197 as a system message).
MAX_MESSAGE = 16 * 1024  # bytes (UTF-8): longer text belongs in a file the message names


def check_message(text: str) -> str:
    """A message for `_ worker tell` as it is typed: CRLF as LF, the blank space around it
    dropped. Refused (`InvalidInput`) when empty, over `MAX_MESSAGE`, not carriable text, or
    holding a control character other than newline and tab: the agent would take it as a key
    (ESC starts a key sequence, CR submits, ^C interrupts)."""
    problem = text_problem(text)
    if problem is not None:
        raise InvalidInput(f"the message {problem}")
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise InvalidInput("the message is empty")
    size = len(text.encode())
    if size > MAX_MESSAGE:
        raise InvalidInput(
            f"the message is {size} bytes, over the {MAX_MESSAGE} a worker is told at once:"
            " write it to a file and tell the worker its path"
        )
    for index, char in enumerate(text):
        if char not in "\n\t" and unicodedata.category(char) == "Cc":
            raise InvalidInput(
                f"the message holds the control character {char!r} (character {index + 1}), which the"
                " agent would take as a key: only newlines and tabs may be in it"
            )
    return text


def typed_message(profile: Profile, text: str) -> str:
    """What is typed for a checked message before the profile's submit key: the text, as a
    bracketed paste when the profile says the agent takes one. Without, a newline would submit
    the message in parts and a tab would be a key: refused (`InvalidInput`)."""
    if profile.bracketed_paste:
        return f"\x1b[200~{text}\x1b[201~"
    if "\n" in text:
        raise InvalidInput(
            f"the message has several lines, and profile {profile.name!r} takes no bracketed paste:"
            " each newline would submit a part; put it on one line (or set the profile's"
            " `bracketed_paste` in the config)"
        )
    if "\t" in text:
        raise InvalidInput(
            f"the message holds a tab, and profile {profile.name!r} takes no bracketed paste: the"
            " agent would take it as a key (completion); use spaces (or set the profile's"
            " `bracketed_paste` in the config)"
        )
    return text


# Claude Code starts a session of a given id and resumes one by it; otherwise the same command
def _claude_command(session_flag: str) -> tuple[str, ...]:
    return (
        "claude",
        "--settings",
        "{settings_file}",
        session_flag,
        "{session_uuid}",
        "--append-system-prompt",
        "{contract}",
        "{task}",
    )


CLAUDE = Profile(
    name="claude",
    command=_claude_command("--session-id"),
    resume=_claude_command("--resume"),
    settings={
        # "default": ask through the PermissionRequest hook (newer releases default to "auto",
        # whose server-side check a gateway such as a local proxy does not pass, so it asks on screen)
        "permissions": {
            "defaultMode": "default",
            # the worker's own verbs for itself, as the contract spells them; nothing else of looop's
            "allow": [f"Bash({{looop}} _ {verb} {{session}}:*)" for verb in WORKER_VERBS],
        },
        # its Bash tool ends a command after 2 minutes by default: a blocking `_ ask` would be
        # killed and re-run (one model turn each time) while the root agent decides
        "env": {"BASH_DEFAULT_TIMEOUT_MS": "3600000", "BASH_MAX_TIMEOUT_MS": "86400000"},
        "hooks": {
            "PermissionRequest": [
                {
                    "matcher": "*",
                    "hooks": [
                        {"type": "command", "command": "{looop_shell} _ dialog {session}", "timeout": 86400}
                    ],
                }
            ]
        },
    },
    dialogs=(_CLAUDE_TRUST, _CLAUDE_TRUST_LISTED, _CLAUDE_PERMISSION),
    conversation=(
        "{env:CLAUDE_CONFIG_DIR}/projects/{cwd_slug}/{session_uuid}.jsonl",
        "{env:HOME}/.claude/projects/{cwd_slug}/{session_uuid}.jsonl",
    ),
    blocked_markers=(r"Esc to cancel", r"Enter to confirm", "\u276f 1\\. ", *PROMPT_MARKERS),
    busy_markers=("esc to interrupt",),
    screen_skip=CLAUDE_SCREEN_SKIP,
    bracketed_paste=True,  # see TYPING
    raw_mode=True,
)

# pi continues a session file named on its command line, so the one command starts and resumes
_PI_COMMAND = (
    "pi",
    "--session",
    "{session_dir}/pi-{session_uuid}.jsonl",
    "--append-system-prompt",
    "{contract_file}",
    "{task}",
)
PI = Profile(
    name="pi",
    command=_PI_COMMAND,
    resume=_PI_COMMAND,
    blocked_markers=PROMPT_MARKERS,
    busy_markers=("working...", "esc to interrupt"),
    screen_skip=PI_SCREEN_SKIP,
    bracketed_paste=True,  # see TYPING
    raw_mode=True,
)

BUILT_IN: dict[str, Profile] = {p.name: p for p in (CLAUDE, PI)}
GENERIC = Profile(name="generic", command=(), blocked_markers=PROMPT_MARKERS)


def profile_of(
    interactive: str | list[str], resume: str | list[str] | None, overrides: dict[str, dict[str, Any]]
) -> Profile:
    """The profile the config selects: a profile's name, or a plain command (a string split like a
    shell would, without one, or an argv list) that keeps the traits of the agent it runs.
    A config `resume` replaces the profile's."""
    profiles = {
        name: _overridden(BUILT_IN.get(name, GENERIC), name, parts) for name, parts in overrides.items()
    }
    for name, built_in in BUILT_IN.items():
        profiles.setdefault(name, built_in)
    if isinstance(interactive, str) and interactive in profiles:
        chosen = profiles[interactive]
    else:
        argv = split_command(interactive, "interactive")
        known = profiles.get(os.path.basename(argv[0]), GENERIC)
        chosen = replace(known, command=tuple(argv), resume=None)  # its settings, if it names them
    if resume is not None:
        chosen = replace(chosen, resume=tuple(split_command(resume, "resume")))
    if not chosen.command:
        raise ConfigError(f"profile {chosen.name!r} has no `command`")
    return chosen


def _overridden(base: Profile, name: str, parts: dict[str, Any]) -> Profile:
    """`base` with the parts a config's `profiles.NAME` gives (already validated by the config)."""
    values: dict[str, Any] = {"name": name}
    for key, value in parts.items():
        if key == "dialogs":
            values[key] = tuple(
                Dialog(d["name"], d["pattern"], d["question"], dict(d["keys"]), bool(d.get("hooked")))
                for d in value
            )
        elif key in ("command", "resume", "blocked_markers", "busy_markers", "screen_skip"):
            values[key] = None if value is None else tuple(value)
        else:
            values[key] = value
    return replace(base, **values)


def split_command(command: str | list[str], key: str) -> list[str]:
    """A configured command as an argv: a string is split like a shell would, without one."""
    if isinstance(command, list):
        return list(command)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"key {key!r}: {exc}") from None
    if not argv:
        raise ConfigError(f"key {key!r} is empty")
    return argv


def filled_settings(profile: Profile, looop: str, session: str) -> dict[str, Any] | None:
    """The profile's settings file for one worker: every string with `{looop}` (the absolute
    looop path), `{looop_shell}` (the same, quoted for a shell) and `{session}` filled in."""
    if profile.settings is None:
        return None
    values = {"{looop}": looop, "{looop_shell}": shlex.quote(looop), "{session}": shlex.quote(session)}

    def filled(value: Any) -> Any:
        if isinstance(value, str):
            return fill(value, values)
        if isinstance(value, list):
            return [filled(v) for v in value]
        if isinstance(value, dict):
            return {k: filled(v) for k, v in value.items()}
        return value

    settings = filled(profile.settings)
    assert isinstance(settings, dict)
    return settings


def shown_dialog(profile: Profile, screen: str) -> tuple[Dialog, str] | None:
    """The first known dialog the screen shows, with what it concerns."""
    for dialog in profile.dialogs:
        concern = dialog.find(screen)
        if concern is not None:
            return dialog, concern
    return None


def shows_blocked(profile: Profile, screen: str) -> bool:
    """Does the screen look like a dialog is waiting for a keypress (known or not)?"""
    return any(re.search(marker, screen, re.MULTILINE) for marker in profile.blocked_markers)
