"""``POST /v1/embeddings`` through the real gateway (echo, and a test provider without embeddings),
driven by the official openai SDK, with raw HTTP for what the SDK would not send."""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from loguru import logger

from modelmux import hookimpl
from modelmux.embeddings import decode_base64, embedding_response, encode_base64
from modelmux.errors import UpstreamUnavailableError
from modelmux.logs import setup_logging
from modelmux.provider import Completion, EventStream, Provider, ProviderSettings, UpstreamRequest
from modelmux.testing import RunningGateway, run_gateway, validate

KEY = f"sk-embed-{uuid.uuid4().hex}"
SMALL_KEY = f"sk-embed-small-{uuid.uuid4().hex}"


class ChatOnly(Provider):
    """A third-party provider that never heard of embeddings: the host's default answers."""

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        raise AssertionError("not called")


class _ChatOnlyPlugin:
    @staticmethod
    @hookimpl
    def register_providers(register: Any) -> None:
        register("chatonly", lambda name, settings, host: ChatOnly(name, settings, host), ProviderSettings)


def config(**server: Any) -> dict[str, Any]:
    return {
        "server": {
            "api_keys": [KEY, SMALL_KEY],
            "limits": {"keys": {"small": {"api_key": SMALL_KEY, "tokens_per_minute": 5}}},
            **server,
        },
        "state": {"backend": "memory"},
        "cache": {"backend": "memory"},
        "providers": {"echo": {"type": "echo"}, "plain": {"type": "chatonly"}},
        "models": {
            "echo": {"provider": "echo", "model": "echo"},
            "embedder": {"provider": "echo", "model": "echo", "cache": True},
            "embedder-query": {"provider": "echo", "model": "echo", "cache": True, "options": {"task": "query"}},
            "chat-only": {"provider": "plain", "model": "some-chat-model"},
        },
    }


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    with run_gateway(config(), plugins=[_ChatOnlyPlugin()]) as running:
        yield running


@pytest.fixture
def sdk(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key=KEY, max_retries=0)


