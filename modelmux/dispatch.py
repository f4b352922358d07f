"""The ASGI surface: one table of routes, one function that turns any failure into an answer.

ModelMux serves a handful of fixed paths, so it owns its dispatch instead of borrowing a web
framework's: a request's path (less any ``root_path``) is looked up in a dict, then in the few
templated paths; the endpoint is called with the gateway, the Starlette ``Request`` and the
request's ``RequestContext``; whatever it raises becomes an OpenAI-shaped error through
``error_response``. The same function answers unknown paths (404), wrong methods (405) and the
middleware's own refusals (401, 413), so every error of the gateway has one shape and one
metric.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loguru import logger
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelmux import metrics
from modelmux.context import RequestContext, context_of
from modelmux.errors import ModelMuxError, NotFoundError, error_for_status
from modelmux.logs import scrub

if TYPE_CHECKING:
    from modelmux.gateway import Gateway

Handler = Callable[["Gateway", Request, RequestContext], Awaitable[Response]]
_PARAM = re.compile(r"\{(\w+)(:path)?\}")


@dataclass(frozen=True, slots=True)
class Route:
    """One path and its endpoint per method; ``{name}`` matches one path segment, ``{name:path}`` the rest."""

    path: str
    endpoints: dict[str, Handler]
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    @staticmethod
    def of(path: str, **endpoints: Handler) -> Route:
        """``Route.of("/v1/models", GET=list_models)``; a GET endpoint also answers HEAD."""
        pattern = None
        if "{" in path:
            parts, last = [], 0
            for m in _PARAM.finditer(path):
                parts += [re.escape(path[last : m.start()]), f"(?P<{m[1]}>{'.+' if m[2] else '[^/]+'})"]
                last = m.end()
            pattern = re.compile("".join([*parts, re.escape(path[last:])]))
        if "GET" in endpoints:
            endpoints.setdefault("HEAD", endpoints["GET"])
        return Route(path, endpoints, pattern)


def error_response(exc: BaseException, ctx: RequestContext | None = None) -> Response:
    """The answer to any failure: a ``ModelMuxError`` as its own status, anything else a 500."""
    if not isinstance(exc, ModelMuxError):
        logger.opt(exception=exc).error("unhandled error: {}", exc)
        if ctx is not None:
            ctx.fail(exc, str(exc))
        exc = ModelMuxError("The server had an error while processing your request.")
    elif ctx is not None:
        ctx.fail(exc, exc.message)
    metrics.ERRORS.labels(exc.code or exc.error_type).inc()
    return Response(
        # An upstream's error text may quote the credentials we sent it: never pass them on.
        scrub(exc.to_json().decode("utf-8", "replace")).encode(),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


Lifespan = Callable[[], AbstractAsyncContextManager["Gateway"]]


class Dispatcher:
    """The innermost ASGI app: lifespan, then one route per request."""

    def __init__(self, routes: Sequence[Route], lifespan: Lifespan) -> None:
        self.routes: list[Route] = []
        self._exact: dict[str, Route] = {}
        self._templated: list[Route] = []
        self._lifespan = lifespan
        self.gateway: Gateway | None = None
        self.add(routes)

    def add(self, routes: Sequence[Route]) -> None:
        """Serve more routes (a configured tool's, at start-up); a path served already is an error."""
        known = {r.path for r in self.routes}
        for route in routes:
            if route.path in known:
                raise ValueError(f"the path {route.path} is served twice (a tool plugin's route clashes)")
            known.add(route.path)
            self.routes.append(route)
            if route.pattern is None:
                self._exact[route.path] = route
            else:
                self._templated.append(route)
        served = sorted({r.path.split("/{", 1)[0] for r in self.routes if not r.path.startswith("/ui/")})
        self._served = ", ".join(served)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._run_lifespan(receive, send)

    def match(self, path: str) -> tuple[Route | None, dict[str, str]]:
        route = self._exact.get(path)
        if route is not None:
            return route, {}
        for route in self._templated:
            assert route.pattern is not None
            m = route.pattern.fullmatch(path)
            if m is not None:
                return route, m.groupdict()
        return None, {}

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = context_of(scope)
        path: str = scope["path"]
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        route, params = self.match(path)
        request = Request(scope, receive, send)
        try:
            if route is None:
                raise NotFoundError(f"Unknown path: {scope['method']} {path}. ModelMux serves {self._served}.")
            ctx.endpoint = route.path
            endpoint = route.endpoints.get(scope["method"])
            if endpoint is None:
                allowed = ", ".join(route.endpoints)
                raise error_for_status(
                    405,
                    f"Method {scope['method']} is not allowed on {path}. Use {allowed}.",
                    headers={"allow": allowed},
                )
            scope["path_params"] = params
            assert self.gateway is not None, "requests arrive only after the lifespan started"
            response = await endpoint(self.gateway, request, ctx)
        except Exception as exc:
            response = error_response(exc, ctx)
        await response(scope, receive, send)

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        manager = self._lifespan()
        try:
            self.gateway = await manager.__aenter__()
        except BaseException as exc:
            logger.opt(exception=exc).error("start-up failed: {}", exc)
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await manager.__aexit__(None, None, None)
        except BaseException as exc:
            logger.opt(exception=exc).error("shutdown failed: {}", exc)
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


__all__ = ["Dispatcher", "Handler", "Route", "error_response"]
