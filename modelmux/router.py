"""Model resolution, balancing, retries, timeouts and fallbacks: which deployment answers.

A request's ``model`` is a ``[models]`` name, or ``PROVIDER/UPSTREAM_MODEL``, or,
with ``router.default_provider``, any other name passed through unchanged.

For one request the router walks the model, then its ``fallbacks`` in order. Within a
model it tries the strategy's pick first, then the model's other usable deployments;
a deployment is tried again (exponential backoff, full jitter, at least the upstream's
``retry-after``) only after every usable deployment of the model had its turn, and at
most ``max_retries`` times (its provider's setting). Only retryable failures move on
(connection, timeout, 429, 5xx); credentials or a token refused move on to the other
deployments and fallbacks without retrying the same one; a 400 about the request goes
straight to the client. Everything before the answer starts is bounded by
``router.deadline_seconds``.

Which deployments a request may try is the balancer's ``order_chain()`` over the whole chain:
open breakers and 429 cool-downs are skipped, but never the request's last way to an
answer (``balancing.py``). A 429 with ``retry-after`` cools only that deployment down, and
only when the request had another way.

A stream counts as started once its first upstream item arrived (``prime``): a stream
that fails before that is retried like any failure; after it, never.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from loguru import logger

from modelmux import health, metrics
from modelmux.balancing import Balancer, ChainOrder, Deployment, DeploymentHealth, Outcome
from modelmux.config import Config, Strategy
from modelmux.errors import (
    InvalidRequestError,
    ModelMuxError,
    ModelNotFoundError,
    RateLimitError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from modelmux.images import ImageFetcher, RequestImages
from modelmux.provider import NO_OPTIONS, Completion, EventStream, Provider, UpstreamRequest
from modelmux.schemas import check_model_name
from modelmux.timeouts import StreamGuard

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0

Api = Literal["chat", "responses", "embeddings"]

__all__ = ["Api", "BodyFor", "Deployment", "Routed", "Router"]


@dataclass(slots=True)
class Routed:
    deployment: Deployment
    result: Completion | EventStream
    attempts: int
    #: Which provider method answered: "chat" or "responses" (see ``BodyFor``).
    api: Api = "chat"


#: Picks, per deployment tried, the provider method and the body to send it. The Responses
#: route uses it to forward natively to a provider with ``native_responses`` and to
#: translate to chat for the others, within one chain of retries and fallbacks.
BodyFor = Callable[[Provider, Deployment], tuple[Api, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ModelGroup:
    """One model of the chain: its deployments and how to balance them."""

    route: str
    deployments: list[Deployment]
    strategy: Strategy = "weighted_round_robin"


@dataclass(slots=True)
class _Tries:
    """What one model's attempts learnt so far."""

    count: dict[Deployment, int] = field(default_factory=dict)
    hint: dict[Deployment, float] = field(default_factory=dict)
    total: int = 0
    last: ModelMuxError | None = None


