#!/usr/bin/env python3
"""A stand-in for an interactive agent CLI (claude, pi) in tests: it draws a TUI-like screen with
ANSI codes, takes its prompt from argv (or stdin), and follows a script found in the prompt.

Flags like the real CLIs': `--append-system-prompt TEXT|FILE` (repeatable), `--model M`,
`--session-id ID`, `--resume ID`, `--session FILE` (pi's), `--settings FILE` (claude's, summarised);
the last positional argument is the prompt (`-` reads it from stdin).

Script lines in the prompt start with `FAKE:`:
    FAKE: say TEXT                 print a line
    FAKE: emit TEXT                write TEXT as is, its Python escapes (\\x1b, \\r\\n) decoded
    FAKE: ask QUESTION [| a,b]     `_ ask`, blocking; the answer is kept as {answer}
    FAKE: claim RES / unclaim RES  `_ claim` / `_ unclaim`; the result is printed
    FAKE: claim-until RES          retry `_ claim` every 0.1 s until it is granted
    FAKE: cost AMOUNT [UNIT]       `_ cost`
    FAKE: report NAME TEXT         write reports/NAME ({answer}, {cwd}, {env:VAR}, {size} filled in)
    FAKE: print BYTES              print that many bytes of text as fast as possible
    FAKE: sleep SECONDS
    FAKE: busy SECONDS             show "esc to interrupt", stay quiet that long, then show idle chrome
    FAKE: busy-until FILE          show "esc to interrupt", stay quiet until FILE exists, then idle chrome
    FAKE: quiet-until FILE         show idle chrome until FILE exists (its turn is over), then busy
    FAKE: spawn-child [NAME]       start a grandchild (same group) that sleeps for ever, NAME in its argv
    FAKE: detach NAME              start, as Claude Code runs a tool command, a grandchild that leaves
                                   the group and the session (setsid, double fork; its stdio off the
                                   pty) and ignores SIGTERM and SIGHUP, NAME in its argv
    FAKE: ignore-term              ignore SIGTERM from now on (with its group)
    FAKE: ignore-hup               ignore SIGHUP from now on: survive its pty's hang-up (with its group)
    FAKE: dialog COMMAND           show a Claude Code-like permission dialog about COMMAND and read
                                   one key (1 or Enter: yes, 2: always, 3 or Escape: no)
    FAKE: passing-dialog CMD SECS  the same dialog, gone after SECS if nobody answers (as a hook does)
    FAKE: hooked-dialog COMMAND    the same dialog, answered by `_ dialog` (Claude Code's hook) meanwhile
    FAKE: prompt TEXT              show TEXT and read one key, like a dialog looop does not know
    FAKE: raw                      put its terminal in raw mode, as a TUI does: typed keys wait as sent
    FAKE: await-keys               read one burst of typed keys, printing nothing (a TUI taking text)
    FAKE: listen FILE              read typed keys for ever, like a TUI's input box (raw mode): text
                                   and bracketed pastes (ESC[200~ ... ESC[201~, newlines kept) go into
                                   the box, redrawn after each read; a "\r" outside a paste submits
                                   it: one JSON line {"text", "pasted"} is appended to FILE
    FAKE: crash CODE               exit with CODE at once
    FAKE: kill [FILE]              `_ kill` itself; once it returns, write FILE (it must never appear)
    FAKE: exit                     exit 0
After the script it idles like a TUI waiting for input: it echoes each submitted line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ESC = "\x1b"
DETACHED = """
import os, signal, time
if os.fork():
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
while True:
    time.sleep(1)
