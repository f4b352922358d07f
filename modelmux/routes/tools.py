"""The HTTP endpoints of configured gateway tools (``Tool.routes()``: e.g. file search's Files and
Vector stores APIs), added to the route table once the gateway has made its tools.

They pass the same middleware as every ``/v1`` path (client keys, ``server.max_request_bytes``,
request id, log line, metrics) and the same ``error_response``; the endpoint gets the request and
a ``ToolContext`` whose ``key_id`` is the client key's (the owner, for per-key isolation).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelmux.context import RequestContext
from modelmux.dispatch import Handler, Route
from modelmux.gateway import Gateway
from modelmux.tools import ToolEndpoint


def _handler(endpoint: ToolEndpoint) -> Handler:
    async def handle(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
        return await endpoint(request, gw.tool_context(ctx.key_id, ctx.request_id))

    return handle


def tool_routes(gw: Gateway) -> list[Route]:
    """The routes of every configured tool, in configuration order."""
    out: list[Route] = []
    for tool in gw.unique_tools():
        for route in tool.routes():
            methods = {method.upper(): _handler(fn) for method, fn in route.endpoints.items()}
            out.append(Route.of(route.path, **methods))
    return out
