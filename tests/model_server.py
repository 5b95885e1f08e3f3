"""A scripted model server for the real agent CLIs: stdlib HTTP on 127.0.0.1, no network.

It speaks the two streaming APIs the agents use:
- OpenAI chat completions (`POST .../v1/chat/completions`, SSE `chat.completion.chunk`s) for pi,
  whose tool is `bash` with arguments `{"command": ...}`;
- Anthropic Messages (`POST .../v1/messages`, SSE events, and `.../v1/messages/count_tokens`)
  for Claude Code, whose tool is `Bash` with input `{"command": ...}`.

Each agent gets a script of its own, reached under its own path prefix (`/s/NAME`): pi's
`models.json` base URL is `url(NAME) + "/v1"`, Claude Code's `ANTHROPIC_BASE_URL` is `url(NAME)`.
Workers of one `looop up` share its environment, so they can share `url()` instead: a request
there goes to the script named after the worker session its prompt names (the contract's
"You are worker session `w1`"), else to the script named `default`.
A script is a list of steps, `Bash(command)` (a call of the agent's shell tool), `Tool(name,
input)` (any other tool) and `Say(text)` (a final answer); a step's argument is a string (a dict)
or a callable given the text of the tool result the model saw last.
Which step answers a request is the number of assistant turns already in the conversation it
sends, so a retried request gets the same step again and a side request (Claude Code's title,
sent without `tools`) gets plain text and moves nothing. Past the end of its script the model
says `SCRIPT_DONE`. Every tool result received is recorded, in order, as the text the model saw.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

Text = str | Callable[[str], str]
SCRIPT_DONE = "SCRIPT_DONE"
SHARED = "fleet"  # the path prefix all workers can share: requests go to the worker they name
DEFAULT = "default"  # under the shared prefix, the script for a request that names no worker


@dataclass(frozen=True)
class Bash:
    """The model calls its shell tool with this command."""

    command: Text


@dataclass(frozen=True)
class Say:
    """The model answers with this text and ends its turn."""

    text: Text


@dataclass(frozen=True)
class Tool:
    """The model calls another tool by its name in that agent (Claude Code `Write`, `Edit`, `Read`;
    pi `write`, `edit`, `read`) with this input (or a callable given the last tool result)."""

    name: str
    input: dict[str, Any] | Callable[[str], dict[str, Any]]


Step = Bash | Say | Tool


def _resolve(value: Text, last_result: str) -> str:
    return value if isinstance(value, str) else value(last_result)


@dataclass
class Script:
    """One agent's conversation, and what came back to the model."""

    name: str
    steps: list[Step]
    results: list[str] = field(default_factory=list)  # tool results, in the order first seen
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request body
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def record(self, body: dict[str, Any], results: list[tuple[str, str]]) -> None:
        with self._changed:
            self.requests.append(body)
            for call_id, text in results:
                if call_id not in self._seen:
                    self._seen.add(call_id)
                    self.results.append(text)
            self._changed.notify_all()

    def wait_results(self, count: int, timeout: float = 60) -> list[str]:
        """The tool results, once at least `count` have come back (AssertionError after `timeout`)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.results) >= count, timeout):
                raise AssertionError(
                    f"script {self.name}: {len(self.results)} tool results after {timeout}s, wanted {count}:"
                    f" {self.results}"
                )
            return list(self.results)

    def step(self, turn: int, last_result: str) -> tuple[str | None, Any]:
        """The model's `turn`-th reply: (None, text) for a final answer, else (tool name, its
        input), where the name "" is the agent's shell tool (`Bash` / `bash`)."""
        if turn >= len(self.steps):
            return None, SCRIPT_DONE
        step = self.steps[turn]
        if isinstance(step, Bash):
            return "", {"command": _resolve(step.command, last_result)}
        if isinstance(step, Tool):
            return step.name, step.input if isinstance(step.input, dict) else step.input(last_result)
        return None, _resolve(step.text, last_result)

    def system_prompt(self, request: int = 0) -> str:
        """The system prompt of the `request`-th request (both APIs)."""
        body = self.requests[request]
        if "system" in body:
            return _text_of(body["system"])
        system = [m for m in body.get("messages") or [] if m.get("role") in ("system", "developer")]
        return "".join(_text_of(m.get("content")) for m in system)

    def user_messages(self, request: int = 0) -> list[str]:
        """The text of the user messages of the `request`-th request (tool results left out)."""
        messages = self.requests[request].get("messages") or []
        return [t for m in messages if m.get("role") == "user" and (t := _text_of(m.get("content")))]

    def said(self, request: int = 0) -> list[str]:
        """The text of the user and system messages in the `request`-th request's conversation
        (tool results left out): where a message typed into the agent arrives, as a user turn;
        typed while it was busy, pi sends it as one too, Claude Code in a note of its own ("The
        user sent a new message while you were working: ..."), 2.1.197 as a system message."""
        messages = self.requests[request].get("messages") or []
        roles = ("user", "system")
        return [t for m in messages if m.get("role") in roles and (t := _text_of(m.get("content")))]


