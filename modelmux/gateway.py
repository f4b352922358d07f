"""The running gateway: everything the app opens at start-up and closes at shutdown.

Plugins and configuration are loaded before; ``start()`` opens the pooled upstream
client, builds each configured provider, the state store and the cache, and the
router over them. A provider whose factory fails is reported (``/health`` shows it down,
``/health/ready`` stays 503: a configuration problem of this process) instead of taking the
whole server down.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from loguru import logger

from modelmux import __version__, health, metrics, tracing
from modelmux.breaker_sync import BreakerSync
from modelmux.cache import ResponseCache
from modelmux.config import Config, redact
from modelmux.embeddings import validate_embeddings
from modelmux.errors import UpstreamError
from modelmux.http import open_client
from modelmux.images import ImageFetcher
from modelmux.limits import RateLimiter
from modelmux.plugins import Plugins
from modelmux.provider import Completion, Host, Provider
from modelmux.router import Router
from modelmux.stores import StateStore
from modelmux.tools import EMBED_BATCH, Tool, ToolContext, embeddings_of


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
        self.breaker_sync: BreakerSync | None = None
        self.http: aiohttp.ClientSession | None = None
        #: Configured gateway tools: their type and each alias -> the one instance (``[tools.TYPE]``).
        self.tools: dict[str, Tool] = {}
        self.tool_errors: dict[str, str] = {}
        server = config.server
        self.images = ImageFetcher.from_settings(server.url_fetch_allow, server.images)
        self.router = Router(config, self.providers, images=self.images)
        self.response_cache = ResponseCache(
            config.settings.cache, config.settings.models, lambda: self._open_store("cache")
        )
        self.readiness = health.Readiness(config.server.ready_check_interval_seconds)
        self.tracer = tracing.setup(config.settings.tracing)
        self.api_keys: dict[str, str] = {k: key_id(k) for k in config.server.api_keys if k}

    async def start(self) -> None:
        trace_configs = [tracing.client_trace_config(self.tracer)] if self.tracer is not None else []
        self.http = open_client(trace_configs=trace_configs)
        host = Host(http=self.http, server=self.config.server, images=self.images)
        registry = self.plugins.registry
        for name, settings in self.config.providers.items():
            reg = registry.providers[settings.type]
            try:
                self.providers[name] = reg.factory(name, settings, host)
            except Exception as exc:
                self.provider_errors[name] = f"{type(exc).__name__}: {exc}"
                logger.error("provider {} ({}) could not start: {}", name, settings.type, exc)
        health.reset(self.config.providers, self.provider_errors)
        await self._start_tools(host)
        self.state = self._open_store("state")
        self.breaker_sync = self._share_breakers(self.state)
        assert self.state is not None
        self.limits = RateLimiter(self.config.server.limits, self.state, self.api_keys)

    async def _start_tools(self, host: Host) -> None:
        """One instance per ``[tools.TYPE]`` table, under its type and aliases; one that fails to start
        is reported (``/health/ready`` 503) and its type keeps the no-tool behaviour."""
        registry = self.plugins.registry
        for name, settings in self.config.tools.items():
            reg = registry.tools[name]
            try:
                tool: Tool = reg.factory(settings, host)
                await tool.start()
            except Exception as exc:
                self.tool_errors[name] = f"{type(exc).__name__}: {exc}"
                logger.error("tool {} could not start: {}", name, exc)
                continue
            for key in (name, *reg.aliases, tool.type, *tool.aliases):
                self.tools[key] = tool
            logger.info("tool {}: {}", name, redact(settings.model_dump(mode="json")))

    def unique_tools(self) -> list[Tool]:
        """Each configured tool once (``tools`` also holds it under its aliases)."""
        return list({id(t): t for t in self.tools.values()}.values())

    def tool_context(self, key_id: str | None, request_id: str) -> ToolContext:
        assert self.http is not None, "tools run only after start()"
        return ToolContext(key_id, request_id, self.http, self._embed_for(request_id))

    def _embed_for(self, request_id: str) -> Any:
        async def embed(model: str, texts: Sequence[str]) -> list[list[float]]:
            out: list[list[float]] = []
            for start in range(0, len(texts), EMBED_BATCH):
                batch = list(texts[start : start + EMBED_BATCH])
                body = {"model": model, "input": batch, "encoding_format": "float"}
                validate_embeddings(body)
                routed = await self.router.call("embeddings", body, stream=False, request_id=request_id)
                result = routed.result
                if not isinstance(result, Completion):
                    await result.aclose()
                    raise UpstreamError(f"provider {routed.deployment.provider} answered embeddings with a stream")
                out += embeddings_of(result.json(), len(batch))
            return out

        return embed

    def _share_breakers(self, store: StateStore) -> BreakerSync | None:
        """Shared circuit breakers when ``router.circuit_breaker.shared`` asks and the store can."""
        breaker = self.config.settings.router.circuit_breaker
        can = bool(getattr(store, "shared", False))
        if breaker.shared == "off" or (breaker.shared == "auto" and not can):
            return None
        if not can:
            logger.warning(
                'router.circuit_breaker.shared = "on" with the {} state store: breakers are shared only by '
                "the processes that see the same store (disk: the workers of one machine; memory: none)",
                self.config.settings.state.backend,
            )
        for model in self.config.settings.models:  # read from the start, before this replica calls them
            for dep in self.router.resolve(model):
                self.router.balancer.state(dep)
        sync = BreakerSync(self.router.balancer, store, breaker)
        sync.start()
        logger.info(
            "circuit breakers shared through the {} state store (every {:g} s)",
            self.config.settings.state.backend,
            breaker.sync_interval_seconds,
        )
        return sync

    def _open_store(self, section: str) -> Any:
        backend = getattr(self.config.settings, section).backend
        registry = self.plugins.registry.state_stores if section == "state" else self.plugins.registry.caches
        return registry[backend].factory(self.config.stores[section])

    async def aclose(self) -> None:
        for tool in self.unique_tools():
            try:
                await tool.aclose()
            except Exception as exc:
                logger.warning("tool {} did not close cleanly: {}", tool.type, exc)
        for name, provider in self.providers.items():
            try:
                await provider.aclose()
            except Exception as exc:
                logger.warning("provider {} did not close cleanly: {}", name, exc)
        if self.breaker_sync is not None:
            await self.breaker_sync.aclose()
        if self.state is not None:
            await self.state.aclose()
        await self.response_cache.aclose()
        if self.http is not None:
            await self.http.close()
        await self.images.aclose()
        metrics.process_exited()

    def process_problems(self) -> dict[str, str]:
        """What keeps this process from serving, whatever the upstreams do (``/health/ready``)."""
        problems = dict(self.provider_errors)
        problems.update({f"tools.{name}": error for name, error in self.tool_errors.items()})
        if not self.providers:
            problems["providers"] = "no provider is configured and usable"
        return problems

    def health(self, details: bool = False, state_problem: str | None = None) -> dict[str, Any]:
        """``/health``: ``details`` adds error texts (a caller with a key, or a loopback-only server)."""
        providers: dict[str, Any] = {}
        for name, settings in self.config.providers.items():
            entry = {"type": settings.type, **health.provider_state(name).to_dict(details)}
            entry["circuit"] = self.router.balancer.circuit(name)
            providers[name] = entry
        statuses = [p["status"] for p in providers.values()]
        circuits_open = any(p["circuit"] != "closed" for p in providers.values())
        state_entry: dict[str, Any] = {"status": "ok" if state_problem is None else "down"}
        if state_problem is not None:
            state_entry["error"] = state_problem if details else health.HIDDEN
        tools: dict[str, Any] = {}
        for name in self.config.tools:
            error = self.tool_errors.get(name)
            tools[name] = (
                {"status": "ok"} if error is None else {"status": "down", "error": error if details else health.HIDDEN}
            )
        status = health.overall(statuses, circuits_open, bool(self.providers) and state_problem is None)
        if self.tool_errors and status == "ok":
            status = "degraded"  # requests are served, without the tool that did not start
        out = {
            "status": status,
            "version": self.version,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "worker_pid": os.getpid(),
            "providers": providers,
            "state_store": state_entry,
            "requests": health.REQUESTS.to_dict(),
            "plugins": {i.name: {"version": i.version, "error": i.error} for i in self.plugins.infos},
            "plugin_errors": self.plugins.errors,
        }
        if tools:  # only with [tools.TYPE] tables: the answer without tools is as it was
            out["tools"] = tools
        return out
