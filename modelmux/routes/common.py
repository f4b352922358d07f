"""What every API route does the same way: read the JSON body, route it, answer."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from modelmux.errors import UpstreamError
from modelmux.gateway import Gateway
from modelmux.provider import Completion
from modelmux.router import Endpoint, Routed
from modelmux.schemas import parse_json_object
from modelmux.streaming import to_client

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def read_json(request: Request) -> dict[str, Any]:
    return parse_json_object(await request.body())


def routed_headers(routed: Routed) -> dict[str, str]:
    dep = routed.deployment
    return {"x-modelmux-provider": dep.provider, "x-modelmux-model": dep.model}


async def forward(request: Request, endpoint: Endpoint, body: dict[str, Any]) -> Response:
    """Route ``body`` to a deployment and answer with its completion or stream."""
    gw = gateway(request)
    state = request.scope["state"]
    stream = bool(body.get("stream"))
    state["model"] = body.get("model")
    routed = await gw.router.call(endpoint, body, stream=stream, request_id=state.get("request_id", ""))
    dep = routed.deployment
    state["provider"] = dep.provider
    headers = routed_headers(routed)
    result = routed.result
    if isinstance(result, Completion):
        headers.update(result.headers)
        return Response(result.body(), media_type="application/json", headers=headers)
    if not stream:
        await result.aclose()
        raise UpstreamError(f"provider {dep.provider} answered a stream to a non-streaming request")
    headers.update(SSE_HEADERS)
    headers.update(result.headers)
    started = state.get("started", time.perf_counter())
    return StreamingResponse(
        to_client(result, provider=dep.provider, model=dep.route, started=started),
        media_type="text/event-stream",
        headers=headers,
    )


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")