def _text_of(content: Any) -> str:
    """The text of a message's or tool result's content: a string, or a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                elif "content" in block and block.get("type") != "tool_result":
                    parts.append(_text_of(block["content"]))
        return "".join(parts)
    return ""


def openai_results(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (str(m.get("tool_call_id")), _text_of(m.get("content"))) for m in messages if m.get("role") == "tool"
    ]


def anthropic_results(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for message in messages:
        if message.get("role") == "user" and isinstance(message.get("content"), list):
            for block in message["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    found.append((str(block.get("tool_use_id")), _text_of(block.get("content"))))
    return found


def reply_json(request: BaseHTTPRequestHandler, status: int, value: Any) -> None:
    data = orjson.dumps(value)
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


class ModelServer:
    """The server; `script(NAME, *steps)` adds a conversation served under `url(NAME)`."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.errors: list[str] = []
        self.side_requests: list[dict[str, Any]] = []  # requests without tools (titles, checks)
        self._ids = itertools.count(1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one reply per connection; the stream ends when it closes

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                reply_json(self, 200, {})

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.end_headers()

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = orjson.loads(self.rfile.read(length)) if length else {}
                    server.handle(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                except Exception as exc:
                    server.errors.append(f"{self.path}: {exc!r}")
                    with contextlib.suppress(OSError):
                        reply_json(self, 500, {"error": {"type": "api_error", "message": repr(exc)}})

        self.handler = Handler
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="model-server", daemon=True)

    def start(self) -> ModelServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def script(self, name: str, *steps: Step) -> Script:
        script = Script(name, list(steps))
        self.scripts[name] = script
        return script

    def url(self, name: str = SHARED) -> str:
        """The base URL of script `name`; without one, the URL every worker of a fleet can share."""
        return f"http://127.0.0.1:{self.port}/s/{name}"

    def _route(self, parts: list[str], body: dict[str, Any]) -> Script | None:
        """The script named in the path, else (under the shared `url()`) the one whose worker the
        request's prompt names: the worker contract says "You are worker session `NAME`"."""
        if parts[2] in self.scripts:
            return self.scripts[parts[2]]
        if parts[2] != SHARED:
            return None
        text = orjson.dumps(body).decode()
        named = [s for name, s in self.scripts.items() if f"worker session `{name}`" in text]
        if len(named) == 1:
            return named[0]
        return self.scripts.get(DEFAULT) if not named else None

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}scripted"

    def handle(self, request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        path = request.path.split("?", 1)[0]
        parts = path.split("/")  # "", "s", NAME, "v1", ...
        script = self._route(parts, body) if len(parts) >= 5 and parts[1] == "s" else None
        if script is None and len(parts) >= 5 and not body.get("tools"):
            script = Script("side requests", [])  # a title or a token count: no worker's script
        if script is None:
            self.errors.append(f"no script for {request.path}")
            reply_json(request, 404, {"error": {"type": "not_found_error", "message": path}})
            return
        endpoint = "/".join(parts[3:])
        if endpoint == "v1/messages/count_tokens":
            reply_json(request, 200, {"input_tokens": 100})
        elif endpoint == "v1/messages":
            self._anthropic(request, script, body)
        elif endpoint == "v1/chat/completions":
            self._openai(request, script, body)
        else:
            self.errors.append(f"unknown endpoint {request.path}")
            reply_json(request, 404, {"error": {"type": "not_found_error", "message": path}})

    # --- Anthropic Messages, for Claude Code

    def _anthropic(self, request: BaseHTTPRequestHandler, script: Script, body: dict[str, Any]) -> None:
        messages = body.get("messages") or []
        results = anthropic_results(messages)
        if not body.get("tools"):  # a side request (a title, a summary): no step of the script
            self.side_requests.append(body)
            tool, payload = None, "Scripted session"
        else:
            script.record(body, results)
            turn = sum(1 for m in messages if m.get("role") == "assistant")
            tool, payload = script.step(turn, results[-1][1] if results else "")
        message_id = self._id("msg")
        usage = {
            "input_tokens": 100,
            "output_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        if tool is not None:
            block: dict[str, Any] = {"type": "tool_use", "id": self._id("toolu"), "name": tool or "Bash"}
            block["input"] = {}
            delta: dict[str, Any] = {"type": "input_json_delta"}
            delta["partial_json"] = orjson.dumps(payload).decode()
            stop = "tool_use"
        else:
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": payload}
            stop = "end_turn"
        model = str(body.get("model") or "claude-sonnet-4-5")
        if not body.get("stream"):
            content = dict(block, input=payload) if tool is not None else dict(block, text=payload)
            reply: dict[str, Any] = {"id": message_id, "type": "message", "role": "assistant", "model": model}
            reply.update(content=[content], stop_reason=stop, stop_sequence=None, usage=usage)
            reply_json(request, 200, reply)
            return
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": usage,
                    },
                },
            ),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 10},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._sse(
            request, (f"event: {name}\ndata: {orjson.dumps(data).decode()}\n\n" for name, data in events)
        )

    # --- OpenAI chat completions, for pi

    def _openai(self, request: BaseHTTPRequestHandler, script: Script, body: dict[str, Any]) -> None:
        messages = body.get("messages") or []
        results = openai_results(messages)
        if body.get("tools"):
            script.record(body, results)
            turn = sum(1 for m in messages if m.get("role") == "assistant")
            tool, payload = script.step(turn, results[-1][1] if results else "")
        else:
            self.side_requests.append(body)
            tool, payload = None, "Scripted session"
        chunk_id, model = self._id("chatcmpl"), str(body.get("model") or "scripted")

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            value = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {orjson.dumps(value).decode()}\n\n"

        usage = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
        if tool is not None:
            call = {
                "index": 0,
                "id": self._id("call"),
                "type": "function",
                "function": {"name": tool or "bash", "arguments": orjson.dumps(payload).decode()},
            }
            lines = [
                chunk({"role": "assistant", "content": None}),
                chunk({"tool_calls": [call]}),
                chunk({}, "tool_calls", usage=usage),
            ]
        else:
            lines = [
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": payload}),
                chunk({}, "stop", usage=usage),
            ]
        lines.append("data: [DONE]\n\n")
        self._sse(request, iter(lines))

    @staticmethod
    def _sse(request: BaseHTTPRequestHandler, lines: Iterator[str]) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/event-stream")
        request.send_header("Cache-Control", "no-cache")
        request.end_headers()
        for line in lines:
            request.wfile.write(line.encode())
            request.wfile.flush()
