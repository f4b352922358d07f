"""Deeply nested JSON (issue 15): orjson reads 1,024 levels but writes only 254, so a body
nested 256 to 1,024 levels deep used to pass parsing and fail with a 500 when the gateway
wrote it (upstream body, translation, stored response). Now: more than ``MAX_JSON_DEPTH``
levels is a 400 naming the field, before any upstream call; up to it, served.
Raw HTTP against a real ``modelmux serve`` (bodies written by hand: no encoder writes them).
"""

from __future__ import annotations

import httpx
import pytest

from modelmux.schemas import MAX_JSON_DEPTH
from modelmux.testing import LoopbackServer

USER = '[{"role": "user", "content": "hi"}]'


def nested(levels: int) -> str:
    """JSON text of a value ``levels`` arrays and objects deep."""
    text = "{}"
    for i in range(levels - 1):
        text = f'{{"a": {text}}}' if i % 2 else f"[{text}]"
    return text


def post(api: httpx.Client, path: str, body: str) -> httpx.Response:
    return api.post(path, content=body.encode(), headers={"content-type": "application/json"})


def assert_too_deep(resp: httpx.Response, param: str) -> None:
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "json_too_deep" and error["type"] == "invalid_request_error"
    assert f"more than {MAX_JSON_DEPTH} levels" in error["message"]
    assert error["param"].startswith(param), error


def chat_calls(upstream: LoopbackServer) -> int:
    return sum(1 for r in upstream.requests if r["path"] == "/v1/chat/completions")


@pytest.mark.parametrize("levels", [256, 300, 1000])
@pytest.mark.parametrize("stream", ["false", "true"])
def test_passthrough_chat_refuses_deep_json_before_the_upstream(
    api: httpx.Client, upstream: LoopbackServer, levels: int, stream: str
) -> None:
    before = chat_calls(upstream)
    body = f'{{"model": "llama", "stream": {stream}, "messages": {USER}, "extra": {nested(levels)}}}'
    assert_too_deep(post(api, "/v1/chat/completions", body), "extra")
    assert chat_calls(upstream) == before


def test_deep_message_field(api: httpx.Client) -> None:
    body = f'{{"model": "llama", "messages": [{{"role": "user", "content": "hi", "x": {nested(300)}}}]}}'
    assert_too_deep(post(api, "/v1/chat/completions", body), "messages[0].x")


def test_nesting_up_to_the_limit_is_served(api: httpx.Client, upstream: LoopbackServer) -> None:
    before = len(upstream.requests)
    # the body object is the first level
    body = f'{{"model": "llama", "messages": {USER}, "extra": {nested(MAX_JSON_DEPTH - 1)}}}'
    resp = post(api, "/v1/chat/completions", body)
    assert resp.status_code == 200, resp.text
    sent = upstream.requests[before]["body"]
    assert sent.count(b'{"a":') + sent.count(b"[") >= MAX_JSON_DEPTH - 2  # all of it went upstream
    one_more = f'{{"model": "llama", "messages": {USER}, "extra": {nested(MAX_JSON_DEPTH)}}}'
    assert_too_deep(post(api, "/v1/chat/completions", one_more), "extra")


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 300, 1000])
def test_responses_refuses_deep_input_and_tools(api: httpx.Client, levels: int) -> None:
    deep_input = f'{{"model": "echo", "input": [{{"role": "user", "content": "hi", "x": {nested(levels)}}}]}}'
    assert_too_deep(post(api, "/v1/responses", deep_input), "input[0].x")
    tools = f'[{{"type": "function", "name": "f", "parameters": {nested(levels)}}}]'
    deep_tool = f'{{"model": "echo", "input": "hi", "tools": {tools}}}'
    assert_too_deep(post(api, "/v1/responses", deep_tool), "tools[0].parameters")


def test_responses_at_the_limit_is_served_and_stored(api: httpx.Client) -> None:
    # Stored records and chat translations wrap the tools a few levels deeper: still writable.
    params = f'{{"type": "object", "properties": {{"p": {{"type": "string"}}}}, "x": {nested(MAX_JSON_DEPTH - 4)}}}'
    tools = f'[{{"type": "function", "name": "f", "parameters": {params}}}]'
    for stream in ("false", "true"):
        resp = post(api, "/v1/responses", f'{{"model": "echo", "input": "f", "stream": {stream}, "tools": {tools}}}')
        assert resp.status_code == 200, resp.text
    resp = post(api, "/v1/responses", f'{{"model": "echo", "input": "hi", "tools": {tools}}}')
    rid = resp.json()["id"]
    again = api.post("/v1/responses", json={"model": "echo", "input": "again", "previous_response_id": rid})
    assert again.status_code == 200, again.text


def test_claude_tool_parameters_too_deep(api: httpx.Client, upstream: LoopbackServer) -> None:
    before = len(upstream.requests)
    tools = f'[{{"type": "function", "function": {{"name": "f", "parameters": {nested(400)}}}}}]'
    body = f'{{"model": "claude/claude-sonnet", "messages": {USER}, "tools": {tools}}}'
    assert_too_deep(post(api, "/v1/chat/completions", body), "tools[0].function.parameters")
    assert len(upstream.requests) == before
