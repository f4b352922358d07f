"""Embeddings on Bedrock end to end: the openai SDK -> the real gateway -> the bedrock plugin -> the fake
Bedrock runtime (InvokeModel, every request's SigV4 signature checked): Titan Text and Cohere Embed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import orjson
import pytest
from modelmux_provider_bedrock.provider import BedrockProvider
from modelmux_provider_bedrock.settings import BedrockSettings

from modelmux.plugin import Host
from modelmux.testing import LoopbackServer, ProviderContract, RunningGateway, run_gateway, validate

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"


def _provider(fake: LoopbackServer, wire: SimpleNamespace, host: Host) -> BedrockProvider:
    settings = BedrockSettings(
        type="bedrock",
        region=wire.region,
        endpoint_url=fake.url,
        aws_access_key_id=wire.access_key,
        aws_secret_access_key=wire.secret_key,
    )
    return BedrockProvider("bedrock", settings, host)


class TestBedrockTitanContract(ProviderContract):
    upstream_model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    embedding_model = TITAN

    @pytest.fixture
    async def provider(
        self, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: SimpleNamespace
    ) -> AsyncIterator[BedrockProvider]:
        p = _provider(fake_bedrock, bedrock_wire, host)
        yield p
        await p.aclose()


class TestBedrockCohereContract(TestBedrockTitanContract):
    embedding_model = COHERE


@pytest.fixture(scope="module")
def gateway(fake_bedrock: LoopbackServer, config_for_fake: Any) -> Iterator[RunningGateway]:
    config = config_for_fake(fake_bedrock, embedding_concurrency=2)
    config["providers"]["small"] = {**config["providers"]["bedrock"], "embedding_max_calls": 3}
    config["models"].update(
        {
            "titan": {"provider": "bedrock", "model": TITAN},
            "titan-raw": {"provider": "bedrock", "model": TITAN, "options": {"normalize": False}},
            "titan-small": {"provider": "small", "model": TITAN},
            "cohere-doc": {"provider": "bedrock", "model": COHERE},
            "cohere-query": {"provider": "bedrock", "model": COHERE, "options": {"input_type": "search_query"}},
            "cohere-typo": {"provider": "bedrock", "model": COHERE, "options": {"input_type": "query"}},
        }
    )
    with run_gateway(config) as gw:
        yield gw


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0, timeout=20)


def invokes(fake: LoopbackServer) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["path"].endswith("/invoke")]


def test_titan_one_signed_call_per_input_in_input_order(client: openai.OpenAI, fake_bedrock: LoopbackServer) -> None:
    before = len(invokes(fake_bedrock))
    texts = [f"input number {i} here" for i in range(5)]
    out = client.embeddings.create(model="titan", input=texts, dimensions=256)  # base64: the SDK's default
    calls = invokes(fake_bedrock)[before:]
    assert len(calls) == 5 and {c["path"] for c in calls} == {"/model/amazon.titan-embed-text-v2%3A0/invoke"}
    assert all(c["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ") for c in calls)
    sent = sorted((orjson.loads(c["body"]) for c in calls), key=lambda b: b["inputText"])
    assert sent == [{"inputText": t, "dimensions": 256, "normalize": True} for t in texts]
    floats = client.embeddings.create(model="titan", input=texts[3], dimensions=256, encoding_format="float")
    assert out.data[3].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert [d.index for d in out.data] == list(range(5)) and len(out.data[0].embedding) == 256
    assert out.usage.prompt_tokens == 20  # inputTextTokenCount, summed


def test_fan_out_is_bounded_by_embedding_concurrency(client: openai.OpenAI, invoke_inflight: list[int]) -> None:
    counts = invoke_inflight
    counts[1] = 0
    client.embeddings.create(model="titan", input=[f"t{i}" for i in range(8)])
    assert 1 < counts[1] <= 2  # several at once, never more than the provider's embedding_concurrency


def test_titan_options_and_dimensions(
    client: openai.OpenAI, gateway: RunningGateway, fake_bedrock: LoopbackServer
) -> None:
    client.embeddings.create(model="titan-raw", input="plain", encoding_format="float")
    assert orjson.loads(invokes(fake_bedrock)[-1]["body"]) == {"inputText": "plain", "normalize": False}
    resp = httpx.post(f"{gateway.url}/embeddings", json={"model": "titan", "input": "x", "dimensions": 300})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "dimensions"
    assert "256, 512, 1024" in resp.json()["error"]["message"]


def test_cohere_batches_texts_with_the_input_type(
    client: openai.OpenAI, gateway: RunningGateway, fake_bedrock: LoopbackServer
) -> None:
    before = len(invokes(fake_bedrock))
    texts = [f"doc {i}" for i in range(100)]
    out = client.embeddings.create(model="cohere-doc", input=texts, encoding_format="float")
    calls = [orjson.loads(c["body"]) for c in invokes(fake_bedrock)[before:]]
    assert sorted(len(c["texts"]) for c in calls) == [4, 96]
    assert all(c["input_type"] == "search_document" for c in calls)
    assert len(out.data) == 100 and [d.index for d in out.data] == list(range(100))
    last = client.embeddings.create(model="cohere-doc", input="doc 99", encoding_format="float")
    assert out.data[99].embedding == last.data[0].embedding  # order kept across batches
    assert out.usage.prompt_tokens == 300  # Bedrock's input-token-count headers, summed
    query = client.embeddings.create(model="cohere-query", input="doc 99", encoding_format="float")
    assert orjson.loads(invokes(fake_bedrock)[-1]["body"])["input_type"] == "search_query"
    assert query.data[0].embedding != last.data[0].embedding
    validate(
        "CreateEmbeddingResponse",
        httpx.post(f"{gateway.url}/embeddings", json={"model": "cohere-doc", "input": "hi"}).json(),
    )


@pytest.mark.parametrize(
    ("model", "body", "param", "needle"),
    [
        ("claude", {"input": "x"}, "model", "does not serve embeddings"),
        ("nova", {"input": "x"}, "model", "does not serve embeddings"),
        ("titan", {"input": [[1, 2]]}, "input", "embeds text, not token arrays"),
        ("cohere-doc", {"input": "x", "dimensions": 512}, "dimensions", "1024 dimensions only"),
        ("cohere-typo", {"input": "x"}, "model", "options.input_type: 'query' is not a Cohere Embed input type"),
        ("titan-small", {"input": ["a", "b", "c", "d"]}, "input", "providers.small.embedding_max_calls allows 3"),
    ],
)
def test_refused_with_a_400_before_any_upstream_call(
    gateway: RunningGateway, fake_bedrock: LoopbackServer, model: str, body: dict[str, Any], param: str, needle: str
) -> None:
    before = len(invokes(fake_bedrock))
    resp = httpx.post(f"{gateway.url}/embeddings", json={"model": model, **body})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and needle in error["message"]
    assert len(invokes(fake_bedrock)) == before


def test_one_refused_call_fails_the_request_with_bedrocks_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="titan", input=["fine", "refuse me", "also fine", "and this"])
    assert "refused by the fake" in info.value.message
