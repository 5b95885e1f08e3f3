"""The asks store: a worker's asks (`asks/ID.json`) and their answers (`answers/ID.json`).

An ask is pending while it has no answer file. Cancelling writes an answer file marked
`cancelled`, so one file decides an ask's fate and nothing is held in memory. An ask made inside a
worker carries that worker's run (`LOOOP_RUN_ID`): only the same run re-attaches to it, and when the
run ends its undelivered asks are cancelled, answered or not, so a later run never takes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, TypedDict

from looop.base import fields
from looop.base.errors import Cancelled, Conflict, CorruptFile, InvalidInput, NewerSchema, NotFound
from looop.base.files import SCHEMA_VERSION, StoreLock, read_json, write_json
from looop.base.ids import check_id, check_session_id, is_valid_id
from looop.store import journal
from looop.store.paths import DataDir


class PublicAsk(TypedDict):
    """An ask as the state shows it (`Ask.public`): times as timestamps, the run left out."""

    id: str
    worker: str
    prompt: str
    reference: str | None
    options: list[str] | None
    created: str
    deadline: str | None
    default: str | None
    urgent: bool


@dataclass(frozen=True)
class Ask:
    """A question a worker is blocked on: `asks/ID.json`."""

    id: str
    worker: str
    prompt: str
    reference: str | None
    options: list[str] | None
    created: float
    deadline: float | None = None  # when it resolves to `default`, or is escalated
    default: str | None = None
    urgent: bool = False  # escalated to the human: its deadline passed without a default
    run: str | None = None  # the run of the worker that asked; None from outside any run
    escalated_at: float | None = None
    v: int = SCHEMA_VERSION  # the schema its file was written in (1 when it names none)

    def public(self) -> PublicAsk:
        """The fields the root agent sees in the state."""
        return {
            "id": self.id,
            "worker": self.worker,
            "prompt": self.prompt,
            "reference": self.reference,
            "options": self.options,
            "created": journal.timestamp(self.created),
            "deadline": None if self.deadline is None else journal.timestamp(self.deadline),
            "default": self.default,
            "urgent": self.urgent,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], where: str) -> Ask:
        """The ask `raw` holds; `CorruptFile` naming the field when one has a wrong type or range."""
        version = fields.version(raw, where)
        try:
            ask_id = check_id(fields.text(raw, "id", where))
        except InvalidInput as exc:
            raise CorruptFile(where, f"not a valid ask ({exc})") from None
        return cls(
            id=ask_id,
            worker=fields.text(raw, "worker", where),
            prompt=fields.text(raw, "prompt", where),
            reference=fields.optional_text(raw, "reference", where),
            options=fields.texts(raw, "options", where),
            created=fields.number(raw, "created", where, default=0.0),
            deadline=fields.optional_number(raw, "deadline", where),
            default=fields.optional_text(raw, "default", where),
            urgent=fields.flag(raw, "urgent", where),
            run=fields.optional_text(raw, "run", where),
            escalated_at=fields.optional_number(raw, "escalated_at", where),
            v=version,
        )

    def to_json(self) -> dict[str, Any]:
        """The file's content (`write_json` stamps it with this looop's schema version)."""
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """An ask's fate: `answers/ID.json`, its answer (by the root agent, a human, or its deadline's
    default) or its cancellation; `delivered_at` once its asker took the answer."""

    id: str
    answer: str | None  # None only when it was cancelled before anyone answered
    answered_at: float  # when answered, or cancelled unanswered
    by: str | None = None
    defaulted: bool = False  # its ask's default, given at its deadline
    cancelled: bool = False
    reason: str | None = None  # why it was cancelled
    cancelled_at: float | None = None  # when an answer never delivered was voided
    delivered_at: float | None = None
    v: int = SCHEMA_VERSION

    @property
    def settled(self) -> bool:
        """Delivered or cancelled: nothing more becomes of it."""
        return self.cancelled or bool(self.delivered_at)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], where: str) -> Answer:
        """The answer `raw` holds; `CorruptFile` naming the field when one has a wrong type."""
        version = fields.version(raw, where)
        cancelled = fields.flag(raw, "cancelled", where)
        text = fields.optional_text if cancelled else fields.text  # a cancelled ask may have none
        return cls(
            id=fields.text(raw, "id", where),
            answer=text(raw, "answer", where),
            answered_at=fields.number(raw, "answered_at", where, default=0.0),
            by=fields.optional_text(raw, "by", where),
            defaulted=fields.flag(raw, "defaulted", where),
            cancelled=cancelled,
            reason=fields.optional_text(raw, "reason", where),
            cancelled_at=fields.optional_number(raw, "cancelled_at", where),
            delivered_at=fields.optional_number(raw, "delivered_at", where),
            v=version,
        )

    def to_json(self) -> dict[str, Any]:
        """The file's content (`write_json` stamps it with this looop's schema version)."""
        return asdict(self)


def parse_options(raw: str | None) -> list[str] | None:
    """`a,b,c` as a list; refuse an empty or repeated option."""
    if raw is None:
        return None
    options = [part.strip() for part in raw.split(",")]
    if not all(options):
        raise InvalidInput(f"--options {raw!r} has an empty option; give them as a,b,c")
    if len({o.lower() for o in options}) != len(options):
        raise InvalidInput(f"--options {raw!r} repeats an option")
    return options


def _store_lock(dd: DataDir) -> StoreLock:
    return StoreLock.for_path(dd.store_lock)


def _next_ask_id(dd: DataDir, session: str) -> str:
    prefix = session[:56]
    number = 1
    while dd.ask(f"{prefix}-{number}").exists():
        number += 1
    return f"{prefix}-{number}"


def read_ask(dd: DataDir, ask_id: str) -> Ask:
    """The ask `ask_id`; `FileNotFoundError` when there is none, `CorruptFile` when unreadable."""
    path = dd.ask(ask_id)
    return Ask.from_json(read_json(path), str(path))


def read_answer(dd: DataDir, ask_id: str) -> Answer | None:
    """The answer file of `ask_id`, None when there is none; `CorruptFile` when unreadable."""
    path = dd.answer(ask_id)
    try:
        raw = read_json(path)
    except FileNotFoundError:
        return None
    return Answer.from_json(raw, str(path))


def iter_asks(dd: DataDir) -> Iterable[Ask | CorruptFile]:
    """Every ask on disk, or the problem with its file."""
    for path in sorted(dd.asks.glob("*.json")):
        if path.name.startswith(".") or not is_valid_id(path.stem):
            continue
        try:
            yield Ask.from_json(read_json(path), str(path))
        except CorruptFile as problem:
            yield problem
        except FileNotFoundError:
            continue


def pending_asks(dd: DataDir) -> tuple[list[Ask], list[str]]:
    """Asks without an answer, oldest first, and lines describing unreadable files."""
    pending: list[Ask] = []
    problems: list[str] = []
    for item in iter_asks(dd):
        if isinstance(item, CorruptFile):
            problems.append(item.message)
            continue
        try:
            if read_answer(dd, item.id) is None:
                pending.append(item)
        except CorruptFile as problem:
            problems.append(problem.message)
    pending.sort(key=lambda a: (a.created, a.id))
    return pending, problems


def open_ask(
    dd: DataDir,
    session: str,
    prompt: str,
    reference: str | None,
    options: list[str] | None,
    timeout: float | None = None,
    default: str | None = None,
    run: str | None = None,
) -> Ask:
    """File a new ask, or re-attach to this session's identical one of the same `run` that is not
    yet delivered.

    Re-attaching lets a worker whose tool killed a long `_ ask` simply run it again (the ask keeps
    its first deadline); a new run of the worker, or an ask from outside any run (`run` None),
    never takes a run's ask. `timeout` sets the deadline, when the ask resolves to `default`, or is
    escalated to the human without one.
    """
    check_session_id(session)
    if not prompt.strip():
        raise InvalidInput("the ask's --prompt is empty")
    if default is not None and options is not None:
        default = _canonical(options, default, "--default")
    with _store_lock(dd).held():
        for item in iter_asks(dd):
            if isinstance(item, CorruptFile) or (item.worker, item.run) != (session, run):
                continue
            if (item.prompt, item.reference, item.options) != (prompt, reference, options):
                continue
            answer = read_answer(dd, item.id)
            if answer is None or not answer.settled:
                return item
        now = time.time()
        deadline = None if timeout is None else now + timeout
        ask = Ask(
            _next_ask_id(dd, session), session, prompt, reference, options, now, deadline, default, run=run
        )
        write_json(dd.ask(ask.id), ask.to_json())
        shown = f"{prompt}" + (f" [{', '.join(options)}]" if options else "")
        journal.record(dd, "ask", ask.id, shown, who=session)
    return ask


def answer_ask(dd: DataDir, ask_id: str, text: str) -> str:
    """Record the answer to a pending ask and return it (an option in its canonical spelling)."""
    check_id(ask_id, "ask id")
    if not text.strip():
        raise InvalidInput("the answer is empty")
    with _store_lock(dd).held():
        try:
            ask = read_ask(dd, ask_id)
        except FileNotFoundError:
            raise NotFound(f"no ask {ask_id!r} (see `looop _ state` for pending asks)") from None
        try:
            existing = read_answer(dd, ask_id)
        except NewerSchema:
            raise
        except CorruptFile:
            existing = None  # never torn by looop: a hand-damaged file; a fresh answer replaces it
        if existing is not None:
            raise Conflict(f"ask {ask_id} is already {'cancelled' if existing.cancelled else 'answered'}")
        if ask.options is not None:
            text = _canonical(ask.options, text, f"ask {ask_id}")
        write_json(dd.answer(ask_id), Answer(ask_id, text, time.time(), by=journal.actor()).to_json())
        journal.record(dd, "answer", ask_id, text)
    return text


def _canonical(options: list[str], text: str, what: str) -> str:
    """The option `text` names, in its own spelling; `InvalidInput` if it names none."""
    matches = [o for o in options if o.lower() == text.strip().lower()]
    if not matches:
        raise InvalidInput(f"{what} takes one of: {', '.join(options)}")
    return matches[0]


def settle(dd: DataDir, ask_id: str) -> str | None:
    """An ask whose deadline passed: answer it with its default (returned), or escalate it to the
    human (urgent in the state, a notification) and return None. Idempotent."""
    with _store_lock(dd).held():
        try:
            ask = read_ask(dd, ask_id)
            if read_answer(dd, ask_id) is not None:
                return None
        except (FileNotFoundError, CorruptFile):
            return None
        if ask.default is not None:
            answer = Answer(ask_id, ask.default, time.time(), by="deadline", defaulted=True)
            write_json(dd.answer(ask_id), answer.to_json())
            journal.record(
                dd, "answer", ask_id, f"{ask.default} (its default: no answer by its deadline)", who="looop"
            )
            return ask.default
        if ask.urgent:
            return None
        write_json(dd.ask(ask_id), replace(ask, urgent=True, escalated_at=time.time()).to_json())
        journal.record(dd, "ask escalated", ask_id, "no answer by its deadline and no default", who="looop")
    from looop.store.notices import notify

    notify(
        dd,
        f"ask {ask_id} from {ask.worker} needs a decision (its deadline passed):"
        f" {journal.one_line(ask.prompt, 1000)}",
        who="looop",
    )
    return None


def settle_overdue(dd: DataDir) -> list[str]:
    """`settle` every pending ask past its deadline; return their ids."""
    now = time.time()
    overdue = [
        a.id for a in pending_asks(dd)[0] if a.deadline is not None and a.deadline <= now and not a.urgent
    ]
    for ask_id in overdue:
        settle(dd, ask_id)
    return overdue


def cancel_ask(dd: DataDir, ask_id: str, reason: str) -> bool:
    """Cancel an undelivered ask for good: a pending one, or an answered one whose answer never
    reached its asker (that answer is void). An asker still waiting on it exits 8 (Cancelled).
    False if it was delivered or cancelled already (or its answer file is unreadable)."""
    with _store_lock(dd).held():
        if not dd.ask(ask_id).exists():
            return False
        try:
            answer = read_answer(dd, ask_id)
        except CorruptFile:
            return False  # hand-damaged: left for a human, as the state reports it
        now = time.time()
        if answer is None:
            write_json(dd.answer(ask_id), Answer(ask_id, None, now, cancelled=True, reason=reason).to_json())
            journal.record(dd, "ask cancelled", ask_id, reason, who="looop")
            return True
        if answer.settled:
            return False
        voided = replace(answer, cancelled=True, reason=reason, cancelled_at=now)
        write_json(dd.answer(ask_id), voided.to_json())
        detail = f"{reason}; its answer {answer.answer} was never delivered"
        journal.record(dd, "ask cancelled", ask_id, detail, who="looop")
    return True


def cancel_asks_of(dd: DataDir, session: str, reason: str) -> list[str]:
    """A worker's run ended: cancel every undelivered ask of `session` (pending, or answered but
    not delivered), so that no later run of that id takes its answer; return their ids."""
    asks = [a for a in iter_asks(dd) if not isinstance(a, CorruptFile) and a.worker == session]
    asks.sort(key=lambda a: (a.created, a.id))
    return [a.id for a in asks if cancel_ask(dd, a.id, reason)]


def collect_answer(dd: DataDir, ask_id: str) -> str | None:
    """The answer to `ask_id`, marked delivered, or None while it is pending; `Cancelled` if it
    was cancelled. One step with `cancel_ask`: delivered, or cancelled, never both."""
    with _store_lock(dd).held():
        current = read_answer(dd, ask_id)
        if current is None:
            return None
        if current.cancelled or current.answer is None:
            raise Cancelled(f"ask {ask_id} was cancelled: {current.reason or 'no reason given'}")
        if not current.delivered_at:
            write_json(dd.answer(ask_id), replace(current, delivered_at=time.time()).to_json())
    return current.answer
