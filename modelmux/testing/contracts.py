"""Contract test suites every provider, state store and cache must pass.

Subclass one in your plugin's tests and give it what it tests; pytest collects the
subclass (name it ``Test...``), not these bases. The suites use the fixtures of the
``modelmux.testing`` pytest plugin (``modelmux.testing.fixtures``): ``provider``, ``store`` and
``cache``, made from ``provider_config`` / ``store_config`` / ``cache_config`` through the
factory your plugin registered. With pytest-asyncio in auto mode::

    from modelmux.testing import StateStoreContract

    class TestMyStore(StateStoreContract):
        @pytest.fixture
        def store_config(self):
            return {"backend": "mystore", "ttl_seconds": 60}

A class may instead define ``provider`` / ``store`` / ``cache`` itself (an async fixture
yielding a started one; ``host`` gives a provider the pooled client) and, if its upstream
needs it, ``chat_body``. A provider that serves embeddings sets ``embedding_model``
(an upstream model id its fake embeds); one that does not is checked to refuse them with a 400.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from modelmux.embeddings import decode_base64
from modelmux.errors import InvalidRequestError
from modelmux.provider import Check, Completion, EventStream, Provider, UpstreamRequest
from modelmux.sse import SSEParser
from modelmux.stores import KeyValueStore, StateStore
from modelmux.testing.openapi import validate

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


class ProviderContract:
    """What the host relies on from every provider."""

    upstream_model: str = "test-model"
    #: An upstream model that serves embeddings; None: the provider serves none (``embeddings()``
    #: must then be the host's 400 naming ``model``).
    embedding_model: str | None = None
    #: Whether the upstream tells a stream's token counts although the client asked for no usage
    #: chunk (Anthropic, Bedrock, Ollama do; an OpenAI-compatible upstream does not): the stream's
    #: ``usage`` must then be set by its end, so the host counts the tokens (docs/plugins.md).
    counts_unasked_stream_usage: bool = True

    @pytest.fixture
    def chat_body(self) -> dict[str, Any]:
        return {
            "model": "contract",
            "messages": [{"role": "user", "content": "Say hello to the contract"}],
        }

    def request(self, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        body = dict(body, stream=stream) if stream else body
        return UpstreamRequest(body, self.upstream_model, str(body["model"]), stream, uuid.uuid4().hex)

    async def test_completion_is_an_openai_chat_completion(self, provider: Provider, chat_body: dict[str, Any]) -> None:
        result = await provider.chat(self.request(chat_body, stream=False))
        assert isinstance(result, Completion)
        data = result.json()
        validate("CreateChatCompletionResponse", data)
        assert data["choices"][0]["finish_reason"] in FINISH_REASONS
        assert result.body()  # serialisable

    async def test_stream_is_chunks_with_one_id_and_a_finish(
        self, provider: Provider, chat_body: dict[str, Any]
    ) -> None:
        result = await provider.chat(self.request(chat_body, stream=True))
        assert isinstance(result, EventStream) and result.kind == "chat"
        try:
            chunks = [c async for c in result.events()]
        finally:
            await result.aclose()
        assert chunks, "the stream had no chunks"
        for chunk in chunks:
            validate("CreateChatCompletionStreamResponse", chunk)
        assert len({c["id"] for c in chunks}) == 1
        finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch.get("finish_reason")]
        assert finishes and finishes[-1] in FINISH_REASONS

    async def test_sse_frames_end_with_done(self, provider: Provider, chat_body: dict[str, Any]) -> None:
        result = await provider.chat(self.request(chat_body, stream=True))
        assert isinstance(result, EventStream)
        parser = SSEParser()
        events = []
        try:
            async for frame in result.sse():
                events.extend(parser.feed(frame))
        finally:
            await result.aclose()
        assert events and events[-1].data == b"[DONE]"

    async def test_stream_reports_usage_when_asked(self, provider: Provider, chat_body: dict[str, Any]) -> None:
        body = dict(chat_body, stream_options={"include_usage": True})
        result = await provider.chat(self.request(body, stream=True))
        assert isinstance(result, EventStream)
        try:
            chunks = [c async for c in result.events()]
        finally:
            await result.aclose()
        usage = chunks[-1].get("usage")
        assert usage and isinstance(usage["prompt_tokens"], int) and isinstance(usage["completion_tokens"], int)
        assert result.usage == usage

    async def test_stream_sends_no_usage_unasked_yet_counts_it(
        self, provider: Provider, chat_body: dict[str, Any]
    ) -> None:
        result = await provider.chat(self.request(chat_body, stream=True))
        assert isinstance(result, EventStream)
        try:
            chunks = [c async for c in result.events()]
        finally:
            await result.aclose()
        assert not [c for c in chunks if c.get("usage")], "a usage chunk the client did not ask for"
        if self.counts_unasked_stream_usage:
            usage = result.usage
            assert usage, "stream.usage is not set: the host cannot count this stream's tokens"
            assert isinstance(usage["prompt_tokens"], int) and isinstance(usage["completion_tokens"], int)

    async def test_stream_can_be_closed_early(self, provider: Provider, chat_body: dict[str, Any]) -> None:
        result = await provider.chat(self.request(chat_body, stream=True))
        assert isinstance(result, EventStream)
        events = result.events()
        await events.__anext__()
        await events.aclose()  # type: ignore[attr-defined]
        await result.aclose()
        await result.aclose()  # twice is harmless

    @pytest.fixture
    def embeddings_body(self) -> dict[str, Any]:
        return {"model": "contract", "input": ["The quick brown fox", "jumps over", "the lazy dog"]}

    def embeddings_request(self, body: dict[str, Any]) -> UpstreamRequest:
        model = self.embedding_model or self.upstream_model
        return UpstreamRequest(body, model, str(body["model"]), False, uuid.uuid4().hex)

    async def _embed(self, provider: Provider, body: dict[str, Any]) -> dict[str, Any]:
        if self.embedding_model is None:
            pytest.skip("this provider serves no embeddings (embedding_model is None)")
        result = await provider.embeddings(self.embeddings_request(body))
        assert isinstance(result, Completion)
        data = result.json()
        assert result.body()
        return data

    async def test_embeddings_are_an_openai_list_in_input_order(
        self, provider: Provider, embeddings_body: dict[str, Any]
    ) -> None:
        data = await self._embed(provider, embeddings_body)
        validate("CreateEmbeddingResponse", data)
        assert [d["index"] for d in data["data"]] == list(range(len(embeddings_body["input"])))
        assert isinstance(data["model"], str)
        usage = data["usage"]
        assert isinstance(usage["prompt_tokens"], int) and usage["total_tokens"] >= usage["prompt_tokens"]
        # Each input's vector is the one it gets alone: batching and fan-out keep the order.
        last = await self._embed(provider, dict(embeddings_body, input=embeddings_body["input"][-1]))
        assert last["data"][0]["embedding"] == data["data"][-1]["embedding"]

    async def test_embeddings_base64_is_little_endian_float32_of_the_floats(
        self, provider: Provider, embeddings_body: dict[str, Any]
    ) -> None:
        floats = await self._embed(provider, dict(embeddings_body, encoding_format="float"))
        packed = await self._embed(provider, dict(embeddings_body, encoding_format="base64"))
        for f, b in zip(floats["data"], packed["data"], strict=True):
            assert isinstance(b["embedding"], str)
            assert decode_base64(b["embedding"]) == pytest.approx(f["embedding"], rel=1e-6, abs=1e-7)

    async def test_embeddings_refused_with_400_when_not_served(
        self, provider: Provider, embeddings_body: dict[str, Any]
    ) -> None:
        if self.embedding_model is not None:
            pytest.skip("this provider serves embeddings (embedding_model is set)")
        with pytest.raises(InvalidRequestError) as info:
            await provider.embeddings(self.embeddings_request(embeddings_body))
        assert info.value.status_code == 400 and info.value.param == "model"
        assert "embeddings" in info.value.message

    async def test_list_models_and_doctor_answer(self, provider: Provider) -> None:
        models = await provider.list_models()
        assert isinstance(models, list) and all(isinstance(m, str) for m in models)
        checks = await provider.doctor()
        assert all(isinstance(c, Check) for c in checks)


class _KeyValueContract:
    @pytest.fixture
    def key(self) -> str:
        return f"contract:{uuid.uuid4().hex}"

    async def test_missing_key_is_none(self, kv: KeyValueStore, key: str) -> None:
        assert await kv.get(key) is None
        assert await kv.delete(key) is False

    async def test_set_get_delete_roundtrip_bytes(self, kv: KeyValueStore, key: str) -> None:
        value = bytes(range(256)) * 4 + "ünïcødé".encode()
        await kv.set(key, value)
        assert await kv.get(key) == value
        await kv.set(key, b"second")
        assert await kv.get(key) == b"second"
        assert await kv.delete(key) is True
        assert await kv.get(key) is None

    async def test_ttl_expires(self, kv: KeyValueStore, key: str) -> None:
        await kv.set(key, b"short", ttl=1)
        assert await kv.get(key) == b"short"
        await asyncio.sleep(1.3)
        assert await kv.get(key) is None

    async def test_touch_extends_the_ttl_of_an_existing_key(self, kv: KeyValueStore, key: str) -> None:
        assert await kv.touch(key, ttl=60) is False  # missing: nothing is created
        assert await kv.get(key) is None
        await kv.set(key, b"kept", ttl=1)
        assert await kv.touch(key, ttl=60) is True
        await asyncio.sleep(1.3)
        assert await kv.get(key) == b"kept"
        assert await kv.touch(key, ttl=1) is True  # shortens too
        await asyncio.sleep(1.3)
        assert await kv.get(key) is None

    async def test_concurrent_writers_do_not_corrupt(self, kv: KeyValueStore, key: str) -> None:
        await asyncio.gather(*(kv.set(f"{key}:{i}", str(i).encode() * 100) for i in range(50)))
        values = await asyncio.gather(*(kv.get(f"{key}:{i}") for i in range(50)))
        assert values == [str(i).encode() * 100 for i in range(50)]
        await asyncio.gather(*(kv.delete(f"{key}:{i}") for i in range(50)))

    async def test_ping(self, kv: KeyValueStore) -> None:
        assert await kv.ping() is True


class StateStoreContract(_KeyValueContract):
    """Give it a fresh ``StateStore``: a ``store_config`` fixture, or a ``store`` fixture of its own."""

    @pytest.fixture
    def kv(self, store: StateStore) -> StateStore:
        return store

    async def test_incr_counts_atomically(self, store: StateStore, key: str) -> None:
        results = await asyncio.gather(*(store.incr(key, 2, ttl=60) for _ in range(20)))
        assert sorted(results) == list(range(2, 42, 2))
        assert await store.incr(key, 0) == 40

    async def test_incr_counter_expires(self, store: StateStore, key: str) -> None:
        assert await store.incr(key, 5, ttl=1) == 5
        await asyncio.sleep(1.3)
        assert await store.incr(key, 1, ttl=1) == 1

    async def test_get_many_answers_in_order_with_none_for_missing(self, store: StateStore, key: str) -> None:
        await store.set(key + ":a", b"1", ttl=60)
        await store.set(key + ":c", b"3", ttl=60)
        assert await store.get_many([key + ":c", key + ":b", key + ":a"]) == [b"3", None, b"1"]
        assert await store.get_many([]) == []


class CacheContract(_KeyValueContract):
    """Give it a fresh ``Cache``: a ``cache_config`` fixture, or a ``cache`` fixture of its own."""

    @pytest.fixture
    def kv(self, cache: KeyValueStore) -> KeyValueStore:
        return cache
