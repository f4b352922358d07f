"""Bare FastAPI forwarder used to compare async HTTP clients for upstream calls.

One route, ``POST /v1/chat/completions``: read the raw body, forward it to the
upstream, and return the answer (streamed back with ``StreamingResponse`` when
the request has ``"stream": true``). Nothing else - no auth, no logging, no
body rewriting - so the difference between runs is the upstream client.

Usage::

    python bench/forwarder.py --client aiohttp --port 18001 \
        --upstream http://127.0.0.1:18000
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import aiohttp
import httpx
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from httpx_aiohttp import AiohttpTransport

CLIENTS = ("httpx", "httpx-aiohttp", "aiohttp")
PATH = "/v1/chat/completions"
MAX_CONNECTIONS = 1000
TIMEOUT_S = 60.0
FORWARD_HEADERS = {"content-type": "application/json"}


class Upstream(Protocol):
    async def post(self, body: bytes) -> Response: ...
    async def stream(self, body: bytes) -> Response: ...
    async def aclose(self) -> None: ...


def _aiohttp_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        auto_decompress=False,
    )


class HttpxUpstream:
    """One pooled httpx.AsyncClient, on its default transport or on httpx-aiohttp's."""

    def __init__(self, url: str, aiohttp_transport: bool) -> None:
        self.url = url
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
        transport = AiohttpTransport(client=_aiohttp_session) if aiohttp_transport else None
        self.client = httpx.AsyncClient(limits=limits, timeout=TIMEOUT_S, transport=transport, trust_env=False)

    async def post(self, body: bytes) -> Response:
        r = await self.client.post(self.url, content=body, headers=FORWARD_HEADERS)
        return Response(r.content, r.status_code, media_type=r.headers.get("content-type"))

    async def stream(self, body: bytes) -> Response:
        req = self.client.build_request("POST", self.url, content=body, headers=FORWARD_HEADERS)
        r = await self.client.send(req, stream=True)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in r.aiter_raw():
                    yield chunk
            finally:
                await r.aclose()

        return StreamingResponse(relay(), r.status_code, media_type=r.headers.get("content-type"))

    async def aclose(self) -> None:
        await self.client.aclose()


class AiohttpUpstream:
    """One pooled aiohttp.ClientSession."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = _aiohttp_session()

    async def post(self, body: bytes) -> Response:
        async with self.session.post(self.url, data=body, headers=FORWARD_HEADERS) as r:
            content = await r.read()
            return Response(content, r.status, media_type=r.content_type)

    async def stream(self, body: bytes) -> Response:
        r = await self.session.post(self.url, data=body, headers=FORWARD_HEADERS)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in r.content.iter_any():
                    yield chunk
            finally:
                r.release()

        return StreamingResponse(relay(), r.status, media_type=r.content_type)

    async def aclose(self) -> None:
        await self.session.close()


def make_upstream(client: str, url: str) -> Upstream:
    if client == "aiohttp":
        return AiohttpUpstream(url)
    return HttpxUpstream(url, aiohttp_transport=client == "httpx-aiohttp")


def create_app(client: str, upstream_base: str) -> FastAPI:
    url = upstream_base.rstrip("/") + PATH
    holder: dict[str, Upstream] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder["up"] = make_upstream(client, url)  # created inside the server's event loop
        yield
        await holder["up"].aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post(PATH)
    async def chat_completions(request: Request) -> Response:
        body = await request.body()
        up = holder["up"]
        try:
            wants_stream = orjson.loads(body).get("stream") is True
        except (orjson.JSONDecodeError, AttributeError):
            return Response(b'{"error":"invalid JSON body"}', 400, media_type="application/json")
        return await (up.stream(body) if wants_stream else up.post(body))

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", choices=CLIENTS, default="httpx")
    ap.add_argument("--upstream", default="http://127.0.0.1:18000", help="upstream base URL")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18001)
    args = ap.parse_args()
    uvicorn.run(
        create_app(args.client, args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
        backlog=1024,
    )


if __name__ == "__main__":
    main()
