"""Model resolution, retries and fallbacks: which deployment answers a request.

A request's ``model`` is a ``[models]`` name, or ``PROVIDER/UPSTREAM_MODEL``, or,
with ``router.default_provider``, any other name passed through unchanged.
Retryable failures (connection, timeout, 429, 5xx) are retried with exponential
backoff and full jitter, then the model's ``fallbacks`` are tried in order.
Nothing is retried once a stream has been handed to the client.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger

from modelmux import metrics
from modelmux.config import Config
from modelmux.errors import InvalidRequestError, ModelMuxError, ModelNotFoundError
from modelmux.provider import Completion, EventStream, Provider, UpstreamRequest

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0

Endpoint = Literal["chat", "responses"]


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    model: str
    #: The configured model name this deployment serves (for labels and fallbacks).
    route: str


@dataclass(slots=True)
class Routed:
    deployment: Deployment
    result: Completion | EventStream
    attempts: int
    #: Which provider method answered: "chat" or "responses" (see ``BodyFor``).
    endpoint: Endpoint = "chat"


#: Picks, per deployment tried, the provider method and the body to send it. The Responses
#: route uses it to forward natively to a provider with ``native_responses`` and to
#: translate to chat for the others, within one chain of retries and fallbacks.
BodyFor = Callable[[Provider, Deployment], tuple[Endpoint, dict[str, Any]]]


class Router:
    def __init__(self, config: Config, providers: dict[str, Provider]) -> None:
        self.config = config
        self.providers = providers
        self._models = config.settings.models
        self._default = config.settings.router.default_provider

    def model_names(self) -> list[str]:
        return sorted(self._models)

    def resolve(self, name: str) -> list[Deployment]:
        """The deployments to try for ``name``, in order: its own, then its fallbacks'."""
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("model: required, a model name (see GET /v1/models)", param="model")
        chain: list[Deployment] = []
        model = self._models.get(name)
        if model is not None:
            seen = {name}
            chain.append(Deployment(model.provider, model.model, name))
            for fb in model.fallbacks:
                if fb in seen:
                    continue
                seen.add(fb)
                m = self._models[fb]
                chain.append(Deployment(m.provider, m.model, fb))
            return chain
        provider, sep, upstream = name.partition("/")
        if sep and upstream and provider in self.providers:
            return [Deployment(provider, upstream, name)]
        if self._default is not None:
            return [Deployment(self._default, name, name)]
        available = ", ".join(self.model_names()) or "(none)"
        prefixes = ", ".join(f"{p}/MODEL" for p in sorted(self.providers))
        raise ModelNotFoundError(
            f"The model '{name}' does not exist. Available models: {available}; "
            f"or name a provider's model directly: {prefixes}.",
            param="model",
        )

    async def call(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        *,
        stream: bool,
        request_id: str = "",
        body_for: BodyFor | None = None,
    ) -> Routed:
        chain = self.resolve(str(body.get("model") or ""))
        last: ModelMuxError | None = None
        attempts = 0
        for index, dep in enumerate(chain):
            if index > 0:
                metrics.FALLBACKS.labels(chain[index - 1].route, dep.route).inc()
                logger.warning("falling back from {} to {}: {}", chain[index - 1].route, dep.route, last)
            provider = self.providers[dep.provider]
            use, use_body = body_for(provider, dep) if body_for is not None else (endpoint, body)
            call = provider.chat if use == "chat" else provider.responses
            request = UpstreamRequest(use_body, dep.model, str(body["model"]), stream, request_id)
            try:
                result, n = await self._attempts(provider, dep, call, request)
                attempts += n
                return Routed(dep, result, attempts, use)
            except ModelMuxError as exc:
                if not exc.retryable:
                    raise
                last = exc
                attempts += provider.settings.max_retries + 1
        assert last is not None
        raise last

    async def _attempts(
        self,
        provider: Provider,
        dep: Deployment,
        call: Callable[[UpstreamRequest], Awaitable[Completion | EventStream]],
        request: UpstreamRequest,
    ) -> tuple[Completion | EventStream, int]:
        max_retries = provider.settings.max_retries
        deadline = time.monotonic() + provider.settings.timeout_seconds
        attempt = 0
        while True:
            attempt += 1
            metrics.INFLIGHT.labels(dep.provider).inc()
            try:
                result = await call(request)
            except ModelMuxError as exc:
                metrics.upstream_attempt(
                    dep.provider,
                    metrics.model_label(dep.route, dep.provider, self._models),
                    exc.status_code,
                    exc.message,
                )
                if not exc.retryable or attempt > max_retries:
                    raise
                delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
                hinted = getattr(exc, "retry_after", None)
                if isinstance(hinted, (int, float)):
                    delay = max(delay, float(hinted))
                if time.monotonic() + delay > deadline:
                    raise
                metrics.UPSTREAM_RETRIES.labels(dep.provider, exc.code or type(exc).__name__).inc()
                logger.info("retrying {} in {:.2f}s after: {}", dep.provider, delay, exc.message)
                await asyncio.sleep(delay)
                continue
            finally:
                metrics.INFLIGHT.labels(dep.provider).dec()
            metrics.upstream_attempt(dep.provider, metrics.model_label(dep.route, dep.provider, self._models), 200)
            return result, attempt
