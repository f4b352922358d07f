"""Health probes and Prometheus metrics (open even when client keys are required)."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from modelmux import metrics
from modelmux.context import RequestContext
from modelmux.gateway import Gateway
from modelmux.pipeline import json_response


async def health(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    return json_response(gw.health())


async def live(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    return json_response({"status": "ok"})


async def ready(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """503 until every configured provider started and answers its readiness probe
    (cached for ``server.ready_check_interval_seconds``) and the state store answers."""
    problems = dict(gw.provider_errors)
    if not gw.providers:
        problems["providers"] = "no provider is configured and usable"
    problems.update(await gw.readiness.check(gw.providers, gw.state))
    if problems:
        return json_response({"status": "not_ready", "problems": problems}, status_code=503)
    return json_response({"status": "ready"})


async def metrics_endpoint(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    # Multiprocess mode reads every worker's files: off the event loop.
    body = await asyncio.to_thread(metrics.render) if metrics.multiprocess_dir() else metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