"""
state: dict[str, str] = {"answer": ""}


def draw_frame(status: str) -> None:
    """Clear and draw the chrome a TUI agent shows: a box, a status line."""
    cols = shutil.get_terminal_size().columns
    width = min(cols, 60)
    sys.stdout.write(f"{ESC}[2J{ESC}[H")
    sys.stdout.write(f"{ESC}[1;36m╭{'─' * (width - 2)}╮{ESC}[0m\r\n")
    title = f" fake agent · session {os.environ.get('LOOOP_SESSION_ID', '?')}"
    sys.stdout.write(f"{ESC}[1;36m│{ESC}[0m{title.ljust(width - 2)}{ESC}[1;36m│{ESC}[0m\r\n")
    sys.stdout.write(f"{ESC}[1;36m╰{'─' * (width - 2)}╯{ESC}[0m\r\n")
    sys.stdout.write(f"{ESC}[2m{status}{ESC}[0m\r\n")
    sys.stdout.flush()


def status_line(status: str) -> str:
    """What rewrites the status line in place, keeping the cursor where it was."""
    return f"{ESC}7{ESC}[4;1H{ESC}[2K{ESC}[2m{status}{ESC}[0m{ESC}8"


def set_status(status: str) -> None:
    sys.stdout.write(status_line(status))
    sys.stdout.flush()


def say(text: str) -> None:
    sys.stdout.write(f"{ESC}[32m●{ESC}[0m {text}\r\n")
    sys.stdout.flush()


def looop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.environ["LOOOP_BIN"], *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def fill(text: str) -> str:
    out = text.replace("{answer}", state["answer"]).replace("{cwd}", os.getcwd())
    size = shutil.get_terminal_size()
    out = out.replace("{size}", f"{size.lines}x{size.columns}")
    while "{env:" in out:
        start = out.index("{env:")
        end = out.index("}", start)
        out = out[:start] + os.environ.get(out[start + 5 : end], "") + out[end + 1 :]
    return out


def step(line: str) -> None:
    verb, _, rest = line.partition(" ")
    session = os.environ["LOOOP_SESSION_ID"]
    if verb == "say":
        say(fill(rest))
    elif verb == "emit":
        text = rest.encode("latin-1", "backslashreplace").decode("unicode_escape")
        sys.stdout.buffer.write(text.encode())
        sys.stdout.flush()
    elif verb == "ask":
        question, _, options = rest.partition("|")
        args = ["_", "ask", session, "--prompt", question.strip()]
        if options.strip():
            args += ["--options", options.strip()]
        say(f"asking: {question.strip()}")
        done = looop(*args)
        state["answer"] = done.stdout.strip()
        say(f"answer: {state['answer']} (exit {done.returncode})")
        if done.returncode != 0:
            say(f"ask failed: {done.stderr.strip()}")
    elif verb in ("claim", "unclaim"):
        done = looop("_", verb, session, rest)
        say(f"{verb} {rest}: exit {done.returncode} {done.stdout.strip()}{done.stderr.strip()}")
    elif verb == "claim-until":
        while (done := looop("_", "claim", session, rest)).returncode != 0:
            time.sleep(0.1)
        say(f"claimed {rest} at last: {done.stdout.strip()}")
    elif verb == "cost":
        amount, _, unit = rest.partition(" ")
        looop("_", "cost", session, amount, "--unit", unit or "usd")
    elif verb == "report":
        name, _, text = rest.partition(" ")
        reports = Path(os.environ["LOOOP_DATA_DIR"]) / "reports"
        (reports / fill(name)).write_text(fill(text) + "\n")
    elif verb == "print":
        total = int(rest)
        block = ("flood " * 13 + "\r\n").encode() * 1000
        out = sys.stdout.buffer
        while total > 0:
            out.write(block[:total])
            total -= len(block)
        out.flush()
        say("flood done")
    elif verb == "sleep":
        time.sleep(float(rest))
    elif verb == "busy":
        set_status("esc to interrupt")
        time.sleep(float(rest))
        set_status("? for shortcuts")
    elif verb == "busy-until":
        set_status("esc to interrupt")
        while not os.path.exists(rest):
            time.sleep(0.05)
        set_status("? for shortcuts")
    elif verb == "quiet-until":  # its turn is over: idle chrome, then busy again
        set_status("? for shortcuts")
        while not os.path.exists(rest):
            time.sleep(0.05)
        set_status("esc to interrupt")
    elif verb == "spawn-child":
        name = rest or "fake-grandchild"
        subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)", name])
    elif verb == "detach":
        # a new session (setsid), then a fork whose parent exits: reparented, in no group of ours
        subprocess.run(
            ["setsid", sys.executable, "-c", DETACHED, rest],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    elif verb == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif verb == "ignore-hup":
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    elif verb in ("dialog", "hooked-dialog", "passing-dialog"):
        sys.stdout.write(  # the status line cleared and the dialog drawn in one write
            f"{status_line('')} {ESC}[1mBash command{ESC}[0m\r\n\r\n   {rest}\r\n   Run shell command\r\n\r\n"
            f" Do you want to proceed?\r\n {ESC}[36m\u276f{ESC}[0m 1. Yes\r\n"
            "   2. Yes, and always allow it\r\n   3. No\r\n\r\n Esc to cancel \u00b7 Tab to amend\r\n"
        )
        sys.stdout.flush()
        if verb == "hooked-dialog":  # as Claude Code does: the hook decides while the dialog is up
            request = {
                "hook_event_name": "PermissionRequest",
                "tool_name": "Bash",
                "tool_input": {"command": rest},
            }
            done = subprocess.run(
                [os.environ["LOOOP_BIN"], "_", "dialog", session],
                input=json.dumps(request),
                capture_output=True,
                text=True,
            )
            decision = json.loads(done.stdout)["hookSpecificOutput"]["decision"]["behavior"]
            sys.stdout.write(f"{ESC}[2J{ESC}[H")
            say(f"hook decision: {decision}")
            return
        keys = read_keys(None if verb == "dialog" else float(rest.split()[-1]))
        sys.stdout.write(f"{ESC}[2J{ESC}[H")
        say(f"dialog answer: {DIALOG_KEYS.get(keys, repr(keys))}")
    elif verb == "prompt":
        set_status("")  # not busy: it waits for a key
        sys.stdout.write(f"{rest}\r\n")
        sys.stdout.flush()
        say(f"prompt answer: {read_keys()!r}")
    elif verb == "raw":
        import termios
        import tty

        tty.setraw(sys.stdin.fileno(), termios.TCSANOW)  # not TCSAFLUSH: keep what was typed
    elif verb == "await-keys":
        read_keys()
    elif verb == "listen":
        listen(Path(rest))
    elif verb == "crash":
        say("something went wrong")
        os._exit(int(rest))
    elif verb == "kill":
        done = looop("_", "kill", session)
        if rest:
            Path(rest).write_text(f"acted after `_ kill` returned (exit {done.returncode})\n")
        say(f"kill: exit {done.returncode}")
        time.sleep(30)  # the group is being ended
    elif verb == "exit":
        sys.exit(0)


DIALOG_KEYS = {"1": "yes", "\r": "yes", "2": "always", "3": "no", "\x1b": "no"}


def read_keys(timeout: float | None = None) -> str:
    """What is typed next, as one burst of keys, read from the terminal in cbreak mode ("" when
    nothing comes within `timeout` seconds)."""
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        if not select.select([fd], [], [], timeout)[0]:
            return ""
        keys = os.read(fd, 64)
        while select.select([fd], [], [], 0.2)[0]:
            keys += os.read(fd, 64)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return keys.decode()


PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


def listen(log: Path) -> None:
    """Take typed input as a TUI's input box does; append each submitted message to `log`."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    tty.setraw(fd, termios.TCSANOW)  # not TCSAFLUSH: what was typed before stays to be read
    set_status("? for shortcuts")
    typed = ""  # what came since the last submit, paste markers included
    while chunk := os.read(fd, 4096):
        typed += chunk.decode()
        while True:
            pasting, submit = False, -1
            for index, char in enumerate(typed):
                if typed.startswith(PASTE_START, index):
                    pasting = True
                elif typed.startswith(PASTE_END, index):
                    pasting = False
                elif char == "\r" and not pasting:
                    submit = index
                    break
            if submit < 0:
                break
            message, typed = typed[:submit], typed[submit + 1 :]
            text = message.replace(PASTE_START, "").replace(PASTE_END, "")
            with log.open("a") as out:
                out.write(json.dumps({"text": text, "pasted": PASTE_START in message}) + "\n")
            say(f"you said: {' / '.join(text.splitlines())}")
        box = typed.replace(PASTE_START, "").replace(PASTE_END, "").replace("\n", " / ")
        set_status(f"> {box[-50:]}")


