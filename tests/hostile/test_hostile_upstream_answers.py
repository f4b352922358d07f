"""What an upstream answers, passed on in OpenAI's shape (issue 15): Anthropic's error body is
rewritten rather than passed on as it came, its overload (529) is a retryable 503 as for any
upstream, and a non-stream answer cut short is a 502 instead of a 200 with broken JSON.
Raw HTTP against a real ``modelmux serve`` in front of a fake OpenAI-compatible upstream."""

from __future__ import annotations

import httpx
import openai
import pytest

from modelmux.testing.process import ServeProcess

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def test_anthropic_error_bodies_reach_the_client_in_openai_shape(api: httpx.Client) -> None:
    resp = api.post("/v1/chat/completions", json={"model": "vllm/anthropic-400", **CHAT})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert set(body) == {"error"}  # not Anthropic's {"type": "error", "error": {...}}
    assert body["error"]["message"] == "invalid_request_error from the upstream"
    assert body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_overload_is_a_503(api: httpx.Client, stream: bool) -> None:
    resp = api.post("/v1/chat/completions", json={"model": "vllm/anthropic-529", "stream": stream, **CHAT})
    assert resp.status_code == 503, resp.text
    error = resp.json()["error"]
    assert error["code"] == "upstream_unavailable" and "overloaded (529)" in error["message"]


def test_the_sdk_sees_the_overload_as_a_server_error(served: ServeProcess, api: httpx.Client) -> None:
    client = openai.OpenAI(base_url=served.root + "/v1", api_key=api.headers["authorization"][7:], max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="vllm/anthropic-529", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503


def test_a_truncated_answer_is_a_502_not_a_200(api: httpx.Client) -> None:
    resp = api.post("/v1/chat/completions", json={"model": "vllm/truncated", **CHAT})
    assert resp.status_code == 502, resp.text
    error = resp.json()["error"]
    assert error["code"] == "upstream_invalid_json"
    assert "provider vllm: the upstream answered invalid JSON" in error["message"]


def test_a_whole_answer_still_passes_through(api: httpx.Client) -> None:
    resp = api.post("/v1/chat/completions", json={"model": "vllm/whole", **CHAT})
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == "fine"
