"""A fault-injecting, OpenAI-compatible fake upstream for resilience tests.

``FaultyUpstream`` serves ``POST /v1/chat/completions`` (streaming and not) and is
told, request by request, how to misbehave: answer normally (optionally slowly),
answer an error status (429 with ``retry-after``, 500, 400...), hang before the
first byte, hang after the headers, or drop the connection mid-stream. It counts
attempts, requests still being handled, and requests whose client closed the
connection before the answer was complete (with when that was noticed)::

    up = FaultyUpstream()
    up.plan(Fault.status(429, retry_after=0.1), Fault.ok())
    with serve_aiohttp(up.app()) as server:
        ...  # base_url = server.url + "/v1"
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

Kind = Literal["ok", "status", "hang", "hang_stream", "drop"]


@dataclass(frozen=True)
class Fault:
    kind: Kind = "ok"
    status: int = 200
    retry_after: float | None = None
    #: Pause before each streamed chunk (slow upstream), and before a non-stream answer.
    delay: float = 0.0
    #: Chunks sent before a ``drop``.
    chunks_before_drop: int = 2
    #: How long a hang lasts at most (the gateway should give up long before).
    hang_seconds: float = 30.0

    @classmethod
    def ok(cls, delay: float = 0.0) -> Fault:
        return cls("ok", delay=delay)

    @classmethod
    def error(cls, status: int, retry_after: float | None = None) -> Fault:
        return cls("status", status=status, retry_after=retry_after)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Fault:
        return cls("hang", hang_seconds=seconds)

    @classmethod
    def hang_after_headers(cls, seconds: float = 30.0) -> Fault:
        return cls("hang_stream", hang_seconds=seconds)

    @classmethod
    def drop(cls, after_chunks: int = 2) -> Fault:
        return cls("drop", chunks_before_drop=after_chunks)


@dataclass
class FaultyUpstream:
    default: Fault = field(default_factory=Fault)
    #: Faults for the next requests, in order; ``default`` once it is empty.
    script: deque[Fault] = field(default_factory=deque)
    attempts: int = 0
    #: Requests being handled right now (back to 0 when nothing leaks).
    active: int = 0
    #: Requests whose client closed the connection before the answer was complete.
    closed_early: int = 0
    #: ``time.monotonic()`` when each early close was noticed.
    closed_at: list[float] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def plan(self, *faults: Fault) -> None:
        self.script.extend(faults)

    def app(self, routes: list[web.RouteDef] | None = None, *, any_path: bool = False) -> web.Application:
        """The fake's application; ``routes`` are served first (e.g. a token endpoint), and with
        ``any_path`` every other POST gets the scripted faults (upstreams with other URL shapes)."""
        app = web.Application()
        app.add_routes(routes or [])
        app.router.add_post("/v1/chat/completions", self._chat)
        if any_path:
            app.router.add_post("/{tail:.*}", self._chat)
        return app

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        self.active += 1
        try:
            body = orjson.loads(await request.read())
            self.models.append(str(body.get("model")))
            fault = self.script.popleft() if self.script else self.default
            return await self._answer(request, body, fault)
        finally:
            self.active -= 1

    async def _wait(self, request: web.Request, seconds: float) -> bool:
        """Sleep up to ``seconds``; False (and counted) as soon as the client closes the connection."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            transport = request.transport
            if transport is None or transport.is_closing():
                self._closed()
                return False
            await asyncio.sleep(min(0.005, max(0.0, end - time.monotonic())))
        return True

    def _closed(self) -> None:
        self.closed_early += 1
        self.closed_at.append(time.monotonic())

    async def _answer(self, request: web.Request, body: dict[str, Any], fault: Fault) -> web.StreamResponse:
        if fault.kind == "status":
            headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            kind = "rate_limit_exceeded" if fault.status == 429 else "fault"
            error = {"error": {"message": f"injected {fault.status}", "type": kind, "param": None, "code": kind}}
            return web.json_response(error, status=fault.status, headers=headers)
        if fault.kind == "hang":
            await self._wait(request, fault.hang_seconds)
            return web.Response(status=503)
        text = _last_user_text(body)
        words = text.split(" ") if text else ["ok"]
        if not body.get("stream"):
            if fault.delay and not await self._wait(request, fault.delay):
                return web.Response(status=499)
            return web.json_response(_completion(body, text))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        if fault.kind == "hang_stream":
            await self._wait(request, fault.hang_seconds)
            return resp
        frames = [_chunk(body, {"role": "assistant", "content": ""})]
        frames += [_chunk(body, {"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        frames.append(_chunk(body, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            frames.append(_usage_chunk(body, text))
        for i, frame in enumerate(frames):
            if fault.kind == "drop" and i == fault.chunks_before_drop:
                assert request.transport is not None
                request.transport.close()
                return resp
            if fault.delay and not await self._wait(request, fault.delay):
                return resp
            try:
                await resp.write(b"data: " + orjson.dumps(frame) + b"\n\n")
            except ConnectionError:
                self._closed()
                return resp
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""


def _usage(text: str) -> dict[str, int]:
    n = len(text.split())
    return {"prompt_tokens": n, "completion_tokens": n, "total_tokens": 2 * n}


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(text),
    }


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _usage_chunk(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [],
        "usage": _usage(text),
    }
