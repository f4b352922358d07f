"""Bare FastAPI forwarder: the cost of forwarding, with nothing else, as the bar for ModelMux.

Any ``POST`` path is read raw and sent to the same path on the upstream with one pooled
client; the answer is returned as it is (streamed back with ``StreamingResponse`` when
the request has ``"stream": true``). Only ``content-type`` and ``authorization`` are
forwarded. No auth, no logging, no metrics, no body rewriting: this is what the gateway's
features and translation are measured against.

``--client aiohttp`` (default; what ModelMux uses) or ``--client httpx`` (httpx's own
transport; the comparison in docs/performance.md that chose aiohttp).

Usage::

    python bench/forwarder.py --port 18001 --upstream http://127.0.0.1:18000
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

CLIENTS = ("aiohttp", "httpx")
MAX_CONNECTIONS = 1000
TIMEOUT_S = 60.0
FORWARDED = ("content-type", "authorization")


class Upstream(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response: ...
    async def stream(self, url: str, body: bytes, headers: dict[str, str]) -> Response: ...
    async def aclose(self) -> None: ...


class AiohttpUpstream:
    """One pooled aiohttp.ClientSession."""

    def __init__(self) -> None:
        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S), auto_decompress=False
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        async with self.session.post(url, data=body, headers=headers) as r:
            content = await r.read()
            return Response(content, r.status, media_type=r.content_type)

    async def stream(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        r = await self.session.post(url, data=body, headers=headers)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in r.content.iter_any():
                    yield chunk
            finally:
                r.release()

        return StreamingResponse(relay(), r.status, media_type=r.content_type)

    async def aclose(self) -> None:
        await self.session.close()


class HttpxUpstream:
    """One pooled httpx.AsyncClient on httpx's default transport."""

    def __init__(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
        self.client = httpx.AsyncClient(limits=limits, timeout=TIMEOUT_S, trust_env=False)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        r = await self.client.post(url, content=body, headers=headers)
        return Response(r.content, r.status_code, media_type=r.headers.get("content-type"))

    async def stream(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        r = await self.client.send(self.client.build_request("POST", url, content=body, headers=headers), stream=True)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in r.aiter_raw():
                    yield chunk
            finally:
                await r.aclose()

        return StreamingResponse(relay(), r.status_code, media_type=r.headers.get("content-type"))

    async def aclose(self) -> None:
        await self.client.aclose()


def create_app(client: str, upstream_base: str) -> FastAPI:
    base = upstream_base.rstrip("/")
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Created inside the server's event loop.
        holder["up"] = AiohttpUpstream() if client == "aiohttp" else HttpxUpstream()
        yield
        await holder["up"].aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/{path:path}")
    async def forward(request: Request, path: str) -> Response:
        body = await request.body()
        up: Upstream = holder["up"]
        try:
            wants_stream = orjson.loads(body).get("stream") is True
        except (orjson.JSONDecodeError, AttributeError):
            return Response(b'{"error":"invalid JSON body"}', 400, media_type="application/json")
        headers = {k: v for k in FORWARDED if (v := request.headers.get(k)) is not None}
        url = f"{base}/{path}"
        return await (up.stream(url, body, headers) if wants_stream else up.post(url, body, headers))

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", choices=CLIENTS, default="aiohttp")
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