def parse_args(argv: list[str]) -> tuple[list[str], str]:
    system: list[str] = []
    positional: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--append-system-prompt":
            value = next(it)
            system.append(Path(value).read_text() if os.path.isfile(value) else value)
        elif arg in ("--session-id", "--resume", "--session"):
            state["session"] = f"{arg.removeprefix('--')} {next(it)}"
            if arg == "--session-id":  # where Claude Code keeps the conversation it begins
                slug = re.sub(r"[^A-Za-z0-9]", "-", os.getcwd())
                kept = Path.home() / ".claude" / "projects" / slug / f"{state['session'].split()[1]}.jsonl"
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.touch()
        elif arg == "--settings":
            settings = json.loads(Path(next(it)).read_text())
            lines = [f"settings allow: {rule}" for rule in settings.get("permissions", {}).get("allow", [])]
            for event, matchers in settings.get("hooks", {}).items():
                lines += [f"settings hook {event}: {h['command']}" for m in matchers for h in m["hooks"]]
            state["settings"] = "\n".join(lines)
        elif arg in ("--model", "--permission-mode"):
            next(it)
        else:
            positional.append(arg)
    prompt = positional[-1] if positional else ""
    if prompt == "-":
        prompt = sys.stdin.readline()
    elif os.path.isfile(prompt):
        prompt = Path(prompt).read_text()
    return system, prompt


def main() -> None:
    system, prompt = parse_args(sys.argv[1:])
    draw_frame("esc to interrupt")
    contract = any("looop worker contract" in text for text in [*system, prompt])
    say(f"contract: {'yes' if contract else 'no'}; system prompts: {len(system)}")
    if "session" in state:
        say(state["session"])
    for line in state.get("settings", "").splitlines():
        say(line)
    for line in prompt.splitlines():
        if line.startswith("FAKE: "):
            step(line[len("FAKE: ") :].strip())
    set_status("? for shortcuts")
    for typed in sys.stdin:
        say(f"you said: {typed.strip()}")


if __name__ == "__main__":
    main()
