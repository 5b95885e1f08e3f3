"""What of an agent CLI's screen is chrome: regexes of the lines `looop status` passes over
when it shows a worker's last screen line (`SessionSpec.screen_skip`, kept in the worker's
`state.json` as `screen_skip`). Each is searched in a screen line with its trailing blanks
removed (leading ones kept: the agents indent their own output, not their status bars).

Checked against Claude Code 2.1.197 and pi 0.73.1 in a 50x200 pty.
"""

from __future__ import annotations

# Rules and the input box's borders, the empty prompt, the mode line under the box
# ("? for shortcuts", "⏵⏵ accept edits on (shift+tab to cycle)"), the busy and done spinners
# ("✻ Baking… (esc to interrupt)", "✻ Baked for 3s"), the editor hint.
CLAUDE_SCREEN_SKIP: tuple[str, ...] = (
    r"^[\s─━═│┃╭╮╰╯┌┐└┘├┤╌╍]*$",
    "^[│┃]?\\s*[>\u276f]?\\s*[│┃]?$",  # \u276f: the prompt mark
    r"\? for shortcuts",
    r"⏵⏵|accept edits on|bypass permissions on|plan mode on|shift\+tab to cycle",
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