class Router:
    def __init__(self, config: Config, providers: dict[str, Provider], images: ImageFetcher | None = None) -> None:
        self.config = config
        self.providers = providers
        self.images = images
        self._models = config.settings.models
        self._router = config.settings.router
        self._default = self._router.default_provider
        self._options = {name: m.options for name, m in self._models.items() if m.options}
        #: The chain of each configured model, made at its first request: ``chain()`` runs on every
        #: request, and making it builds a settings model and a ``Deployment`` per deployment.
        self._chains: dict[str, list[ModelGroup]] = {}
        self.balancer = Balancer(self._router.circuit_breaker, health.set_circuit)
        health.DOWN_AFTER = self._router.circuit_breaker.failures
        for name in config.settings.providers:
            health.set_circuit(name, "closed")

    def model_names(self) -> list[str]:
        return sorted(self._models)

    def _group(self, name: str) -> ModelGroup:
        m = self._models[name]
        deps = [Deployment(d.provider, d.model, name, d.weight) for d in m.targets()]
        return ModelGroup(name, deps, m.strategy)

    def _configured_chain(self, name: str) -> list[ModelGroup]:
        chain = [self._group(name)]
        seen = {name}
        for fb in self._models[name].fallbacks:
            if fb not in seen:
                seen.add(fb)
                chain.append(self._group(fb))
        return chain

    def chain(self, name: str) -> list[ModelGroup]:
        """The models to try for ``name``, in order: its own, then its fallbacks'. Not to be mutated."""
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("model: required, a model name (see GET /v1/models)", param="model")
        if name in self._models:
            chain = self._chains.get(name)
            if chain is None:
                chain = self._chains[name] = self._configured_chain(name)
            return chain
        check_model_name(name)  # a configured name is the operator's; a name a client made up is checked
        provider, sep, upstream = name.partition("/")
        if sep and upstream and provider in self.config.settings.providers:
            return [ModelGroup(name, [Deployment(provider, upstream, name)])]
        if self._default is not None:
            return [ModelGroup(name, [Deployment(self._default, name, name)])]
        available = ", ".join(self.model_names()) or "(none)"
        prefixes = ", ".join(f"{p}/MODEL" for p in sorted(self.config.settings.providers))
        raise ModelNotFoundError(
            f"The model '{name}' does not exist. Available models: {available}; "
            f"or name a provider's model directly: {prefixes}.",
            param="model",
        )

    def resolve(self, name: str) -> list[Deployment]:
        """Every deployment that may answer ``name``, in chain order."""
        return [d for group in self.chain(name) for d in group.deployments]

    async def call(
        self,
        api: Api,
        body: dict[str, Any],
        *,
        stream: bool,
        request_id: str = "",
        body_for: BodyFor | None = None,
        deadline: float | None = None,
    ) -> Routed:
        """``deadline`` (the loop's clock): an earlier end than ``router.deadline_seconds`` from now,
        for a request that calls the router more than once (the Responses tool loop)."""
        chain = self.chain(str(body.get("model") or ""))
        picked = self.balancer.order_chain([(p.route, p.deployments, p.strategy) for p in chain])
        loop = asyncio.get_running_loop()
        own = loop.time() + self._router.deadline_seconds
        deadline = own if deadline is None else min(own, deadline)
        if loop.time() >= deadline:
            raise UpstreamTimeoutError(
                f"no answer within router.deadline_seconds ({self._router.deadline_seconds:g} s, "
                "gateway tool calls included)"
            )
        last: ModelMuxError | None = None
        attempts = 0
        # One per client request: images are fetched once for every attempt and fallback.
        images = RequestImages(self.images) if self.images is not None else None
        for index, (group, order) in enumerate(zip(chain, picked.orders, strict=True)):
            if index > 0:
                if loop.time() >= deadline:
                    break
                metrics.FALLBACKS.labels(chain[index - 1].route, group.route).inc()
                before = chain[index - 1].route
                if last is None:  # the model before was skipped whole: its breakers are open
                    logger.debug("falling back from {} to {}: its deployments are ejected", before, group.route)
                else:
                    logger.warning("falling back from {} to {}: {}", before, group.route, last)
            if not order:
                continue
            tries = _Tries()
            try:
                return await self._serve(
                    api,
                    body,
                    stream,
                    request_id,
                    group,
                    order,
                    picked,
                    deadline,
                    tries,
                    attempts,
                    body_for,
                    images,
                )
            except ModelMuxError as exc:
                attempts += tries.total
                if not (exc.retryable or exc.deployment_fault):
                    raise
                last = _kept(exc)
        if last is None:
            last = UpstreamTimeoutError(
                f"no answer within router.deadline_seconds ({self._router.deadline_seconds:g} s)"
            )
        raise last

    async def _serve(
        self,
        api: Api,
        body: dict[str, Any],
        stream: bool,
        request_id: str,
        group: ModelGroup,
        order: list[Deployment],
        picked: ChainOrder,
        deadline: float,
        tries: _Tries,
        before: int,
        body_for: BodyFor | None,
        images: RequestImages | None,
    ) -> Routed:
        """Try one model's deployments: the pick, the others, then retries in rounds."""
        loop = asyncio.get_running_loop()
        # With another way to an answer, a deployment that became skipped meanwhile (another
        # request opened its breaker) is left alone; the request's only way is always tried.
        alternatives = picked.ways > 1
        while True:
            progressed = False
            for dep in order:
                provider = self.providers.get(dep.provider)
                if provider is None:  # its factory failed at start-up (see /health)
                    tries.last = tries.last or UpstreamUnavailableError(
                        f"provider {dep.provider} is not available (it failed to start; see /health)"
                    )
                    continue
                n = tries.count.get(dep, 0)
                if n > provider.settings.max_retries:
                    continue
                if n > 0:
                    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (n - 1)))
                    delay = max(delay, tries.hint.get(dep, 0.0))
                    if loop.time() + delay >= deadline:
                        tries.count[dep] = provider.settings.max_retries + 1
                        continue
                    reason = (tries.last.code or type(tries.last).__name__) if tries.last else "retry"
                    metrics.UPSTREAM_RETRIES.labels(dep.provider, reason).inc()
                    logger.info("retrying {} in {:.2f}s after: {}", dep.provider, delay, tries.last)
                    await self._sleep(delay)
                state = self.balancer.state(dep)
                if alternatives and dep not in picked.forced and state.skipped(self.balancer.clock()):
                    continue
                tries.count[dep] = n + 1
                tries.total += 1
                progressed = True
                use, use_body = body_for(provider, dep) if body_for is not None else (api, body)
                options = self._options.get(dep.route, NO_OPTIONS) if self._options else NO_OPTIONS
                request = UpstreamRequest(use_body, dep.model, str(body["model"]), stream, request_id, images, options)
                call = (
                    provider.chat
                    if use == "chat"
                    else provider.responses
                    if use == "responses"
                    else provider.embeddings
                )
                try:
                    result = await self._attempt(provider, dep, state, call, request, deadline)
                except ModelMuxError as exc:
                    if not exc.retryable:
                        if not exc.deployment_fault:
                            raise
                        # Our credentials or token for this deployment: no use retrying it, the
                        # other deployments and fallbacks may still answer.
                        tries.count[dep] = provider.settings.max_retries + 1
                    tries.last = _kept(exc)
                    hinted = getattr(exc, "retry_after", None)
                    if isinstance(hinted, (int, float)):
                        tries.hint[dep] = float(hinted)
                        if alternatives and isinstance(exc, RateLimitError):
                            state.rate_limited(float(hinted), self.balancer.clock())
                    if loop.time() >= deadline:
                        raise
                    continue
                return Routed(dep, result, before + tries.total, use)
            if not progressed:
                break
        if tries.last is None:
            raise UpstreamTimeoutError(f"no answer from {group.route} within router.deadline_seconds")
        raise tries.last

    async def _sleep(self, delay: float) -> None:
        """``delay`` seconds by the balancer's clock, which keeps the 429 cool-downs: the event
        loop's timer may fire a little early by it (uvloop rounds to milliseconds from a time cached
        per loop iteration), and a retry waiting out its own deployment's ``retry-after`` must not
        wake to find that deployment still cooling down, and skip it."""
        clock = self.balancer.clock
        until = clock() + delay
        await asyncio.sleep(delay)
        left = until - clock()
        if left > 0:  # woke early: the rest, and a millisecond for the timer's rounding
            await asyncio.sleep(left + 0.001)

    async def _attempt(
        self,
        provider: Provider,
        dep: Deployment,
        state: DeploymentHealth,
        call: Callable[[UpstreamRequest], Awaitable[Completion | EventStream]],
        request: UpstreamRequest,
        deadline: float,
    ) -> Completion | EventStream:
        """One upstream attempt under the provider's time bounds; a stream is primed before it counts."""
        loop = asyncio.get_running_loop()
        s = provider.settings
        start = loop.time()
        end_by = start + s.timeout_seconds
        first_by = min(start + (s.first_byte_timeout_seconds or s.timeout_seconds), end_by, deadline)
        clock = self.balancer.clock
        trial = state.begin(clock())
        metrics.child(metrics.INFLIGHT, dep.provider).inc()
        ended = False

        def end(error: ModelMuxError | None, outcome: Outcome = "ok") -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            metrics.child(metrics.INFLIGHT, dep.provider).dec()
            model = metrics.model_label(dep.route, dep.provider, self._models)
            if error is None:
                metrics.upstream_attempt(dep.provider, model, 200)
            else:
                metrics.upstream_attempt(dep.provider, model, error.status_code, error.message, error.deployment_fault)
                outcome = "fault" if error.deployment_fault else None
            state.finish(outcome, clock(), trial)

        result: Completion | EventStream | None = None
        limit = first_by if request.stream else min(end_by, deadline)
        try:
            async with asyncio.timeout_at(limit):
                result = await call(request)
                if isinstance(result, EventStream):
                    guarded = result.guard(
                        lambda source: StreamGuard(
                            source,
                            provider=dep.provider,
                            first_by=first_by,
                            idle=s.idle_timeout_seconds,
                            end_by=end_by,
                            on_end=end,
                        )
                    )
                    if guarded:
                        await result.prime()
                    else:  # a stream class that cannot be watched: count it done now
                        end(None)
        except TimeoutError as exc:
            err = UpstreamTimeoutError(
                f"provider {dep.provider}: no answer within {limit - start:.3g} s "
                f"(timeouts of [providers.{dep.provider}], or router.deadline_seconds)"
            )
            await _close(result)
            end(err)
            raise err from exc
        except ModelMuxError as exc:
            await _close(result)
            end(exc)
            raise
        except BaseException:  # cancelled (the client left) or a bug: says nothing about the upstream
            await _close(result)
            end(None, None)
            raise
        if isinstance(result, Completion):
            end(None)
        return result


def _kept(exc: ModelMuxError) -> ModelMuxError:
    """A failure kept for later: the reason for the next try, or the answer if none succeeds.

    Its traceback's frames hold the failed attempt's locals (the upstream body, the request's
    images) and, through the frame that keeps it, form a reference cycle that only the garbage
    collector would break, long after the request. Drop those frames' locals now."""
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        traceback.clear_frames(err.__traceback__)  # frames still running are left as they are
        err = err.__cause__ or err.__context__
    exc.__traceback__ = None  # it starts in the running frame that keeps it: the cycle
    return exc


async def _close(result: Completion | EventStream | None) -> None:
    if isinstance(result, EventStream):
        try:
            await result.aclose()
        except Exception as exc:  # closing a failed stream must not hide why it failed
            logger.debug("closing a failed upstream stream: {}", exc)
