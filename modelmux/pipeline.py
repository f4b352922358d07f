"""One pipeline for every model endpoint: admit -> cache -> route -> account -> respond.

``POST /v1/chat/completions``, ``POST /v1/responses`` and ``POST /v1/embeddings`` are each an
``Exchange``: a small class saying what is particular to the endpoint (what to send each
deployment, how to turn the upstream's answer into the client's, how to replay a cached one).
``run()`` does the rest the same way for all of them, so every endpoint gets the same rate
limits, cache rules, router, metrics, token accounting and log fields by construction:

1. **admit**: the client key's rate limit (429 before any work);
2. **cache**: a hit is answered without an upstream (``x-modelmux-cache: hit``);
3. **route**: ``Router.call`` picks a deployment, retries, falls back;
4. **account**: tokens to the metrics, the rate limiter and the log line (``Account``);
5. **respond**: a JSON body, or an SSE stream sent as it arrives (errors after the first
   byte become a final SSE error event), the cache keeping a copy when it takes part.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from loguru import logger
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from modelmux import metrics
from modelmux.cache import HEADER as CACHE_HEADER
from modelmux.cache import Entry, Lookup, sse_events
from modelmux.context import RequestContext
from modelmux.errors import ModelMuxError, UpstreamError
from modelmux.gateway import Gateway
from modelmux.provider import Completion, EventStream, Provider
from modelmux.router import Api, Deployment, Routed
from modelmux.schemas import check_model_name, parse_json_object
from modelmux.slow_clients import body_not_received
from modelmux.streaming import EventStreamResponse, error_frame

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def read_json(gw: Gateway, request: Request, ctx: RequestContext) -> dict[str, Any]:
    """The request's JSON object (a 400 naming the problem otherwise)."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise body_not_received(request.scope, ctx) from None
    if gw.config.server.log_bodies:
        ctx.request_body = raw
    body = parse_json_object(raw)
    model = body.get("model")
    if type(model) is str:
        check_model_name(model)  # a control character must not reach the log line, a header or a URL
        ctx.model = model[:200]  # the log line names the model also when the request is refused
    return body


def header_value(value: str) -> str:
    """``value`` as a header can carry it: printable ASCII kept, anything else percent-encoded."""
    if value.isascii() and value.isprintable():
        return value
    return quote(value, safe="/:@._-~+")


def routed_headers(dep: Deployment | str, model: str | None = None) -> dict[str, str]:
    provider = dep.provider if isinstance(dep, Deployment) else dep
    upstream = dep.model if isinstance(dep, Deployment) else str(model)
    return {"x-modelmux-provider": header_value(provider), "x-modelmux-model": header_value(upstream)}


class Account:
    """Step 4 for one routed request: time to first token, tokens, rate-limit charge, log fields."""

    __slots__ = ("_first", "ctx", "gw", "label", "provider")

    def __init__(self, gw: Gateway, ctx: RequestContext, dep: Deployment) -> None:
        self.gw = gw
        self.ctx = ctx
        self.provider = dep.provider
        #: The bounded ``model`` label: a configured name, else ``PROVIDER/*`` (clients cannot make labels).
        self.label = metrics.model_label(dep.route, dep.provider, gw.config.settings.models)
        self._first = True

    def first_token(self) -> None:
        if self._first:
            self._first = False
            ttft = time.perf_counter() - self.ctx.started
            metrics.child(metrics.TTFT, self.provider, self.label).observe(ttft)
            self.ctx.ttft_ms = round(ttft * 1000, 2)

    async def done(self, usage: dict[str, Any] | None) -> None:
        ctx = self.ctx
        ctx.input_tokens, ctx.output_tokens = metrics.record_usage(self.provider, self.label, usage)
        await self.gw.limits.charge(ctx.key_id, usage)

    async def metered(
        self, frames: AsyncIterator[bytes], stream: EventStream, *, first_frame_is_token: bool = True
    ) -> AsyncIterator[bytes]:
        """``frames`` to the client; an error becomes a final SSE error event; usage counted at the end."""
        ctx = self.ctx
        try:
            async for frame in frames:
                if first_frame_is_token and self._first:
                    self.first_token()
                yield frame
        except (GeneratorExit, asyncio.CancelledError):
            ctx.error = "the client closed the stream before its end"
            raise
        except ModelMuxError as exc:
            logger.warning("stream from {} failed after it started: {}", self.provider, exc.message)
            metrics.ERRORS.labels(exc.code or exc.error_type).inc()
            ctx.fail(exc, exc.message)
            yield error_frame(exc, stream.kind)
        except Exception as exc:  # a plugin bug must still end the stream with an error, not a silent cut
            logger.exception("stream from {} failed: {}", self.provider, exc)
            metrics.ERRORS.labels("server_error").inc()
            ctx.fail(exc, str(exc))
            yield error_frame(ModelMuxError(f"provider {self.provider}: internal error in stream"), stream.kind)
        finally:
            await stream.aclose()
            await self.done(stream.usage)


