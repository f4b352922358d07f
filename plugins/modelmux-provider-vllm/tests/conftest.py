"""A fake OpenAI-compatible server (vLLM-like) on loopback, for the plugin's tests.

It checks the auth header, answers by the upstream model name it receives (each
name is a scenario), and records what it saw. ``CLOSED`` is set when
a streaming client went away before the stream ended (fixture ``upstream_keys``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from modelmux.testing import LoopbackServer, fake_embedding, fake_embeddings_answer, serve_aiohttp

API_KEY = "sk-vllm-test"
SLOW_CHUNKS = 400
#: Set when a streaming client went away before the end of a "slow" stream.
CLOSED = web.AppKey("closed", threading.Event)
#: How many "slow" chunks were written before that.
SENT = web.AppKey("sent", list)
CALLS = web.AppKey("calls", dict)


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def completion(
    model: str, text: str, *, finish: str = "stop", tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None if tool_calls else text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-fake123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11},
    }


def chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-fake123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def usage_chunk(model: str) -> bytes:
    payload = {
        "id": "chatcmpl-fake123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11},
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def stream_frames(model: str, body: dict[str, Any]) -> list[bytes]:
    frames = [chunk(model, {"role": "assistant", "content": ""})]
    if body.get("tools"):
        frames.append(
            chunk(
                model, {"tool_calls": [{"index": 0, **TOOL_CALL, "function": {"name": "get_weather", "arguments": ""}}]}
            )
        )
        frames.append(chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]}))
        frames.append(chunk(model, {}, "tool_calls"))
    else:
        for word in ("Hello", " from", " fake", " vLLM"):
            frames.append(chunk(model, {"content": word}))
        frames.append(chunk(model, {}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        frames.append(usage_chunk(model))
    frames.append(b"data: [DONE]\n\n")
    return frames


async def send_stream(request: web.Request, frames: list[bytes]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    for frame in frames:
        await resp.write(frame)
    await resp.write_eof()
    return resp


def responses_object(model: str) -> dict[str, Any]:
    return {
        "id": "resp_fake1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello from responses", "annotations": []}],
            }
        ],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
    }


def responses_frames(model: str) -> list[bytes]:
    final = responses_object(model)
    events = [
        (
            "response.created",
            {"type": "response.created", "response": {**final, "status": "in_progress", "output": []}},
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hello",
            },
        ),
        ("response.completed", {"type": "response.completed", "response": final}),
    ]
    return [f"event: {name}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n" for name, data in events]


#: Upstream models the fake embeds with (any other is a chat model: 400, as vLLM answers).
EMBEDDING_MODELS = ("BAAI/bge-m3", "intfloat/e5-mistral-7b-instruct")


def make_app(api_key: str | None = API_KEY, *, auth_header: str = "authorization") -> web.Application:
    app = web.Application()
    app[CLOSED] = threading.Event()
    app[SENT] = [0]
    app[CALLS] = {}

    def authorized(request: web.Request) -> bool:
        if api_key is None:
            return True
        got = request.headers.get(auth_header, "")
        want = f"Bearer {api_key}" if auth_header == "authorization" else api_key
        return got == want

    def deny() -> web.Response:
        return web.Response(
            status=401,
            body=error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
            content_type="application/json",
        )

    async def chat(request: web.Request) -> web.StreamResponse:
        if not authorized(request):
            return deny()
        body = orjson.loads(await request.read())
        model = body["model"]
        calls = app[CALLS]
        calls[model] = calls.get(model, 0) + 1
        if model == "ratelimited":
            return web.Response(
                status=429,
                headers={"retry-after": "7"},
                body=error_body("Rate limit reached", "rate_limit_error", "rate_limit_exceeded"),
                content_type="application/json",
            )
        if model == "ratelimited-once" and calls[model] == 1:
            return web.Response(
                status=429,
                headers={"retry-after": "0"},
                body=error_body("Rate limit reached", "rate_limit_error", "rate_limit_exceeded"),
                content_type="application/json",
            )
        if model == "broken":
            return web.Response(status=500, text="Internal Server Error")
        if model == "bad-request":
            return web.Response(
                status=400,
                body=error_body(
                    "This model's maximum context length is 8192 tokens.",
                    "BadRequestError",
                    "context_length_exceeded",
                    "messages",
                ),
                content_type="application/json",
            )
        if model == "html":
            return web.Response(status=200, text="<html>proxy login</html>", content_type="text/html")
        if not body.get("stream"):
            tools = body.get("tools")
            return web.Response(
                body=orjson.dumps(
                    completion(
                        model,
                        "Hello from fake vLLM",
                        finish="tool_calls" if tools else "stop",
                        tool_calls=[TOOL_CALL] if tools else None,
                    )
                ),
                content_type="application/json",
            )
        if model == "drops":
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(chunk(model, {"role": "assistant", "content": ""}))
            await resp.write(chunk(model, {"content": "partial"}))
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()  # the upstream dies mid-stream: no final chunk, no [DONE]
            return resp
        if model == "slow":
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            try:
                await resp.write(chunk(model, {"role": "assistant", "content": ""}))
                for i in range(SLOW_CHUNKS):
                    await resp.write(chunk(model, {"content": f" w{i}"}))
                    app[SENT][0] = i + 1
                    await asyncio.sleep(0.02)
                await resp.write(chunk(model, {}, "stop"))
                await resp.write(b"data: [DONE]\n\n")
            except (ConnectionError, asyncio.CancelledError):
                app[CLOSED].set()
                raise
            return resp
        return await send_stream(request, stream_frames(model, body))

    async def responses(request: web.Request) -> web.StreamResponse:
        if not authorized(request):
            return deny()
        body = orjson.loads(await request.read())
        if body.get("stream"):
            return await send_stream(request, responses_frames(body["model"]))
        return web.Response(body=orjson.dumps(responses_object(body["model"])), content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        if not authorized(request):
            return deny()
        data = {
            "object": "list",
            "data": [
                {"id": "openai/gpt-oss-120b", "object": "model", "created": 0, "owned_by": "vllm"},
                {"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "created": 0, "owned_by": "vllm"},
            ],
        }
        return web.json_response(data)

    async def embeddings(request: web.Request) -> web.Response:
        if not authorized(request):
            return deny()
        body = orjson.loads(await request.read())
        if body["model"] == "broken":
            return web.Response(status=500, text="Internal Server Error")
        if body["model"] not in EMBEDDING_MODELS:
            return web.Response(
                status=400,
                body=error_body("The model does not support Embeddings API", "BadRequestError", None, "model"),
                content_type="application/json",
            )
        return web.Response(body=orjson.dumps(fake_embeddings_answer(body)), content_type="application/json")

    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/responses", responses)
    app.router.add_get("/v1/models", models)
    return app


@pytest.fixture(scope="module")
def fake_vllm_app() -> web.Application:
    return make_app()


@pytest.fixture(scope="module")
def fake_vllm(fake_vllm_app: web.Application) -> Iterator[LoopbackServer]:
    with serve_aiohttp(fake_vllm_app) as server:
        yield server


@pytest.fixture(scope="module")
def upstream_state(fake_vllm_app: web.Application) -> dict[str, Any]:
    """What the fake saw: closed (threading.Event), sent ([chunks of "slow"]), calls ({model: n}), total."""
    return {
        "closed": fake_vllm_app[CLOSED],
        "sent": fake_vllm_app[SENT],
        "calls": fake_vllm_app[CALLS],
        "total": SLOW_CHUNKS,
    }


@pytest.fixture
def make_fake_vllm(serve_upstream: Callable[[web.Application], LoopbackServer]) -> Any:
    """Start a fake with other auth settings: ``make_fake_vllm(api_key=None)``."""

    def start(api_key: str | None = API_KEY, auth_header: str = "authorization") -> LoopbackServer:
        return serve_upstream(make_app(api_key, auth_header=auth_header))

    return start


def wait_for(event: threading.Event, seconds: float = 10.0) -> bool:
    """Wait for a server-side event from a test thread (a bound, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not event.is_set() and time.monotonic() < deadline:
        event.wait(0.05)
    return event.is_set()


@pytest.fixture
def wait() -> Any:
    return wait_for


@pytest.fixture
def expected_frames() -> Any:
    """``expected_frames(upstream_model, body)``: the SSE frames the fake sends for a chat stream."""
    return stream_frames


@pytest.fixture
def start_fake_vllm(serve_upstream: Callable[[web.Application], LoopbackServer]) -> Callable[[], LoopbackServer]:
    """``start_fake_vllm()``: a fresh fake for one test; ``fake.stop()`` takes it down before the end."""
    return lambda: serve_upstream(make_app())


@pytest.fixture(name="fake_embedding")
def fake_embedding_fixture() -> Any:
    """``fake_embedding(input, dimensions)``: the vector the fake answers for one input."""
    return fake_embedding
