"""The web UI's routes: the page, its static files, and the read-only data endpoints under ``/ui/api/``.

Every data answer is built from what the gateway already has (``/health``'s provider state, the
configured models, the merged configuration, this process's metrics and recent requests), goes
through the log scrubber once more, and never holds a request or response body.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelmux.config import shown, source_of
from modelmux.context import RequestContext
from modelmux.dispatch import Handler, Route
from modelmux.errors import InvalidRequestError, NotFoundError
from modelmux.gateway import Gateway
from modelmux.logs import scrub
from modelmux.recent import matching
from modelmux.ui.access import API_HEADERS, SECURITY_HEADERS
from modelmux.ui.console import Console

#: The files of ``modelmux/ui/static`` the page loads, and their media types.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000
UIEndpoint = Callable[[Console, Gateway, Request], Awaitable[Response]]
STATUS_FILTER = re.compile(r"^([1-5][0-9][0-9]|[1-5]xx|error)$", re.IGNORECASE)
#: A store that does not answer this fast is shown as not answering (the overview must not hang).
STORE_PING_TIMEOUT = 2.0


@cache
def _files() -> dict[str, bytes]:
    """The UI's files, read once (about 40 KB). Only these names are served, and a request for any
    other name caches nothing (a cache keyed by what clients ask for would grow without bound)."""
    folder = resources.files("modelmux.ui").joinpath("static")
    return {
        f.name: f.read_bytes()
        for f in folder.iterdir()
        if f.is_file() and not f.name.startswith(".") and f.name.endswith(tuple(MEDIA_TYPES))
    }


def _static(name: str) -> bytes | None:
    return _files().get(name)


def _data(payload: Any) -> Response:
    # Scrubbed once more as a whole: no known secret value leaves through the UI, whatever the field.
    body = scrub(orjson.dumps(payload).decode()).encode()
    return Response(body, media_type="application/json", headers=API_HEADERS)


def routes(ui: Console) -> list[Route]:
    """The UI's paths, bound to its state (``app.create_app`` adds them to the route table)."""

    def admin(endpoint: UIEndpoint) -> Handler:
        async def checked(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
            ui.access.check(request)
            return await endpoint(ui, gw, request)

        return checked

    async def page_(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
        return await page(ui, gw, request)

    async def static_(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
        return static_file(request.path_params["name"])

    return [
        Route.of("/ui", GET=page_),
        Route.of("/ui/static/{name}", GET=static_),
        Route.of("/ui/api/session", GET=admin(session)),
        Route.of("/ui/api/overview", GET=admin(overview)),
        Route.of("/ui/api/traffic", GET=admin(traffic)),
        Route.of("/ui/api/requests", GET=admin(recent_requests)),
        Route.of("/ui/api/config", GET=admin(effective_config)),
    ]


async def page(ui: Console, gw: Gateway, request: Request) -> Response:
    if ui.access.mode == "off":
        return Response(_off_page(ui.access.off_message()), 403, headers=SECURITY_HEADERS, media_type="text/html")
    if ui.access.mode == "disabled":
        ui.access.check(request)  # raises: 404 naming server.ui.enabled
    body = _static("index.html")
    assert body is not None, "modelmux/ui/static/index.html is missing from the package"
    return Response(body, media_type=MEDIA_TYPES[".html"], headers={**SECURITY_HEADERS, "cache-control": "no-cache"})


def _off_page(message: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ModelMux: web UI is off</title>'
        '<link rel="stylesheet" href="ui/static/style.css"></head><body><main class="off">'
        f"<h1>The web UI is off</h1><p>{html.escape(message)}</p></main></body></html>"
    )


def static_file(name: str) -> Response:
    body = _static(name)
    if body is None:
        raise NotFoundError(f"No such file of the web UI: {name}.")
    media_type = MEDIA_TYPES["." + name.rsplit(".", 1)[-1]]
    return Response(body, media_type=media_type, headers={**SECURITY_HEADERS, "cache-control": "no-cache"})


async def session(ui: Console, gw: Gateway, request: Request) -> Response:
    """Whether the key is good (the page's sign-in), and what the page needs to know up front."""
    server = gw.config.server
    return _data(
        {
            "signed_in_as": ui.access.check(request),
            "auth": ui.access.mode,
            "version": gw.version,
            "client_keys_required": bool(server.api_keys),
            "playground_admin_key": server.ui.playground_admin_key and ui.access.mode == "admin_key",
            "models": sorted(gw.config.settings.models),
            "refresh_seconds": min(server.ui.stats_interval_seconds, 10.0),
        }
    )


async def overview(ui: Console, gw: Gateway, request: Request) -> Response:
    state_status, cache_status = await asyncio.gather(_state_status(gw), _cache_status(gw))
    # The admin sees /health with details (error texts), as a caller with a key does.
    health = gw.health(True, state_status["error"])
    models = [
        {
            "name": name,
            "strategy": model.strategy,
            "fallbacks": model.fallbacks,
            "cache": gw.response_cache.wanted(name, None),
            "deployments": [{**d.model_dump(), **_deployment_state(gw, d.provider, d.model)} for d in model.targets()],
        }
        for name, model in sorted(gw.config.settings.models.items())
    ]
    return _data(
        {
            "health": {k: v for k, v in health.items() if k not in ("providers", "plugins")},
            "providers": health.get("providers", {}),
            "models": models,
            "default_provider": gw.config.settings.router.default_provider,
            "stores": {"state": state_status, "cache": cache_status},
            "plugins": health.get("plugins", {}),
            "traffic": ui.traffic.report(),
        }
    )


def _deployment_state(gw: Gateway, provider: str, model: str) -> dict[str, Any]:
    """The balancer's view of one deployment: its breaker, requests in flight, a 429 cool-down."""
    balancer = gw.router.balancer
    state = balancer.states().get((provider, model))
    if state is None:  # not asked yet
        return {"circuit": "closed", "inflight": 0, "failures": 0, "cooling_down_seconds": 0.0}
    now = balancer.clock()
    return {
        "circuit": state.circuit(now),
        "inflight": state.inflight,
        "failures": state.failures,
        "cooling_down_seconds": round(max(0.0, state.ready_at() - now), 1),
    }


async def _ping(store: Any) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(store.ping(), STORE_PING_TIMEOUT)
        return "ok", None
    except TimeoutError:
        return "down", f"no answer within {STORE_PING_TIMEOUT:.0f} s"
    except Exception as exc:
        return "down", f"{type(exc).__name__}: {exc}"


async def _state_status(gw: Gateway) -> dict[str, Any]:
    settings = gw.config.settings.state
    out: dict[str, Any] = {"backend": settings.backend, "ttl_seconds": settings.ttl_seconds}
    if gw.state is None:
        out.update(status="down", error="not opened")
    else:
        out["status"], out["error"] = await _ping(gw.state)
    return out


async def _cache_status(gw: Gateway) -> dict[str, Any]:
    settings = gw.config.settings.cache
    cache = gw.response_cache
    out: dict[str, Any] = {"backend": settings.backend, "enabled": settings.enabled}
    out["ttl_seconds"] = settings.ttl_seconds
    if not cache.maybe_enabled:
        # Opened on first use only (docs/caching.md): not opened here just to be looked at.
        out.update(status="unused", error=None)
        return out
    try:
        backend = await cache.backend()
    except Exception as exc:
        out.update(status="down", error=f"{type(exc).__name__}: {exc}")
        return out
    out["status"], out["error"] = await _ping(backend)
    return out


async def traffic(ui: Console, gw: Gateway, request: Request) -> Response:
    return _data(ui.traffic.report())


async def recent_requests(ui: Console, gw: Gateway, request: Request) -> Response:
    query = request.query_params
    model, status, key_id = query.get("model"), query.get("status"), query.get("key_id")
    limit = _limit(query.get("limit"))
    if status and not STATUS_FILTER.match(status.strip()):
        raise InvalidRequestError(
            f"Invalid status filter {status!r}: use a status code (429), a class (4xx, 5xx) or 'error'.",
            param="status",
            headers=API_HEADERS,
        )
    records = ui.recent.records()
    found = matching(records, model=model or None, status=status or None, key_id=key_id or None)
    return _data(
        {
            "capacity": ui.recent.size,
            "total": len(records),
            "matched": len(found),
            "records": found[:limit],
            "models": sorted({str(r["model"]) for r in records if r.get("model")}),
            "key_ids": sorted({str(r["key_id"]) for r in records if r.get("key_id")}),
        }
    )


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequestError(
            f"Invalid limit {raw[:20]!r}: use a whole number from 1 to {MAX_LIMIT}.", param="limit", headers=API_HEADERS
        )
    return int(raw)


async def effective_config(ui: Console, gw: Gateway, request: Request) -> Response:
    config = gw.config
    rows = []
    for key, value in _flatten(shown(config), ""):
        origin = source_of(config, key)
        # source: file, env, implicit or default; origin names the file or the variable.
        rows.append({"key": key, "value": value, "source": origin.split(" ", 1)[0], "origin": origin})
    return _data({"path": str(config.path) if config.path else None, "settings": rows})


def _flatten(node: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(node, dict) and node:
        out: list[tuple[str, Any]] = []
        for key, value in node.items():
            out.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, node)]
