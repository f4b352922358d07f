"""The ASGI application: ModelMux's route table behind one pure-ASGI middleware.

Read top-down: ``create_app`` wraps the ``Dispatcher`` (``dispatch.py``, serving
``routes.ROUTES``) in the disconnect watch and the middleware, and gives it the lifespan that
opens and closes the ``Gateway`` (providers, stores, the pooled upstream client). Requests then
go route -> ``pipeline`` -> ``Router`` -> ``Provider`` -> translation.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from loguru import logger
from pydantic import BaseModel
from starlette.types import ASGIApp

from modelmux import slow_clients, tracing, ui
from modelmux.config import SECRET_KEYS, SECRET_TABLES, Config, load_config, redact
from modelmux.disconnect import CancelOnDisconnect
from modelmux.dispatch import Dispatcher
from modelmux.gateway import Gateway, key_id
from modelmux.logs import add_secrets, hold_secrets, setup_logging
from modelmux.middleware import GatewayMiddleware
from modelmux.plugins import Plugins, load_plugins
from modelmux.routes import ROUTES
from modelmux.routes.tools import tool_routes

#: Net container allocations between two young-generation collections (CPython's default: 700).
GC_GEN0_THRESHOLD = 7000


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the request path of a server process (docs/performance.md).

    Everything made at start-up (modules, routes, settings) lives as long as the process;
    frozen, full collections no longer walk it. A request's objects are freed by reference
    counting, but with many requests in flight the default gen-0 threshold fired every few
    requests and promoted live request objects, which led to full collections (the figures:
    docs/performance.md, "Profile").
    """
    gc.freeze()  # no gc.collect() first: it costs start-up time and finds next to nothing (docs/performance.md)
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def create_app(config: Config, plugins: Plugins) -> ASGIApp:
    @asynccontextmanager
    async def lifespan() -> AsyncIterator[Gateway]:
        gw = Gateway(config, plugins)
        await gw.start()
        try:
            dispatcher.add(tool_routes(gw))  # a tool's routes exist once the tool is made
        except BaseException:
            await gw.aclose()
            raise
        _startup_log(gw)
        console.start()
        try:
            yield gw
        finally:
            await console.stop()
            await gw.aclose()
        release_secrets()  # after a clean shut-down only: an error's traceback is still scrubbed

    release_secrets = hold_secrets(config_secrets(config))
    api_keys = {k: key_id(k) for k in config.server.api_keys if k}
    console = ui.Console(config.server)
    if api_keys and config.server.ui.playground_admin_key:
        api_keys.update({k: key_id(k) for k in console.access.keys})  # docs/ui.md, "Playground"
    dispatcher = Dispatcher([*ROUTES, *ui.routes(console)], lifespan)
    return GatewayMiddleware(
        CancelOnDisconnect(dispatcher),
        api_keys=api_keys,
        max_request_bytes=config.server.max_request_bytes,
        log_bodies=config.server.log_bodies,
        tracer=tracing.setup(config.settings.tracing),
        recent=console.recent if console.enabled and console.recent.size else None,
    )


def config_secrets(config: Config) -> list[str]:
    """Client keys, provider, store and tool secrets: scrubbed from every log line and error answer
    (while the app that serves ``config`` runs)."""
    return [
        *config.server.api_keys,
        *config.server.admin_api_keys,
        *_secret_values([*config.providers.values(), *config.stores.values(), *config.tools.values()]),
    ]


def register_secrets(config: Config) -> None:
    """``config_secrets`` scrubbed for the rest of the process (a CLI command that calls upstreams)."""
    add_secrets(config_secrets(config))


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
        if SECRET_TABLES.search(key):
            for value in node.values():
                yield from _header_secrets(value)
            return
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


def _header_secrets(value: Any) -> Iterator[str]:
    """A header value, and the credential in ``Scheme CREDENTIAL`` (an upstream may quote either)."""
    if not isinstance(value, str) or not value:
        return
    yield value
    scheme, _, credential = value.partition(" ")
    if credential.strip() and len(credential.strip()) >= 8 and scheme.isalpha():
        yield credential.strip()


def create_app_from_env() -> ASGIApp:
    """The uvicorn factory (``modelmux serve``): configuration from ``MODELMUX_CONFIG_FILE`` and env."""
    plugins = load_plugins()
    config = load_config(os.environ.get("MODELMUX_CONFIG_FILE") or None, plugins.registry)
    # In a worker of `serve --workers N`: its lines carry its pid.
    setup_logging(config.server.log_level, config.server.log_format, config.server.workers)
    app = create_app(config, plugins)
    # each worker's connections (modelmux serve runs uvicorn with slow_clients' protocol)
    slow_clients.configure(config.server.header_timeout_seconds, config.server.body_timeout_seconds)
    _tune_gc()
    return app
