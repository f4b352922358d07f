"""What every API route does the same way: read the JSON body, route it, answer.

Facts about the request go into ``request.scope["state"]`` for the one log line
the middleware writes at its end (docs/observability.md lists them).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from modelmux import metrics
from modelmux.cache import HEADER as CACHE_HEADER
from modelmux.cache import Entry, Lookup, sse_events
from modelmux.errors import UpstreamError
from modelmux.gateway import Gateway
from modelmux.provider import Completion
from modelmux.router import Endpoint, Routed
from modelmux.schemas import parse_json_object
from modelmux.streaming import EventStreamResponse, to_client

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
#: Endpoints whose answers the response cache may keep.
CACHEABLE: tuple[Endpoint, ...] = ("chat", "responses")


class DirectRoute(APIRoute):
    """A route whose endpoint takes the ``Request`` itself: FastAPI calls it without solving
    dependencies and validating parameters on every request (the hot POST routes read and
    check their JSON body themselves). Still an ``APIRoute``, so routing sets ``scope["route"]``,
    which the endpoint label of metrics, the log line and /health totals come from."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        params = list(inspect.signature(self.endpoint).parameters.values())
        if len(params) != 1 or params[0].annotation not in (Request, "Request"):
            raise TypeError(f"{self.path}: a DirectRoute endpoint takes one parameter, the Request")
        handler: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return handler


ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]


class HotRoutes:
    """Serves the ``DirectRoute`` POST endpoints without FastAPI's per-request stack.

    A request to ``/v1/chat/completions`` otherwise passes about a dozen ASGI layers (error and
    exception middlewares, exit stacks, router and route matching, a second exception wrapper)
    that this app does not use on these routes: about 40 µs, a tenth of a proxied request's CPU.
    Here the endpoint is called with the ``Request`` and its errors go to the app's own exception
    handlers, as they would through FastAPI. The scope gets what routing would set (``app``,
    ``route``, ``endpoint``); every other request goes to the FastAPI app unchanged.
    """

    def __init__(self, app: FastAPI, routers: Iterable[APIRouter]) -> None:
        """``routers``: those ``app`` includes, without a prefix (FastAPI keeps included routers
        wrapped, so their routes are taken from them)."""
        self.app = app
        self.routes = {
            route.path: route
            for router in routers
            for route in router.routes
            if isinstance(route, DirectRoute) and route.methods == {"POST"} and not route.param_convertors
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            answer = handler(request, exc)  # the app's handlers are coroutines; Starlette allows both
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> ExceptionHandler | None:
        """The handler FastAPI would pick: the nearest registered class of ``exc``."""
        handlers = self.app.exception_handlers
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if gateway(request).config.server.log_bodies:
        request.scope["state"]["request_body"] = raw
    return parse_json_object(raw)


def routed_headers(routed: Routed) -> dict[str, str]:
    dep = routed.deployment
    return {"x-modelmux-provider": dep.provider, "x-modelmux-model": dep.model}


def cache_plan(
    request: Request, gw: Gateway, endpoint: Endpoint, body: dict[str, Any], context: Any = None
) -> Lookup | None:
    """The response cache's part in this request (None: none). ``context``: see ``request_key``."""
    header = request.headers.get(CACHE_HEADER)
    if endpoint not in CACHEABLE:
        return None
    if header is None and not gw.response_cache.maybe_enabled:
        return None  # the common case costs no model resolution
    primary = gw.router.resolve(str(body.get("model") or ""))[0]
    return gw.response_cache.plan(endpoint, body, header, primary, context)


def hit_headers(entry: Entry, state: dict[str, Any]) -> dict[str, str]:
    """A hit's response headers (the original's provider, model and stored extras); notes it for the log line."""
    state.update(provider=entry.provider, deployment=entry.model, cache="hit")
    return {
        **entry.headers,
        "x-modelmux-provider": entry.provider,
        "x-modelmux-model": entry.model,
        CACHE_HEADER: "hit",
    }


def _cached_answer(entry: Entry, state: dict[str, Any]) -> Response:
    headers = hit_headers(entry, state)
    if entry.kind == "sse":
        headers.update(SSE_HEADERS)
        return EventStreamResponse(sse_events(entry.body), headers)
    return Response(entry.body, media_type="application/json", headers=headers)


async def forward(request: Request, endpoint: Endpoint, body: dict[str, Any]) -> Response:
    """Route ``body`` to a deployment and answer with its completion or stream (or the cache's copy)."""
    gw = gateway(request)
    state = request.scope["state"]
    stream = bool(body.get("stream"))
    state["model"] = body.get("model")
    # Client rate limits (docs/guides/routing.md): refused before any work; tokens are charged after.
    key_id = state.get("key_id")
    await gw.limits.admit(key_id)
    lookup = cache_plan(request, gw, endpoint, body)
    if lookup is not None:
        state["cache"] = "miss"
        if lookup.read:
            entry = await gw.response_cache.get(lookup)
            if entry is not None:
                return _cached_answer(entry, state)
    routed = await gw.router.call(endpoint, body, stream=stream, request_id=state.get("request_id", ""))
    dep = routed.deployment
    label = metrics.model_label(dep.route, dep.provider, gw.config.settings.models)
    state.update(provider=dep.provider, deployment=dep.model, retries=routed.attempts - 1)
    headers = routed_headers(routed)
    if lookup is not None:
        headers[CACHE_HEADER] = "miss"
    result = routed.result
    if isinstance(result, Completion):
        headers.update(result.headers)
        data = result.body()
        try:
            usage = result.usage
        except UpstreamError:
            usage = None
        state["input_tokens"], state["output_tokens"] = metrics.record_usage(dep.provider, label, usage)
        await gw.limits.charge(key_id, usage)
        if gw.config.server.log_bodies:
            state["response_body"] = data
        if lookup is not None:
            await gw.response_cache.put(lookup, "json", data, dep)
        return Response(data, media_type="application/json", headers=headers)
    if not stream:
        await result.aclose()
        raise UpstreamError(f"provider {dep.provider} answered a stream to a non-streaming request")
    headers.update(SSE_HEADERS)
    headers.update(result.headers)
    started = state.get("started", time.perf_counter())
    on_done = (lambda usage: gw.limits.charge(key_id, usage)) if gw.limits.counts_tokens(key_id) else None
    frames = to_client(result, provider=dep.provider, model=label, started=started, state=state, on_done=on_done)
    if lookup is not None:
        frames = gw.response_cache.tee(frames, lookup, dep, state)
    return EventStreamResponse(frames, headers)


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")
