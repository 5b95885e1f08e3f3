"""The scripted model server itself (tests/model_server.py), spoken to over HTTP as the agents do."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.model_server import SCRIPT_DONE, Bash, ModelServer, Say, Tool

TOOLS = [{"name": "Bash", "input_schema": {}}]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    server = ModelServer().start()
    yield server
    server.close()


def post(url: str, body: dict[str, Any]) -> list[dict[str, Any]] | dict[str, Any]:
    """POST `body`; a stream comes back as its list of `data:` objects, else the JSON reply."""
    request = urllib.request.Request(url, orjson.dumps(body), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        text = reply.read().decode()
        if reply.headers["Content-Type"] != "text/event-stream":
            value = orjson.loads(text)
            assert isinstance(value, dict)
            return value
    return [orjson.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def anthropic_reply(events: list[dict[str, Any]] | dict[str, Any]) -> tuple[str, str, Any]:
    """(message id, stop reason, the text or the tool call) of an Anthropic stream."""
    assert isinstance(events, list)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    delta, block = events[2]["delta"], events[1]["content_block"]
    said = (block["name"], orjson.loads(delta["partial_json"])) if "partial_json" in delta else delta["text"]
    return events[0]["message"]["id"], events[4]["delta"]["stop_reason"], said


def test_an_anthropic_script_replays_tool_calls_hands_steps_the_last_result_and_then_says_it_is_done(
    server: ModelServer,
) -> None:
    script = server.script("w1", Bash("echo hi"), Bash(lambda seen: f"echo {seen.upper()}"), Say("bye"))
    url = server.url("w1") + "/v1/messages?beta=true"
    user = {"role": "user", "content": "go"}
    first = anthropic_reply(post(url, {"stream": True, "tools": TOOLS, "messages": [user]}))
    assert first[1:] == ("tool_use", ("Bash", {"command": "echo hi"}))
    again = anthropic_reply(post(url, {"stream": True, "tools": TOOLS, "messages": [user]}))
    assert again[1:] == first[1:] and again[0] != first[0]  # a retry: the same step, a fresh id

    turns: list[dict[str, Any]] = [user]
    for seen in ("hi\n", "HI\n"):
        turns.append({"role": "assistant", "content": [{"type": "tool_use", "id": f"t{len(turns)}"}]})
        result = {"type": "tool_result", "tool_use_id": f"t{len(turns) - 1}", "content": seen}
        turns.append({"role": "user", "content": [result]})
        reply = anthropic_reply(post(url, {"stream": True, "tools": TOOLS, "messages": turns}))
    assert reply[1:] == ("end_turn", "bye") and script.results == ["hi\n", "HI\n"]
    turns += [{"role": "assistant", "content": "bye"}, {"role": "user", "content": "more?"}]
    assert anthropic_reply(post(url, {"stream": True, "tools": TOOLS, "messages": turns}))[2] == SCRIPT_DONE
    # side requests: a title without tools, a token count; neither moves the script
    assert anthropic_reply(post(url, {"stream": True, "messages": [user]}))[2] == "Scripted session"
    assert post(server.url("w1") + "/v1/messages/count_tokens", {"messages": [user]}) == {"input_tokens": 100}
    assert len(server.side_requests) == 1 and len(script.requests) == 5 and not server.errors


def test_an_openai_stream_carries_the_tool_call_and_usage_for_pi(server: ModelServer) -> None:
    server.script("w1", Tool("write", {"path": "a.md", "content": "x"}), Say("done"))
    url = server.url("w1") + "/v1/chat/completions"
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    body = {"stream": True, "tools": [{"type": "function"}], "messages": messages}
    chunks = post(url, body)
    assert isinstance(chunks, list)
    [call] = chunks[1]["choices"][0]["delta"]["tool_calls"]
    assert (call["function"]["name"], orjson.loads(call["function"]["arguments"])) == (
        "write",
        {"path": "a.md", "content": "x"},
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-1]["usage"]["total_tokens"]
    messages += [
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": [{"type": "text", "text": "wrote a.md"}]},
    ]
    chunks = post(url, body)
    assert isinstance(chunks, list) and chunks[1]["choices"][0]["delta"]["content"] == "done"
    assert server.scripts["w1"].results == ["wrote a.md"]


def test_workers_sharing_one_url_each_get_the_script_named_after_them_and_strangers_get_none(
    server: ModelServer,
) -> None:
    server.script("red", Say("I am red"))
    server.script("blue", Say("I am blue"))
    url = server.url() + "/v1/messages"

    def say(system: str) -> Any:
        body = {
            "stream": True,
            "tools": TOOLS,
            "system": system,
            "messages": [{"role": "user", "content": "hi"}],
        }
        return anthropic_reply(post(url, body))[2]

    assert (say("You are worker session `blue`."), say("You are worker session `red`.")) == (
        "I am blue",
        "I am red",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        say("You are worker session `green`.")
    assert refused.value.code == 404 and server.errors == ["no script for /s/fleet/v1/messages"]
