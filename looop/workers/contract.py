"""The worker contract, the prompt a worker receives, and the argv that starts its agent.

A profile's command (`looop.workers.profiles`) may hold placeholders, replaced inside each argument
(never through a shell): `{prompt}` / `{prompt_file}` (the contract followed by the task),
`{contract}` / `{contract_file}` (the contract alone, for a system-prompt flag), `{task}` (the
root agent's prompt alone), `{session_uuid}` (the agent's own session id, kept to resume it),
`{session_dir}` (the worker's `sessions/ID/`) and `{settings_file}` (the profile's settings
written for this worker). Without `{prompt}`, `{prompt_file}` or `{task}`, the whole prompt is
appended as the last argument.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from looop.base.errors import InvalidInput

TASK_PLACEHOLDERS = ("{prompt}", "{prompt_file}", "{task}")
WORKER_VERBS = ("ask", "claim", "unclaim", "cost", "kill")  # the verbs a worker runs, for itself
MAX_ARGUMENT = 120 * 1024  # Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN)

CONTRACT = """\
# looop worker contract

You are worker session `{session}`, started by looop for its root agent. You do hands-on,
multi-step work; the root agent (and through it, a human) decides. These rules come first.

## When you need a decision, ask and wait
Run this ONE command, spelled exactly so (the path and your session id are literal, so it
runs without a permission dialog); it returns when the root agent answers:

    {looop} _ ask {session} --prompt "<your question>" [--ref <path or URL to look at>] [--options yes,no]

Its whole output is the answer, and it exits 0; exit 8 means the ask was cancelled (stop that
line of work). If your tool kills a long wait, run the very same command again: it re-attaches
to the same ask (if you were restarted, it asks anew: an answer you never received is void).
Never guess where a decision is needed, and never do anything irreversible
(merge, deploy, delete, publish, pay, send in someone's name) without an explicit "yes".

## Shared resources: lease them
    {looop} _ claim {session} <resource>     # exit 6 names the holder
    {looop} _ unclaim {session} <resource>
Claim before you touch something other workers may touch (a database, a deploy slot, a
branch); release it when done. Your claims are released when your session ends.

## Report your spend
    {looop} _ cost {session} <amount> [--unit usd|tokens] [--note "what for"]

(Scripts may spell these `"$LOOOP_BIN" _ ... "$LOOOP_SESSION_ID"`: both are in your environment.)

## Where you may write
Only to: your sandbox (your working directory{sandbox_note}), `{reports}` (deliverables for
the human: name files `{session}-<topic>.md`), and claims through the verbs above. Everything
else in {data_dir} belongs to looop and the root agent: read it if useful, never edit it.

## Messages typed into your session
The root agent may type a message into your session, as a human at your terminal would (a
correction, more direction, a question): it comes from the root agent. Follow it as part of
your task; if it conflicts with your task or these rules, ask.

## When you are done
Write your result to `{reports}/{session}-<topic>.md`, then end your own session:

    {looop} _ kill {session}
"""


@dataclass(frozen=True)
class Prompt:
    """What a worker is told: the contract, then the root agent's task."""

    contract: str
    task: str

    @property
    def full(self) -> str:
        return f"{self.contract}\n---\n\n# Your task\n\n{self.task.strip()}\n"


RESUMED = """\
You were interrupted: your previous session ended ({how}) before you finished. Your
conversation so far is restored above. Check where you stopped (your sandbox, your reports,
your claims: they were released), then carry on with your task.
"""


def worker_prompt(
    session: str, task: str, data_dir: Path, reports: Path, looop: str, sandbox_note: str = ""
) -> Prompt:
    """The contract filled in for `session` (`looop`: the absolute path that runs looop), and the task."""
    if not task.strip():
        raise InvalidInput("the worker's prompt is empty")
    contract = CONTRACT.format(
        session=session,
        reports=reports,
        data_dir=data_dir,
        sandbox_note=sandbox_note,
        looop=shlex.quote(looop),
    )
    return Prompt(contract, task)


@dataclass(frozen=True)
class WorkerFiles:
    """The files of one worker that placeholders name."""

    prompt: Path
    contract: Path
    settings: Path
    session_dir: Path


def agent_argv(command: tuple[str, ...], prompt: Prompt, files: WorkerFiles, session_uuid: str) -> list[str]:
    """Fill the placeholders of `command`; append the whole prompt when no argument takes the task."""
    values = {
        "{session_uuid}": session_uuid,
        "{prompt_file}": str(files.prompt),
        "{prompt}": prompt.full,
        "{contract_file}": str(files.contract),
        "{contract}": prompt.contract,
        "{task}": prompt.task.strip(),
        "{session_dir}": str(files.session_dir),
        "{settings_file}": str(files.settings),
    }
    takes_task = any(p in arg for arg in command for p in TASK_PLACEHOLDERS)
    argv = [fill(arg, values) for arg in command]
    if not takes_task:
        argv.append(prompt.full)
    for arg in argv:
        if len(arg.encode()) > MAX_ARGUMENT:
            raise InvalidInput(
                "the prompt is too long to pass as an argument (over 120 KiB): use {prompt_file}"
                " in the config's `interactive` command, or shorten it"
            )
    return argv


def fill(text: str, values: dict[str, str]) -> str:
    """Replace every placeholder of `values` in `text` in one pass (the longest first where two
    start alike), so a value that itself holds a placeholder, such as `{task}`, stays as it is."""
    placeholders = sorted(values, key=len, reverse=True)
    out: list[str] = []
    index = 0
    while index < len(text):
        for placeholder in placeholders:
            if text.startswith(placeholder, index):
                out.append(values[placeholder])
                index += len(placeholder)
                break
        else:
            out.append(text[index])
            index += 1
    return "".join(out)
