"""Health probes and Prometheus metrics (open even when client keys are required)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from modelmux import metrics
from modelmux.routes.common import gateway, json_response

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> Response:
    return json_response(gateway(request).health())


@router.get("/health/live")
async def live() -> Response:
    return json_response({"status": "ok"})


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    """503 until every configured provider started and answers its readiness probe
    (cached for ``server.ready_check_interval_seconds``) and the state store answers."""
    gw = gateway(request)
    problems = dict(gw.provider_errors)
    if not gw.providers:
        problems["providers"] = "no provider is configured and usable"
    problems.update(await gw.readiness.check(gw.providers, gw.state))
    if problems:
        return json_response({"status": "not_ready", "problems": problems}, status_code=503)
    return json_response({"status": "ready"})


@router.get("/metrics")
async def metrics_endpoint() -> Response:
    # Multiprocess mode reads every worker's files: off the event loop.
    body = await asyncio.to_thread(metrics.render) if metrics.multiprocess_dir() else metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
