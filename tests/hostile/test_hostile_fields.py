"""Fields of the wrong shape (issue 15): a 400 naming the field, never a 500 or a silent
reinterpretation. Raw HTTP against a real ``modelmux serve``."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from modelmux.testing import LoopbackServer

USER = [{"role": "user", "content": "hi"}]


def bad(resp: httpx.Response, param: str) -> dict[str, Any]:
    assert resp.status_code == 400, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error
    return error


@pytest.mark.parametrize("field", ["stream", "store", "background", "parallel_tool_calls"])
@pytest.mark.parametrize("value", ["false", "true", 0, 1])
def test_responses_booleans_are_booleans(api: httpx.Client, field: str, value: Any) -> None:
    bad(api.post("/v1/responses", json={"model": "echo", "input": "hi", field: value}), field)


def test_responses_strings_false_neither_streams_nor_stores(api: httpx.Client) -> None:
    resp = api.post("/v1/responses", json={"model": "echo", "input": "hi", "stream": "false", "store": "false"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] in ("stream", "store")
    assert "1 more problem" in resp.json()["error"]["message"]
    assert resp.headers["content-type"].startswith("application/json")


def test_responses_numbers_are_numbers(api: httpx.Client) -> None:
    bad(api.post("/v1/responses", json={"model": "echo", "input": "hi", "temperature": "1"}), "temperature")
    bad(api.post("/v1/responses", json={"model": "echo", "input": "hi", "max_output_tokens": "9"}), "max_output_tokens")
    # an int where a float is wanted is fine, as on chat
    assert api.post("/v1/responses", json={"model": "echo", "input": "hi", "temperature": 1}).status_code == 200


def test_responses_validated_values_still_work(api: httpx.Client) -> None:
    resp = api.post("/v1/responses", json={"model": "echo", "input": "hi", "stream": False, "store": False})
    assert resp.status_code == 200 and resp.json()["store"] is False
    rid = resp.json()["id"]
    assert api.get(f"/v1/responses/{rid}").status_code == 404  # not stored
    with api.stream("POST", "/v1/responses", json={"model": "echo", "input": "hi", "stream": True}) as streamed:
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert "response.completed" in streamed.read().decode()


def test_responses_metrics_use_the_bounded_model_label(api: httpx.Client) -> None:
    made_up = f"client-made-{uuid.uuid4().hex[:12]}"
    for stream in (False, True):
        resp = api.post("/v1/responses", json={"model": f"echo/{made_up}", "input": "count me", "stream": stream})
        assert resp.status_code == 200, resp.text
    metrics = api.get("/metrics").text
    assert made_up not in metrics
    assert 'modelmux_tokens_total{model="echo/*",provider="echo",type="input"}' in metrics


@pytest.mark.parametrize("effort", [["low"], {"level": "low"}, 3, True])
def test_claude_reasoning_effort_of_the_wrong_type(api: httpx.Client, upstream: LoopbackServer, effort: Any) -> None:
    before = len(upstream.requests)
    body = {"model": "claude/claude-sonnet", "messages": USER, "reasoning_effort": effort}
    bad(api.post("/v1/chat/completions", json=body), "reasoning_effort")
    assert len(upstream.requests) == before


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "function", "function": "x"},
        {"type": "function", "function": ["x"]},
        {"type": "function", "function": {"name": 7}},
        {"type": "function"},
    ],
)
def test_claude_tool_choice_of_the_wrong_shape(api: httpx.Client, choice: Any) -> None:
    tools = [{"type": "function", "function": {"name": "x", "parameters": {"type": "object"}}}]
    body = {"model": "claude/claude-sonnet", "messages": USER, "tools": tools, "tool_choice": choice}
    error = bad(api.post("/v1/chat/completions", json=body), "tool_choice")
    assert '{"type": "function", "function": {"name": ...}}' in error["message"]


def _doubling_defs(levels: int) -> dict[str, Any]:
    """Each definition uses the next twice: 2**levels values if expanded in full (2 KB of schema)."""
    defs: dict[str, Any] = {
        f"D{i}": {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/D{i + 1}"}, "b": {"$ref": f"#/$defs/D{i + 1}"}},
            "required": ["a", "b"],
        }
        for i in range(levels)
    }
    defs[f"D{levels}"] = {"type": "string"}
    return {"$ref": "#/$defs/D0", "$defs": defs}


def _nested_defs(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {
            "type": "object",
            "$defs": {"N": schema},
            "properties": {"x": {"$ref": "#/$defs/N"}, "y": {"$ref": "#/$defs/N"}},
            "required": ["x", "y"],
        }
    return schema


RECURSIVE = {
    "$ref": "#/$defs/A",
    "$defs": {"A": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "required": ["a"]}},
}


@pytest.mark.parametrize(
    "schema", [_doubling_defs(18), _nested_defs(18), RECURSIVE], ids=["doubling", "nested", "self"]
)
def test_echo_samples_hostile_schemas_within_a_budget(api: httpx.Client, schema: dict[str, Any]) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    resp = api.post("/v1/chat/completions", json={"model": "echo", "messages": USER, "response_format": fmt})
    assert resp.status_code == 200, resp.text
    content = resp.json()["choices"][0]["message"]["content"]
    assert len(content) < 64 * 1024  # was 6.8 MB for the doubling schema
    json.loads(content)
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    body = {"model": "echo", "messages": USER, "tools": tools, "tool_choice": "required"}
    resp = api.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) < 64 * 1024
