"""The Responses API over Claude on Vertex: the gateway translates to chat, the plugin to Anthropic.

The official openai SDK talks to the real gateway; the fake Vertex checks what arrives.
Every Response and stream event is validated against the official OpenAPI spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from modelmux.plugin import SSEParser
from modelmux.testing import RunningGateway, run_gateway, spec, validate

SCHEMAS = spec()["components"]["schemas"]
EVENT_SCHEMAS = {
    SCHEMAS[name]["properties"]["type"]["enum"][0]: name
    for name in (r["$ref"].rsplit("/", 1)[-1] for r in SCHEMAS["ResponseStreamEvent"]["anyOf"])
}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": None,
}


@pytest.fixture(scope="module")
def gw(shared_fake_vertex: Any) -> Iterator[RunningGateway]:
    config = {
        "providers": {"claude": shared_fake_vertex.provider_table()},
        "models": {"claude-sonnet": {"provider": "claude", "model": "text@20250929"}},
    }
    with run_gateway(config) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0, timeout=20)


def stored(gw: RunningGateway, response_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{gw.url}/responses/{response_id}").json()
    validate("Response", body)
    return body


def test_tool_calls_and_their_results_over_a_stored_conversation(
    gw: RunningGateway, client: openai.OpenAI, shared_fake_vertex: Any
) -> None:
    r = client.responses.create(
        model="claude/tools@1",
        instructions="Use the tools.",
        input="Weather in Paris and Tokyo?",
        tools=[WEATHER, {"type": "web_search"}],  # type: ignore[list-item]
        max_output_tokens=300,
    )
    assert [i.type for i in r.output] == ["message", "function_call", "function_call"]
    calls = [i for i in r.output if i.type == "function_call"]
    assert [(c.call_id, c.name) for c in calls] == [
        ("toolu_vrtx_01Paris", "get_weather"),
        ("toolu_vrtx_02Tokyo", "get_weather"),
    ]
    assert r.usage is not None and r.usage.input_tokens == 380 and r.usage.output_tokens == 96
    sent = shared_fake_vertex.last_body()
    assert sent["system"] == [{"type": "text", "text": "Use the tools."}] and sent["max_tokens"] == 300
    assert [t["name"] for t in sent["tools"]] == ["get_weather"]  # web_search was dropped
    stored(gw, r.id)

    r2 = client.responses.create(
        model="claude/text@1",
        previous_response_id=r.id,
        input=[
            {"type": "function_call_output", "call_id": c.call_id, "output": f"sunny {i}"} for i, c in enumerate(calls)
        ],
    )
    assert r2.output_text == "Hello from Claude on Vertex."
    sent = shared_fake_vertex.last_body()
    assert "system" not in sent  # instructions apply to their own response only
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    tool_uses = [b["id"] for b in sent["messages"][1]["content"] if b["type"] == "tool_use"]
    results = [b["tool_use_id"] for b in sent["messages"][2]["content"] if b["type"] == "tool_result"]
    assert tool_uses == results == ["toolu_vrtx_01Paris", "toolu_vrtx_02Tokyo"]
    stored(gw, r2.id)


def test_streamed_thinking_becomes_reasoning_events(gw: RunningGateway) -> None:
    events = []
    parser = SSEParser()
    body = {"model": "claude/thinking@1", "input": "2+2?", "stream": True, "tools": [{"type": "web_search"}]}
    with httpx.stream("POST", f"{gw.url}/responses", json=body, timeout=20) as r:
        assert r.status_code == 200 and r.headers["x-modelmux-dropped-tools"] == "web_search"
        for chunk in r.iter_bytes():
            for ev in parser.feed(chunk):
                payload = orjson.loads(ev.data)
                validate(EVENT_SCHEMAS[payload["type"]], payload)
                events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = events[-1]
    assert final["type"] == "response.completed"
    assert [i["type"] for i in final["response"]["output"]] == ["reasoning", "message"]
    thought = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
    assert thought == final["response"]["output"][0]["content"][0]["text"] and thought
    assert final["response"]["output"][1]["content"][0]["text"] == "4"
    assert stored(gw, final["response"]["id"]) == final["response"]