class Exchange:
    """What one endpoint adds to the pipeline. The defaults pass the upstream's answer through."""

    #: Which of the provider's APIs answers (its method answers, unless ``body_for`` says otherwise).
    api: Api = "chat"

    def __init__(self, gw: Gateway, request: Request, ctx: RequestContext, body: dict[str, Any]) -> None:
        self.gw = gw
        self.request = request
        self.ctx = ctx
        self.body = body
        self.stream = body.get("stream") is True
        #: Headers a cache hit repeats (e.g. which tools were dropped).
        self.kept: dict[str, str] = {}
        #: Headers of this answer only, never cached (set by ``answer``, e.g. a store warning).
        self.answer_headers: dict[str, str] = {}

    def cache_key(self) -> tuple[Mapping[str, Any], Any] | None:
        """The body and context the cache key is made of; None: never cached."""
        return self.body, None

    def body_for(self, provider: Provider, dep: Deployment) -> tuple[Api, dict[str, Any]]:
        return self.api, self.body

    def routed_to(self, routed: Routed) -> None:
        """Told which deployment answers, before its answer is read."""

    async def answer(self, routed: Routed, result: Completion, account: Account) -> tuple[bytes, bool]:
        """The client's JSON body, and whether the cache may keep it. Accounts the usage."""
        try:
            usage = result.usage
        except UpstreamError:
            usage = None
        await account.done(usage)
        return result.body(), True

    def frames(self, routed: Routed, stream: EventStream, account: Account) -> AsyncIterator[bytes]:
        """The client's SSE bytes (accounting included) of an upstream stream."""
        return account.metered(stream.sse(), stream)

    def stream_ok(self) -> bool:
        """Whether a stream that ran to its end may be cached (asked after its last frame)."""
        return self.ctx.error is None

    async def replay(self, entry: Entry, headers: dict[str, str]) -> Response:
        """The answer to a cache hit."""
        if entry.kind == "sse":
            return EventStreamResponse(sse_events(entry.body), {**headers, **SSE_HEADERS})
        return Response(entry.body, media_type="application/json", headers=headers)


def _cache_lookup(ex: Exchange) -> Lookup | None:
    gw = ex.gw
    header = ex.request.headers.get(CACHE_HEADER)
    if header is None and not gw.response_cache.maybe_enabled:
        return None  # the common case costs no model resolution
    key = ex.cache_key()
    if key is None:
        return None
    body, context = key
    primary = gw.router.resolve(str(ex.body.get("model") or ""))[0]
    return gw.response_cache.lookup(ex.api, body, header, primary, context)


def _hit_headers(entry: Entry, ctx: RequestContext) -> dict[str, str]:
    ctx.provider, ctx.deployment, ctx.cache = entry.provider, entry.model, "hit"
    return {**entry.headers, **routed_headers(entry.provider, entry.model), CACHE_HEADER: "hit"}


async def run(ex: Exchange) -> Response:
    """Steps 1 to 5 for one request."""
    gw, ctx = ex.gw, ex.ctx
    await gw.limits.admit(ctx.key_id)
    lookup = _cache_lookup(ex)
    if lookup is not None:
        ctx.cache = "miss"
        if lookup.read:
            entry = await gw.response_cache.get(lookup)
            if entry is not None:
                return await ex.replay(entry, _hit_headers(entry, ctx))
    routed = await gw.router.call(ex.api, ex.body, stream=ex.stream, request_id=ctx.request_id, body_for=ex.body_for)
    dep = routed.deployment
    ctx.provider, ctx.deployment, ctx.retries = dep.provider, dep.model, routed.attempts - 1
    ex.routed_to(routed)
    account = Account(gw, ctx, dep)
    headers = routed_headers(dep)
    if lookup is not None:
        headers[CACHE_HEADER] = "miss"
    result = routed.result
    if isinstance(result, Completion):
        data, storable = await ex.answer(routed, result, account)
        headers.update(ex.kept)
        headers.update({k: v for k, v in result.headers.items() if k.lower() != "content-length"})
        headers.update(ex.answer_headers)
        if gw.config.server.log_bodies:
            ctx.response_body = data
        if lookup is not None and storable:
            await gw.response_cache.put(lookup, "json", data, dep, ex.kept)
        return Response(data, media_type="application/json", headers=headers)
    if not ex.stream:
        await result.aclose()
        raise UpstreamError(f"provider {dep.provider} answered a stream to a non-streaming request")
    headers.update(ex.kept)
    headers.update(SSE_HEADERS)
    headers.update(result.headers)
    frames = ex.frames(routed, result, account)
    if lookup is not None:
        frames = gw.response_cache.tee(frames, lookup, dep, ex.stream_ok, ex.kept)
    return EventStreamResponse(frames, headers)


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")
