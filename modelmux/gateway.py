"""The running gateway: everything the app opens at start-up and closes at shutdown.

Plugins and configuration are loaded before; ``start()`` opens the pooled upstream
client, builds each configured provider, the state store and the cache, and the
router over them. A provider whose factory fails is reported (``/health``,
``/health/ready`` stays 503) instead of taking the whole server down.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import aiohttp
from loguru import logger

from modelmux import __version__
from modelmux.config import Config, store_options
from modelmux.http import open_client
from modelmux.images import ImageFetcher
from modelmux.plugins import Plugins
from modelmux.provider import Host, Provider
from modelmux.router import Router
from modelmux.stores import Cache, StateStore


def key_id(key: str) -> str:
    """A stable, non-secret name for a client API key (for logs, ownership, limits)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Gateway:
    def __init__(self, config: Config, plugins: Plugins) -> None:
        self.config = config
        self.plugins = plugins
        self.version = __version__
        self.started_at = time.time()
        self.providers: dict[str, Provider] = {}
        self.provider_errors: dict[str, str] = {}
        self.state: StateStore | None = None
        self.cache: Cache | None = None
        self.http: aiohttp.ClientSession | None = None
        self.router = Router(config, self.providers)
        self.api_keys: dict[str, str] = {k: key_id(k) for k in config.server.api_keys if k}

    async def start(self) -> None:
        self.http = open_client()
        self.images = ImageFetcher(self.config.server.url_fetch_allow)
        host = Host(http=self.http, server=self.config.server, images=self.images)
        registry = self.plugins.registry
        for name, settings in self.config.providers.items():
            reg = registry.providers[settings.type]
            try:
                self.providers[name] = reg.factory(name, settings, host)
            except Exception as exc:
                self.provider_errors[name] = f"{type(exc).__name__}: {exc}"
                logger.error("provider {} ({}) could not start: {}", name, settings.type, exc)
        self.state = self._open_store("state")
        if self.config.settings.cache.enabled:
            self.cache = self._open_store("cache")

    def _open_store(self, section: str) -> Any:
        table = getattr(self.config.settings, section)
        registry = self.plugins.registry.state_stores if section == "state" else self.plugins.registry.caches
        reg = registry[table.backend]
        settings = reg.settings_model.model_validate(store_options(self.config.settings, section))
        return reg.factory(settings)

    async def aclose(self) -> None:
        for name, provider in self.providers.items():
            try:
                await provider.aclose()
            except Exception as exc:
                logger.warning("provider {} did not close cleanly: {}", name, exc)
        for store in (self.state, self.cache):
            if store is not None:
                await store.aclose()
        if self.http is not None:
            await self.http.close()
            await self.images.aclose()

    @property
    def ready(self) -> bool:
        return bool(self.providers) and not self.provider_errors

    def health(self) -> dict[str, Any]:
        providers: dict[str, Any] = {}
        for name, settings in self.config.providers.items():
            err = self.provider_errors.get(name)
            providers[name] = {
                "type": settings.type,
                "status": "error" if err else "ok",
                "error": err,
            }
        return {
            "status": "ok" if self.ready else "degraded",
            "version": self.version,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "providers": providers,
            "plugins": {i.name: {"version": i.version, "error": i.error} for i in self.plugins.infos},
            "plugin_errors": self.plugins.errors,
        }
