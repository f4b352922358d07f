"""Health probes and Prometheus metrics (open even when client keys are required).

``/health/live``: the process answers. ``/health/ready``: this process can serve (providers made,
state store answering; upstream probes only if ``server.ready_requires_providers`` says so).
``/health``: the whole picture, upstreams included; error texts only for a caller with a key.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from modelmux import metrics
from modelmux.context import RequestContext
from modelmux.gateway import Gateway
from modelmux.health import HIDDEN
from modelmux.middleware import client_key
from modelmux.pipeline import json_response


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def may_see_details(request: Request, gw: Gateway) -> bool:
    """Error texts (an upstream's error body may quote headers or credentials back) are shown to a
    caller with a client or admin key; with no key configured at all, only on a loopback server."""
    server = gw.config.server
    keys = [k for k in (*server.api_keys, *getattr(server, "admin_api_keys", ())) if k]
    if not keys:
        return _loopback(server.host)
    sent = client_key(dict(request.scope["headers"]))
    if sent is None:
        return False
    return any(hmac.compare_digest(k.encode(), sent.encode()) for k in keys)


async def health(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    # Both cached for server.ready_check_interval_seconds: upstream reachability shows here.
    await gw.readiness.check_providers(gw.providers)
    state_problem = await gw.readiness.check_state(gw.state)
    return json_response(gw.health(may_see_details(request, gw), state_problem))


async def live(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    return json_response({"status": "ok"})


async def ready(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """503 while this process cannot serve: a provider could not be made, none is configured, or
    the state store does not answer; and, as ``server.ready_requires_providers`` asks, while no
    provider (``any``) or not every provider (``all``) passes its readiness probe (cached)."""
    problems = gw.process_problems()
    state_problem = await gw.readiness.check_state(gw.state)
    if state_problem is not None:
        problems["state"] = state_problem
    need = gw.config.server.ready_requires_providers
    if need != "none" and gw.providers:
        failing = await gw.readiness.check_providers(gw.providers)
        if need == "all":
            problems.update(failing)
        elif len(failing) == len(gw.providers):
            problems["providers"] = "no provider passes its readiness probe: " + "; ".join(failing.values())
    if problems:
        if not may_see_details(request, gw):
            problems = dict.fromkeys(problems, HIDDEN)
        return json_response({"status": "not_ready", "problems": problems}, status_code=503)
    return json_response({"status": "ready"})


async def metrics_endpoint(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    # Multiprocess mode reads every worker's files: off the event loop.
    body = await asyncio.to_thread(metrics.render) if metrics.multiprocess_dir() else metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
