"""The Responses API through the vllm plugin: forwarded natively (vLLM serves /v1/responses) or,
with ``native_responses = false``, translated to chat by the gateway. Either way the gateway
keeps the conversation for ``previous_response_id``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from modelmux.testing import LoopbackServer, RunningGateway, run_gateway, validate

API_KEY = "sk-vllm-test"


def _config(url: str, native: bool) -> dict[str, Any]:
    provider = {"type": "vllm", "base_url": url + "/v1", "api_key": API_KEY, "max_retries": 0}
    return {
        "providers": {"vllm": {**provider, "native_responses": native}},
        "models": {"llama": {"provider": "vllm", "model": "meta-llama/Llama-3.1-8B-Instruct"}},
    }


@pytest.fixture(scope="module")
def native_gw(fake_vllm: LoopbackServer) -> Iterator[RunningGateway]:
    with run_gateway(_config(fake_vllm.url, True)) as gw:
        yield gw


@pytest.fixture(scope="module")
def chat_gw(fake_vllm: LoopbackServer) -> Iterator[RunningGateway]:
    with run_gateway(_config(fake_vllm.url, False)) as gw:
        yield gw


def last(fake: LoopbackServer, path: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(next(r for r in reversed(fake.requests) if r["path"] == path)["body"])
    return body


def test_native_forwarding_keeps_the_conversation(native_gw: RunningGateway, fake_vllm: LoopbackServer) -> None:
    client = openai.OpenAI(base_url=native_gw.url, api_key="unused", max_retries=0)
    r = client.responses.create(model="llama", input="hi", tools=[{"type": "web_search"}])
    assert r.output_text == "Hello from responses"
    sent = last(fake_vllm, "/v1/responses")
    assert sent["model"] == "meta-llama/Llama-3.1-8B-Instruct" and sent["tools"] == [{"type": "web_search"}]
    assert client.responses.retrieve(r.id).output_text == "Hello from responses"
    client.responses.create(model="llama", input="again", previous_response_id=r.id)
    sent = last(fake_vllm, "/v1/responses")
    assert "previous_response_id" not in sent
    assert [i.get("role") for i in sent["input"]] == ["user", "assistant", "user"]
    # streamed: the upstream's events pass through untouched (this fake sends an abridged sequence)
    with httpx.stream(
        "POST", f"{native_gw.url}/responses", json={"model": "llama", "input": "s", "stream": True}
    ) as resp:
        frames = resp.read()
    assert frames.count(b"event: ") == 3 and frames.endswith(b"\n\n")
    final = orjson.loads(frames.rsplit(b"data: ", 1)[1])["response"]
    assert client.responses.retrieve(final["id"]).output_text == "Hello from responses"  # and it was stored


def test_translated_when_native_responses_is_off(chat_gw: RunningGateway, fake_vllm: LoopbackServer) -> None:
    client = openai.OpenAI(base_url=chat_gw.url, api_key="unused", max_retries=0)
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": None}
    r = client.responses.create(model="llama", input="weather?", tools=[tool])  # type: ignore[list-item]
    call = r.output[-1]
    assert call.type == "function_call" and call.call_id == "call_1" and call.arguments == '{"city": "Paris"}'
    assert last(fake_vllm, "/v1/chat/completions")["tools"][0]["function"]["name"] == "get_weather"
    body = httpx.get(f"{chat_gw.url}/responses/{r.id}").json()
    validate("Response", body)
    r2 = client.responses.create(
        model="llama",
        previous_response_id=r.id,
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "sunny"}],
    )
    assert r2.output_text == "Hello from fake vLLM"
    messages = last(fake_vllm, "/v1/chat/completions")["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
