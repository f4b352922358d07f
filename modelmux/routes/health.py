"""Health probes and Prometheus metrics (open even when client keys are required)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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
    gw = gateway(request)
    problems = {name: err for name, err in gw.provider_errors.items()}
    if not gw.providers:
        problems["providers"] = "no provider is configured and usable"
    try:
        if gw.state is not None:
            await gw.state.ping()
    except Exception as exc:
        problems["state"] = f"state store does not answer: {exc}"
    if problems:
        return json_response({"status": "not_ready", "problems": problems}, status_code=503)
    return json_response({"status": "ready"})


@router.get("/metrics")
async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
