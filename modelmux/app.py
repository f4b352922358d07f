"""The ASGI application: FastAPI routes behind one pure-ASGI middleware.

Read top-down: ``create_app`` wires the routes (``modelmux.routes``), the error
handlers that make every failure an OpenAI-shaped error, and the lifespan that
opens and closes the ``Gateway`` (providers, stores, the pooled upstream client).
Requests then go route -> ``Router`` -> ``Provider`` -> translation.
"""

from __future__ import annotations

import gc
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from loguru import logger
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from modelmux import __version__, metrics, tracing
from modelmux.config import SECRET_KEYS, Config, load_config, redact
from modelmux.disconnect import CancelOnDisconnect
from modelmux.errors import InvalidRequestError, ModelMuxError, error_for_status
from modelmux.gateway import Gateway, key_id
from modelmux.logs import add_secrets, scrub, setup_logging
from modelmux.middleware import GatewayMiddleware
from modelmux.plugins import Plugins, load_plugins
from modelmux.routes import chat, health, models, responses
from modelmux.routes.common import HotRoutes

ROUTERS = (chat.router, responses.router, models.router, health.router)


def error_response(exc: ModelMuxError) -> Response:
    metrics.ERRORS.labels(exc.code or exc.error_type).inc()
    return Response(
        # An upstream's error text may quote the credentials we sent it: never pass them on.
        scrub(exc.to_json().decode("utf-8", "replace")).encode(),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


def _note_error(request: Request, exc: Exception, message: str) -> None:
    """The cause, for the request's log line (written by the middleware at its end)."""
    state = request.scope.get("state")
    if isinstance(state, dict):
        state["error"] = f"{type(exc).__name__}: {message}"


async def _modelmux_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelMuxError)
    _note_error(request, exc, exc.message)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        msg = (
            f"Unknown path: {request.method} {request.url.path}. ModelMux serves /v1/chat/completions, "
            "/v1/responses, /v1/models, /health and /metrics."
        )
    elif exc.status_code == 405:
        msg = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        msg = str(exc.detail)
    _note_error(request, exc, msg)
    return error_response(error_for_status(exc.status_code, msg, headers=dict(exc.headers or {})))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    param = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
    error = InvalidRequestError(f"Invalid value for '{param}': {first['msg']}", param=param or None)
    _note_error(request, error, error.message)
    return error_response(error)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.opt(exception=exc).error("unhandled error: {}", exc)
    _note_error(request, exc, str(exc))
    return error_response(ModelMuxError("The server had an error while processing your request."))


#: Net container allocations between two young-generation collections (CPython's default: 700).
GC_GEN0_THRESHOLD = 7000


def _no_native_telemetry() -> dict[str, Any]:
    """Newer FastAPI makes its own OpenTelemetry spans whenever a tracer provider exists:
    turn that off, the middleware makes the one span per request (``[tracing]``)."""
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the request path of a server process (docs/performance.md).

    Everything made at start-up (modules, routes, settings: ~10^5 objects) lives as long as
    the process; frozen, full collections no longer walk it. A request's objects are freed
    by reference counting, but with 32 requests in flight the default gen-0 threshold (700
    net allocations) fired every few requests and promoted live request objects, which
    led to full collections: together more CPU per request than the Claude translation.
    """
    gc.freeze()  # no gc.collect() first: it costs ~40 ms of start-up and finds ~100 objects
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def create_app(config: Config, plugins: Plugins) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = Gateway(config, plugins)
        await gw.start()
        app.state.gateway = gw
        _startup_log(gw)
        try:
            yield
        finally:
            await gw.aclose()

    app = FastAPI(
        title="ModelMux",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        **_no_native_telemetry(),
    )
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(ModelMuxError, _modelmux_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    api_keys = {k: key_id(k) for k in config.server.api_keys if k}
    register_secrets(config)
    return GatewayMiddleware(
        CancelOnDisconnect(HotRoutes(app, ROUTERS)),
        api_keys=api_keys,
        max_request_bytes=config.server.max_request_bytes,
        log_bodies=config.server.log_bodies,
        tracer=tracing.setup(config.settings.tracing),
    )


def register_secrets(config: Config) -> None:
    """Client keys, provider and store secrets: scrubbed from every log line and error answer."""
    add_secrets(config.server.api_keys)
    add_secrets(list(_secret_values([*config.providers.values(), *config.stores.values()])))


def _startup_log(gw: Gateway) -> None:
    cfg = gw.config
    if cfg.path is None:
        logger.info("no configuration file found; serving the echo provider only (model 'echo')")
    else:
        logger.info("configuration: {}", cfg.path)
    for name, settings in cfg.providers.items():
        logger.info("provider {}: {}", name, redact(settings.model_dump()))
    logger.info("models: {}", ", ".join(sorted(cfg.settings.models)) or "(none)")
    for name, err in gw.plugins.errors.items():
        logger.error("plugin {} is not loaded: {}", name, err)
    if not cfg.server.api_keys and cfg.server.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "server.api_keys is empty and the server listens on {}: anyone who reaches it can use it",
            cfg.server.host,
        )


def _secret_values(node: Any, key: str = "") -> Iterator[str]:
    """Every secret-looking value in settings (API keys, passwords, auth headers), for log scrubbing."""
    if isinstance(node, BaseModel):
        node = node.model_dump()
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _secret_values(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _secret_values(v, key)
    elif node and SECRET_KEYS.search(key):
        yield str(node.get_secret_value() if hasattr(node, "get_secret_value") else node)
    elif isinstance(node, str) and "://" in node and "@" in node:
        password = urlsplit(node).password
        if password:
            yield password


def create_app_from_env() -> ASGIApp:
    """The uvicorn factory (``modelmux serve``): configuration from ``MODELMUX_CONFIG_FILE`` and env."""
    plugins = load_plugins()
    config = load_config(os.environ.get("MODELMUX_CONFIG_FILE") or None, plugins.registry)
    setup_logging(config.server.log_level, config.server.log_format)
    app = create_app(config, plugins)
    _tune_gc()
    return app
