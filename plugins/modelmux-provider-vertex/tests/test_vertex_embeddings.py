"""Embeddings on Vertex AI end to end: the openai SDK -> the real gateway -> the vertex plugin -> the fake
Vertex AI (``publishers/google/models/{model}:predict``, OAuth tokens from the fake's real token endpoint)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import ProviderContract, run_gateway, validate


class TestVertexEmbeddingsContract(ProviderContract):
    upstream_model = "text@20250929"
    embedding_model = "text-embedding-005"

    @pytest.fixture
    def provider_config(self, fake_vertex: Any) -> dict[str, Any]:
        return dict(fake_vertex.provider_table(), name="vertex")  # made by the registered factory


@pytest.fixture(scope="module")
def gateway(shared_fake_vertex: Any) -> Iterator[Any]:
    config = {
        "providers": {
            "vertex": shared_fake_vertex.provider_table(embedding_concurrency=2),
            "small": shared_fake_vertex.provider_table(embedding_max_calls=2),
        },
        "models": {
            "embed": {"provider": "vertex", "model": "text-embedding-005"},
            "embed-query": {
                "provider": "vertex",
                "model": "text-embedding-005",
                "options": {"task_type": "retrieval_query", "auto_truncate": False},
            },
            "gemini-embed": {"provider": "vertex", "model": "gemini-embedding-001"},
            "gemini-small": {"provider": "small", "model": "gemini-embedding-001"},
            "typo": {"provider": "vertex", "model": "text-embedding-005", "options": {"task_type": "RETREIVAL"}},
            "claude": {"provider": "vertex", "model": "text@20250929"},
        },
    }
    with run_gateway(config) as gw:
        yield gw


@pytest.fixture
def client(gateway: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0, timeout=20)


@pytest.fixture
def fake(shared_fake_vertex: Any) -> Any:
    shared_fake_vertex.embed_calls.clear()
    return shared_fake_vertex


def test_sdk_base64_default_is_the_upstreams_floats(client: openai.OpenAI, fake: Any, embedding_values: Any) -> None:
    out = client.embeddings.create(model="embed", input=["the first text", "a second one"], dimensions=32)
    assert [d.index for d in out.data] == [0, 1] and out.model == "embed"
    for item, text in zip(out.data, ["the first text", "a second one"], strict=True):
        assert item.embedding == pytest.approx(embedding_values(text, None, 32), rel=1e-6)
    assert out.usage.prompt_tokens == 6 and out.usage.total_tokens == 6  # the upstream's token_count
    assert fake.embed_calls == [
        {
            "instances": [{"content": "the first text"}, {"content": "a second one"}],
            "parameters": {"outputDimensionality": 32},
        }
    ]


def test_float_answer_is_an_openai_embedding_list(gateway: Any, fake: Any) -> None:
    resp = httpx.post(
        f"{gateway.url}/embeddings", json={"model": "embed", "input": "hello", "encoding_format": "float"}
    )
    assert resp.status_code == 200, resp.text
    validate("CreateEmbeddingResponse", resp.json())
    assert len(resp.json()["data"][0]["embedding"]) == 768
    assert fake.embed_calls == [{"instances": [{"content": "hello"}]}]  # no parameters asked for, none sent


def test_task_type_and_auto_truncate_come_from_the_model_options(client: openai.OpenAI, fake: Any) -> None:
    query = client.embeddings.create(model="embed-query", input="find me", encoding_format="float")
    plain = client.embeddings.create(model="embed", input="find me", encoding_format="float")
    assert fake.embed_calls[0] == {
        "instances": [{"content": "find me", "task_type": "RETRIEVAL_QUERY"}],
        "parameters": {"autoTruncate": False},
    }
    assert query.data[0].embedding != plain.data[0].embedding


def test_batches_split_to_the_models_per_call_limit_and_keep_input_order(
    client: openai.OpenAI, fake: Any, embedding_values: Any
) -> None:
    texts = [f"text number {i}" for i in range(5)]
    out = client.embeddings.create(model="gemini-embed", input=texts, dimensions=8, encoding_format="float")
    assert len(fake.embed_calls) == 5  # gemini-embedding-001 takes one instance a call
    assert all(len(call["instances"]) == 1 for call in fake.embed_calls)
    assert [d.embedding for d in out.data] == [pytest.approx(embedding_values(t, None, 8)) for t in texts]
    many = [f"word {i}" for i in range(300)]
    fake.embed_calls.clear()
    out = client.embeddings.create(model="embed", input=many, dimensions=4, encoding_format="float")
    assert sorted(len(c["instances"]) for c in fake.embed_calls) == [50, 250]
    assert [d.index for d in out.data] == list(range(300))
    assert out.data[299].embedding == pytest.approx(embedding_values("word 299", None, 4))


def test_more_calls_than_embedding_max_calls_is_a_400_naming_the_setting(client: openai.OpenAI, fake: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="gemini-small", input=["a", "b", "c"])
    assert "providers.small.embedding_max_calls allows 2" in info.value.message
    assert info.value.code == "too_many_inputs" and fake.embed_calls == []


@pytest.mark.parametrize(
    ("model", "body", "needle"),
    [
        ("claude", {"input": "x"}, "does not serve embeddings"),
        ("embed", {"input": [[1, 2, 3]]}, "embeds text, not token arrays"),
        ("typo", {"input": "x"}, "options.task_type: 'RETREIVAL' is not a Vertex AI task type"),
    ],
)
def test_refused_before_any_upstream_call(
    gateway: Any, fake: Any, model: str, body: dict[str, Any], needle: str
) -> None:
    resp = httpx.post(f"{gateway.url}/embeddings", json={"model": model, **body})
    assert resp.status_code == 400 and needle in resp.json()["error"]["message"], resp.text
    assert fake.embed_calls == []


def test_an_unknown_google_model_is_vertexs_404(client: openai.OpenAI, fake: Any) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="vertex/text-embedding-999", input="x")


def test_one_refused_call_fails_the_request_with_vertexs_400(client: openai.OpenAI, fake: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="gemini-embed", input=["fine", "refuse me", "also fine"])
    assert "refused by the fake" in info.value.message
