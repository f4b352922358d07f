"""Embeddings through the real gateway to a fake vLLM: a byte passthrough with only ``model`` replaced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from modelmux.testing import LoopbackServer, RunningGateway, run_gateway, validate

API_KEY = "sk-vllm-test"


@pytest.fixture(scope="module")
def gateway(fake_vllm: LoopbackServer) -> Iterator[RunningGateway]:
    config = {
        "providers": {
            "vllm": {"type": "vllm", "base_url": fake_vllm.url + "/v1", "api_key": API_KEY, "max_retries": 0}
        },
        "models": {
            "bge": {"provider": "vllm", "model": "BAAI/bge-m3"},
            "llama": {"provider": "vllm", "model": "meta-llama/Llama-3.1-8B-Instruct"},
            "broken": {"provider": "vllm", "model": "broken"},
        },
    }
    with run_gateway(config) as gw:
        yield gw


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0, timeout=20)


def last_upstream_body(server: LoopbackServer) -> bytes:
    seen = [r for r in server.requests if r["path"] == "/v1/embeddings"]
    assert seen, "the upstream saw no embeddings request"
    body: bytes = seen[-1]["body"]
    assert seen[-1]["headers"]["Authorization"] == f"Bearer {API_KEY}"
    return body


def test_sdk_default_base64_passes_through_and_decodes(
    client: openai.OpenAI, fake_vllm: LoopbackServer, fake_embedding: Any
) -> None:
    raw = client.embeddings.with_raw_response.create(model="bge", input=["first text", "second text"])
    got = raw.parse()
    sent = orjson.loads(last_upstream_body(fake_vllm))
    assert sent["encoding_format"] == "base64" and sent["model"] == "BAAI/bge-m3"  # the SDK's default, forwarded
    assert raw.headers["x-modelmux-provider"] == "vllm"
    for i, text in enumerate(["first text", "second text"]):
        assert got.data[i].embedding == pytest.approx(fake_embedding(text, 8), rel=1e-6)
    assert got.usage.prompt_tokens == 4 and got.usage.total_tokens == 4


def test_only_model_is_replaced_in_the_upstream_body(gateway: RunningGateway, fake_vllm: LoopbackServer) -> None:
    body = {
        "input": [[101, 7592, 102], [101, 2088, 102]],
        "model": "bge",
        "encoding_format": "float",
        "dimensions": 4,
        "user": "user-7",
        "truncate_prompt_tokens": 512,  # a vLLM extension: the upstream's to honour
    }
    resp = httpx.post(f"{gateway.url}/embeddings", json=body, timeout=20)
    assert resp.status_code == 200, resp.text
    validate("CreateEmbeddingResponse", resp.json())
    sent = last_upstream_body(fake_vllm)
    assert sent == orjson.dumps({**body, "model": "BAAI/bge-m3"})  # same keys, same order, same values
    # The answer is the upstream's bytes, untouched (its id and created included).
    data: dict[str, Any] = resp.json()
    assert data["id"] == "embd-fake1" and len(data["data"][1]["embedding"]) == 4


def test_a_chat_model_is_the_upstreams_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="llama", input="hello")
    assert "does not support Embeddings" in info.value.message


def test_an_upstream_failure_is_a_502_naming_the_provider(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.embeddings.create(model="broken", input="hello")
    assert info.value.status_code == 502 and "vllm" in info.value.message


def test_provider_slash_model_reaches_the_upstream_model(client: openai.OpenAI, fake_vllm: LoopbackServer) -> None:
    out = client.embeddings.create(model="vllm/intfloat/e5-mistral-7b-instruct", input="x", encoding_format="float")
    assert out.model == "intfloat/e5-mistral-7b-instruct"  # the upstream's answer, untouched
    assert orjson.loads(last_upstream_body(fake_vllm))["model"] == "intfloat/e5-mistral-7b-instruct"
