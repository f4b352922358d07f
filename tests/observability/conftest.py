"""Fixtures for the observability and cache tests: a fake OpenAI-compatible upstream on
loopback, a test-only provider type ``fakeoai`` that calls it through the host's pooled
client, a state store that never answers, and a reader of ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from modelmux import hookimpl
from modelmux.http import error_from_status, timeout_for, upstream_errors
from modelmux.provider import Completion, EventStream, Provider, ProviderSettings, RawEventStream, UpstreamRequest
from modelmux.stores import StateStore, StoreSettings
from modelmux.testing import LoopbackServer, serve_aiohttp
from modelmux.testing.servers import SERVER_KEY

PROVIDER_KEY = "sk-provider-secret-4567"
CLIENT_KEY = "sk-client-secret-1234"


class FakeSettings(ProviderSettings):
    type: str = "fakeoai"
    base_url: str
    api_key: str = ""
    native_responses: bool = False


class FakeProvider(Provider):
    settings: FakeSettings

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}

    def __init__(self, name: str, settings: FakeSettings, host: Any) -> None:
        super().__init__(name, settings, host)
        self.native_responses = settings.native_responses

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        return await self._post("/chat/completions", request, "chat")

    async def responses(self, request: UpstreamRequest) -> Completion | EventStream:
        return await self._post("/responses", request, "responses")

    async def _post(self, path: str, request: UpstreamRequest, kind: Any) -> Completion | EventStream:
        body = {**request.body, "model": request.model}
        async with upstream_errors(self.name):
            resp = await self.host.http.post(
                f"{self.settings.base_url}{path}",
                json=body,
                headers=self._headers(),
                timeout=timeout_for(self.settings, stream=request.stream),
            )
            if resp.status >= 400 or not request.stream:
                data = await resp.read()
                resp.release()
                if resp.status >= 400:
                    raise error_from_status(self.name, resp.status, data, resp.headers)
                return Completion(raw=data)

        async def source() -> AsyncIterator[bytes]:
            async with upstream_errors(self.name):
                async for chunk in resp.content.iter_any():
                    yield chunk

        async def close() -> None:
            resp.close()

        return RawEventStream(source(), kind=kind, on_close=close, provider=self.name)

    async def ready(self) -> bool:
        async with upstream_errors(self.name):
            resp = await self.host.http.get(f"{self.settings.base_url}/models", headers=self._headers())
            resp.release()
        return resp.status == 200


class SilentStore(StateStore):
    """A state store whose backend never answers (readiness must say so)."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("state backend at 127.0.0.1:1 refused the connection")

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        raise ConnectionError("refused")

    async def delete(self, key: str) -> bool:
        raise ConnectionError("refused")

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        raise ConnectionError("refused")


class FakePlugin:
    @hookimpl
    def register_providers(self, register: Any) -> None:
        register("fakeoai", lambda name, settings, host: FakeProvider(name, settings, host), FakeSettings)

    @hookimpl
    def register_state_stores(self, register: Any) -> None:
        register("silent", SilentStore, StoreSettings)


def _chunk(cid: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def fake_openai_app() -> web.Application:
    """Answers with the last user message. ``app["fail"]``: statuses to answer first, one per
    request; ``app["ready"]``: what GET /models answers; ``app["hold"]``: see below.
    Error bodies quote the key the upstream got (the gateway must not log it)."""
    app = web.Application()
    app["fail"] = []
    app["ready"] = True
    app["hold"] = None  # an asyncio.Event: streams pause after their first event until it is set

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []}, status=200 if app["ready"] else 503)

    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        if app["fail"]:
            status = app["fail"].pop(0)
            key = request.headers.get("authorization", "")
            return web.json_response(
                {"error": {"message": f"upstream broke while serving {key}", "type": "server_error"}}, status=status
            )
        text = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        usage = {"prompt_tokens": 3, "completion_tokens": len(text.split()), "total_tokens": 3 + len(text.split())}
        cid = f"chatcmpl-{len(request.app[SERVER_KEY].requests)}"
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        events = [_chunk(cid, {"role": "assistant", "content": ""})]
        events += [_chunk(cid, {"content": (" " if i else "") + w}) for i, w in enumerate(text.split())]
        events.append(_chunk(cid, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**_chunk(cid, {}), "choices": [], "usage": usage})
        for i, event in enumerate(events):
            await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
            if i == 0 and app["hold"] is not None:
                await app["hold"].wait()
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def responses(request: web.Request) -> web.StreamResponse:
        """A native Responses API: echoes the last user text; ids count the calls."""
        body = orjson.loads(await request.read())
        n = sum(1 for r in request.app[SERVER_KEY].requests if r["path"] == "/v1/responses")
        items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        last = next(i for i in reversed(items) if i.get("role") == "user")["content"]
        text = last if isinstance(last, str) else " ".join(p.get("text", "") for p in last)
        message = {
            "type": "message",
            "id": f"msg_up{n}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        final = {
            "id": f"resp_up{n}",
            "object": "response",
            "created_at": 1700000000,
            "status": "completed",
            "model": body["model"],
            "output": [message],
            "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
        }
        if not body.get("stream"):
            return web.json_response(final)
        events = [
            {"type": "response.created", "response": {**final, "status": "in_progress", "output": []}},
            {"type": "response.output_item.added", "output_index": 0, "item": {**message, "content": []}},
            {
                "type": "response.output_text.delta",
                "item_id": message["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": text,
            },
            {"type": "response.output_item.done", "output_index": 0, "item": message},
            {"type": "response.completed", "response": final},
        ]
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for i, event in enumerate(events):
            event["sequence_number"] = i
            await resp.write(f"event: {event['type']}\n".encode() + b"data: " + orjson.dumps(event) + b"\n\n")
        return resp

    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/responses", responses)
    return app


@pytest.fixture
def upstream() -> Iterator[LoopbackServer]:
    with serve_aiohttp(fake_openai_app()) as server:
        yield server


def chat_calls(server: LoopbackServer) -> int:
    return sum(1 for r in server.requests if r["path"].endswith("/chat/completions"))


def responses_calls(server: LoopbackServer) -> int:
    return sum(1 for r in server.requests if r["path"] == "/v1/responses")


def read_metrics(root: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``GET /metrics``, by (sample name, labels)."""
    text = httpx.get(f"{root}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


class Helpers:
    """What the tests share (tests cannot import conftest): the ``h`` fixture."""

    PROVIDER_KEY = PROVIDER_KEY
    CLIENT_KEY = CLIENT_KEY
    chat_calls = staticmethod(chat_calls)
    responses_calls = staticmethod(responses_calls)
    read_metrics = staticmethod(read_metrics)
    sample = staticmethod(sample)

    @property
    def plugins(self) -> list[object]:
        return [FakePlugin()]


@pytest.fixture
def h() -> Helpers:
    return Helpers()