def post(gw: RunningGateway, body: Any, key: str = KEY, **headers: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/embeddings", json=body, headers={"authorization": f"Bearer {key}", **headers})


def test_sdk_default_base64_decodes_to_the_float_answer(sdk: openai.OpenAI, gw: RunningGateway) -> None:
    # The SDK asks for base64 unless told otherwise and decodes it itself.
    got = sdk.embeddings.create(model="echo", input=["cats purr softly", "dogs bark loudly"])
    floats = post(gw, {"model": "echo", "input": ["cats purr softly", "dogs bark loudly"]}).json()
    validate("CreateEmbeddingResponse", floats)
    assert [d.index for d in got.data] == [0, 1]
    for mine, want in zip(got.data, floats["data"], strict=True):
        assert len(mine.embedding) == 256
        assert mine.embedding == pytest.approx(want["embedding"], rel=1e-6, abs=1e-7)
    assert got.model == "echo" and got.usage.prompt_tokens == 6 and got.usage.total_tokens == 6


def test_raw_base64_is_little_endian_float32(gw: RunningGateway) -> None:
    body = {"model": "echo", "input": "one two", "encoding_format": "base64", "dimensions": 16}
    b64 = post(gw, body).json()["data"][0]["embedding"]
    floats = post(gw, {**body, "encoding_format": "float"}).json()["data"][0]["embedding"]
    assert isinstance(b64, str) and len(floats) == 16
    assert decode_base64(b64) == pytest.approx(floats, rel=1e-6, abs=1e-7)
    assert encode_base64(floats) == b64


def test_vectors_are_deterministic_unit_length_and_similar_for_similar_texts(sdk: openai.OpenAI) -> None:
    texts = ["the cat sat on the mat", "the cat sat on a mat", "quantum chromodynamics lecture"]
    first = [d.embedding for d in sdk.embeddings.create(model="echo", input=texts, encoding_format="float").data]
    again = [d.embedding for d in sdk.embeddings.create(model="echo", input=texts, encoding_format="float").data]
    assert first == again
    assert all(math.isclose(math.fsum(v * v for v in vec), 1.0, rel_tol=1e-9) for vec in first)

    def cos(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    assert cos(first[0], first[1]) > cos(first[0], first[2])


def test_token_arrays_and_dimensions(sdk: openai.OpenAI) -> None:
    one = sdk.embeddings.create(model="echo", input=[101, 2023, 102], dimensions=64)
    many = sdk.embeddings.create(model="echo", input=[[101, 2023, 102], [7, 8]], dimensions=64)
    assert len(one.data) == 1 and len(one.data[0].embedding) == 64
    assert len(many.data) == 2 and many.data[0].embedding == one.data[0].embedding
    assert many.usage.prompt_tokens == 5


def test_provider_slash_model_and_models_list(sdk: openai.OpenAI) -> None:
    assert len(sdk.embeddings.create(model="echo/anything", input="x").data) == 1
    assert {"embedder", "embedder-query"} <= {m.id for m in sdk.models.list().data}


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"model": "echo", "input": ""}, "input", "the string is empty"),
        ({"model": "echo", "input": []}, "input", "the array is empty"),
        ({"model": "echo", "input": ["ok", ""]}, "input[1]", "the string is empty"),
        ({"model": "echo", "input": [[1, 2], []]}, "input[1]", "the token array is empty"),
        ({"model": "echo", "input": ["ok", 3]}, "input[1]", "strings only or token arrays only"),
        ({"model": "echo", "input": [1, "x"]}, "input[1]", "integers only"),
        ({"model": "echo", "input": [[1, 2.5]]}, "input[0]", "integers only"),
        ({"model": "echo", "input": {"text": "x"}}, "input", "got dict"),
        ({"model": "echo", "input": ["x"] * 2049}, "input", "at most 2048"),
        ({"model": "echo"}, "input", "Missing required parameter: 'input'"),
        ({"input": "x"}, "model", "Missing required parameter: 'model'"),
        ({"model": "echo", "input": "x", "encoding_format": "int8"}, "encoding_format", "'float' or 'base64'"),
        ({"model": "echo", "input": "x", "dimensions": 0}, "dimensions", "positive integer"),
        ({"model": "echo", "input": "x", "dimensions": "8"}, "dimensions", "positive integer"),
        ({"model": "echo", "input": "x", "dimensions": 100000}, "dimensions", "at most 4096"),
        ({"model": "echo", "input": "x", "user": 7}, "user", "expected a string"),
        ({"model": "echo", "input": "x", "stream": True}, "stream", "not streamed"),
    ],
)
def test_bad_input_is_an_openai_shaped_400_naming_the_field(
    gw: RunningGateway, body: dict[str, Any], param: str, needle: str
) -> None:
    resp = post(gw, body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert needle in error["message"]


def test_the_sdk_sees_a_bad_request(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.embeddings.create(model="echo", input="")
    assert "empty" in info.value.message


def test_a_model_without_embeddings_is_a_400_naming_it(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.embeddings.create(model="chat-only", input="hello")
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_embeddings" and body["param"] == "model"
    assert "'chat-only' does not serve embeddings" in body["message"] and "plain" in body["message"]


def test_unknown_model_is_404(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk.embeddings.create(model="text-embedding-9", input="hello")
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "model_not_found"


def test_cache_true_on_the_model_answers_the_second_request_from_the_cache(gw: RunningGateway) -> None:
    text = f"cache me {uuid.uuid4().hex}"
    first = post(gw, {"model": "embedder", "input": text, "encoding_format": "float"})
    second = post(gw, {"model": "embedder", "input": text, "encoding_format": "float"})
    assert first.headers["x-modelmux-cache"] == "miss" and second.headers["x-modelmux-cache"] == "hit"
    assert second.content == first.content
    # Another encoding is another answer; so is the same upstream with other model options.
    other = post(gw, {"model": "embedder", "input": text, "encoding_format": "base64"})
    assert other.headers["x-modelmux-cache"] == "miss"
    query = post(gw, {"model": "embedder-query", "input": text, "encoding_format": "float"})
    assert query.headers["x-modelmux-cache"] == "miss"
    assert post(gw, {"model": "echo", "input": text}).headers.get("x-modelmux-cache") is None  # not opted in


def test_tokens_count_against_the_key_limit(gw: RunningGateway) -> None:
    body = {"model": "echo", "input": ["a b c", "d e f"]}  # 6 tokens: over the small key's 5
    assert post(gw, body, SMALL_KEY).status_code == 200
    refused = post(gw, body, SMALL_KEY)
    assert refused.status_code == 429 and "tokens per minute (5)" in refused.json()["error"]["message"]
    assert post(gw, body).status_code == 200  # the other key is not limited


def test_metrics_count_embedding_requests_and_tokens(gw: RunningGateway) -> None:
    post(gw, {"model": "embedder-query", "input": f"metrics {uuid.uuid4().hex} words"})
    text = httpx.get(f"{gw.root}/metrics").text
    assert 'modelmux_http_requests_total{endpoint="/v1/embeddings",method="POST",status="200"}' in text
    assert 'modelmux_tokens_total{model="embedder-query",provider="echo",type="input"}' in text


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    yield capfd
    logger.remove()
    logger.add(sys.__stderr__, level="INFO")


def test_the_log_line_has_the_model_provider_and_tokens(logs: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", "json")
    with run_gateway(config(log_format="json"), plugins=[_ChatOnlyPlugin()]) as running:
        post(running, {"model": "embedder", "input": "three words here"}, **{"x-request-id": "req-embed-log"})
    lines = [orjson.loads(line) for line in logs.readouterr().err.splitlines() if "req-embed-log" in line]
    assert lines, "no log line for the request"
    line = lines[-1]
    flat = {**line, **(line.get("record", {}).get("extra", {}) if isinstance(line.get("record"), dict) else {})}
    text = orjson.dumps(flat).decode()
    for fact in ('"/v1/embeddings"', '"embedder"', '"echo"', '"input_tokens":3'):
        assert fact in text, (fact, text)


class Recorder(Provider):
    """Embeds with zeros and records each attempt's upstream model and options; model "down" is unavailable."""

    seen: list[tuple[str, dict[str, Any]]] = []

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        raise AssertionError("not called")

    async def embeddings(self, request: UpstreamRequest) -> Completion:
        Recorder.seen.append((request.model, dict(request.options)))
        if request.model == "down":
            raise UpstreamUnavailableError("provider rec: the upstream is down (503)")
        return embedding_response(request, [[0.0, 1.0]], 1)


class _RecorderPlugin:
    @staticmethod
    @hookimpl
    def register_providers(register: Any) -> None:
        register("recorder", lambda name, settings, host: Recorder(name, settings, host), ProviderSettings)


def test_a_fallback_answers_with_its_own_options() -> None:
    config = {
        "providers": {"rec": {"type": "recorder", "max_retries": 0}},
        "models": {
            "primary": {"provider": "rec", "model": "down", "options": {"input_type": "a"}, "fallbacks": ["second"]},
            "second": {"provider": "rec", "model": "up", "options": {"input_type": "b"}},
        },
    }
    Recorder.seen.clear()
    with run_gateway(config, plugins=[_RecorderPlugin()]) as running:
        resp = httpx.post(f"{running.url}/embeddings", json={"model": "primary", "input": "x"})
        direct = httpx.post(f"{running.url}/embeddings", json={"model": "rec/up", "input": "x"})
    assert resp.status_code == 200 and resp.headers["x-modelmux-model"] == "up"
    assert direct.status_code == 200
    assert Recorder.seen == [("down", {"input_type": "a"}), ("up", {"input_type": "b"}), ("up", {})]
