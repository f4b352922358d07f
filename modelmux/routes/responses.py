"""The Responses API: ``POST /v1/responses`` (stream and not), ``GET`` / ``DELETE
/v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``.

A request is routed once (retries and fallbacks included); per deployment the router
asks ``body_for`` what to send: a provider with ``native_responses`` gets the Responses
body (its conversation expanded from the state store), any other gets the translated
chat body. Either way ModelMux stores the result (unless ``store: false``) so that
``previous_response_id`` works for every provider, across restarts and replicas.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from loguru import logger

from modelmux import metrics
from modelmux.cache import HEADER as CACHE_HEADER
from modelmux.cache import Entry
from modelmux.conversations import Conversations
from modelmux.errors import InvalidRequestError, ModelMuxError, NotFoundError, UpstreamError
from modelmux.gateway import Gateway
from modelmux.provider import Completion, EventStream, Provider
from modelmux.router import Deployment, Endpoint
from modelmux.routes import responses_cache
from modelmux.routes.common import (
    SSE_HEADERS,
    DirectRoute,
    cache_plan,
    gateway,
    hit_headers,
    json_response,
    read_json,
    routed_headers,
)
from modelmux.schemas_responses import validate_responses
from modelmux.sse import SSEParser, encode
from modelmux.streaming import EventStreamResponse, to_client
from modelmux.translate.responses import response_skeleton
from modelmux.translate.responses_output import completion_to_response
from modelmux.translate.responses_request import ChatPlan, chat_request, native_request, normalize_input
from modelmux.translate.responses_stream import ResponseEvents

router = APIRouter()

DROPPED_HEADER = "x-modelmux-dropped-tools"
_TERMINAL = (b"response.completed", b"response.incomplete", b"response.failed")

Save = Callable[[dict[str, Any]], Awaitable[None]]


def conversations(gw: Gateway) -> Conversations:
    if gw.state is None:
        raise ModelMuxError("The state store is not open; the Responses API needs one ([state] backend).")
    return Conversations(gw.state, gw.config.settings.state.ttl_seconds)


def _owner(request: Request) -> str | None:
    owner: str | None = request.scope["state"].get("key_id")
    return owner


async def create_response(request: Request) -> Response:
    body = await read_json(request)
    validate_responses(body)
    gw = gateway(request)
    state = request.scope["state"]
    owner = _owner(request)
    convs = conversations(gw)
    previous: list[dict[str, Any]] = []
    if body.get("previous_response_id"):
        previous = (await convs.require(body["previous_response_id"], owner, "previous_response_id")).history
    input_items = normalize_input(body.get("input"), previous)
    stream = bool(body.get("stream"))
    state["model"] = body.get("model")
    # Client rate limits (docs/guides/routing.md): refused before any work; tokens are charged after.
    key_id = state.get("key_id")
    await gw.limits.admit(key_id)

    save: Save | None = None
    if body.get("store") is not False:

        async def save(resp: dict[str, Any]) -> None:
            await convs.save(resp, previous, input_items, owner)

    lookup = cache_plan(request, gw, "responses", responses_cache.key_body(body), responses_cache.key_context(previous))
    if lookup is not None:
        state["cache"] = "miss"
        if lookup.read:
            entry = await gw.response_cache.get(lookup)
            if entry is not None:
                return await _cached_response(entry, body, save, state)
    plans: dict[Deployment, ChatPlan] = {}

    def body_for(provider: Provider, dep: Deployment) -> tuple[Endpoint, dict[str, Any]]:
        if provider.native_responses:
            return "responses", native_request(body, previous, input_items)
        model = gw.config.settings.models.get(dep.route)
        plan = chat_request(
            body, previous + input_items, stream=stream, strict_tools=bool(model and model.strict_tools)
        )
        plans[dep] = plan
        return "chat", plan.body

    routed = await gw.router.call(
        "responses", body, stream=stream, request_id=state.get("request_id", ""), body_for=body_for
    )
    dep = routed.deployment
    state["provider"] = dep.provider
    headers = routed_headers(routed)
    plan = plans.get(dep)
    kept: dict[str, str] = {}  # headers a cache hit repeats
    if plan is not None and plan.dropped:
        kept[DROPPED_HEADER] = ",".join(plan.dropped)
        headers.update(kept)
        logger.info(
            "responses: dropped built-in tools {} for model {}: provider {} has no Responses API",
            ",".join(plan.dropped),
            dep.route,
            dep.provider,
        )

    if lookup is not None:
        headers[CACHE_HEADER] = "miss"
    result = routed.result
    if isinstance(result, Completion):
        if plan is None:  # native: the upstream's Response, told what the client asked for
            resp = _as_client_asked(result.json(), body)
        else:
            resp = completion_to_response(result.json(), response_skeleton(body), plan.names)
        metrics.record_usage(dep.provider, dep.route, result.usage)
        await gw.limits.charge(key_id, result.usage)
        if save is not None:
            await save(resp)
        headers.update({k: v for k, v in result.headers.items() if k.lower() != "content-length"})
        data = orjson.dumps(resp)
        if lookup is not None and responses_cache.storable(resp):
            await gw.response_cache.put(lookup, "json", data, dep, kept)
        return Response(data, media_type="application/json", headers=headers)
    if not stream:
        await result.aclose()
        raise UpstreamError(f"provider {dep.provider} answered a stream to a non-streaming request")
    headers.update(SSE_HEADERS)
    headers.update(result.headers)
    started = state.get("started", time.perf_counter())
    # The cache stores the stream only if this ends up without "error" (a storable final status).
    outcome: dict[str, Any] = {"error": "the stream did not end"}
    if plan is None:
        frames = _native_stream(
            result, body, save, provider=dep.provider, model=dep.route, started=started, outcome=outcome
        )
    else:
        events = ResponseEvents(response_skeleton(body), plan.names)
        frames = _translated_stream(
            result, events, save, provider=dep.provider, model=dep.route, started=started, outcome=outcome
        )
    if lookup is not None:
        frames = gw.response_cache.tee(frames, lookup, dep, outcome, kept)
    if gw.limits.counts_tokens(key_id):
        frames = gw.limits.charged(frames, key_id, lambda: result.usage)
    return EventStreamResponse(frames, headers)


# A hot route: no per-request dependency solving (see DirectRoute).
router.add_api_route("/v1/responses", create_response, methods=["POST"], route_class_override=DirectRoute)


async def _cached_response(entry: Entry, body: dict[str, Any], save: Save | None, state: dict[str, Any]) -> Response:
    """A hit, answered as a new response (new ids) and stored like one."""
    headers = hit_headers(entry, state)
    renamer = responses_cache.Renamer(body)
    if entry.kind == "sse":
        headers.update(SSE_HEADERS)
        frames = responses_cache.replay_stream(entry.body, renamer, save)
        return EventStreamResponse(frames, headers)
    resp = renamer.response(orjson.loads(entry.body))
    if save is not None:
        await save(resp)
    return Response(orjson.dumps(resp), media_type="application/json", headers=headers)


def _settle(outcome: dict[str, Any] | None, resp: dict[str, Any] | None) -> None:
    """Tell the cache whether the stream's final Response may be stored."""
    if outcome is not None and responses_cache.storable(resp):
        outcome.pop("error", None)


def _as_client_asked(resp: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A native upstream saw no previous_response_id (ModelMux sent the items): say what the client sent."""
    resp["previous_response_id"] = body.get("previous_response_id")
    resp["store"] = body.get("store") is not False
    return resp


async def _store(save: Save | None, resp: dict[str, Any]) -> None:
    if save is None:
        return
    try:
        await save(resp)
    except Exception as exc:  # the answer still reaches the client; continuing from it will 404
        logger.error("could not store response {}: {}", resp.get("id"), exc)


async def _translated_stream(
    stream: EventStream,
    events: ResponseEvents,
    save: Save | None,
    *,
    provider: str,
    model: str,
    started: float,
    outcome: dict[str, Any] | None = None,
) -> AsyncIterator[bytes]:
    first = True
    try:
        for event in events.start():
            yield encode(event, event["type"])
        try:
            async for chunk in stream.events():
                out = events.feed(chunk)
                if out and first:
                    first = False
                    metrics.child(metrics.TTFT, provider, model).observe(time.perf_counter() - started)
                for event in out:
                    yield encode(event, event["type"])
            final = events.finish()
        except ModelMuxError as exc:
            logger.warning("stream from {} failed after it started: {}", provider, exc.message)
            metrics.ERRORS.labels(exc.code or exc.error_type).inc()
            final = events.fail(exc.message, exc.code, exc.param)
        except Exception as exc:  # a plugin bug still ends the stream with an error, not a silent cut
            logger.exception("stream from {} failed: {}", provider, exc)
            metrics.ERRORS.labels("server_error").inc()
            final = events.fail(f"provider {provider}: internal error in stream")
        # stored before the terminal event goes out: a client may continue from it at once
        await _store(save, events.response)
        _settle(outcome, events.response)
        for event in final:
            yield encode(event, event["type"])
    finally:
        await stream.aclose()
        metrics.record_usage(provider, model, stream.usage)


async def _native_stream(
    stream: EventStream,
    body: dict[str, Any],
    save: Save | None,
    *,
    provider: str,
    model: str,
    started: float,
    outcome: dict[str, Any] | None = None,
) -> AsyncIterator[bytes]:
    """The upstream's bytes untouched; only the terminal event is decoded, to store its Response."""
    parser = SSEParser()
    async for frame in to_client(stream, provider=provider, model=model, started=started, state=outcome):
        if save is not None or outcome is not None:
            for ev in parser.feed(frame):
                name = ev.event.encode() if ev.event else ev.data[:80]
                if any(t in name for t in _TERMINAL):
                    resp = orjson.loads(ev.data).get("response")
                    if isinstance(resp, dict):
                        await _store(save, _as_client_asked(resp, body))
                        _settle(outcome, resp)
        yield frame


@router.get("/v1/responses/{response_id}")
async def retrieve_response(response_id: str, request: Request) -> Response:
    stored = await conversations(gateway(request)).require(response_id, _owner(request))
    return json_response(stored.response)


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request) -> Response:
    convs = conversations(gateway(request))
    if not await convs.delete(response_id, _owner(request)):
        raise NotFoundError(f"Response with id '{response_id}' not found.")
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    request: Request,
    limit: int = Query(20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> Response:
    stored = await conversations(gateway(request)).require(response_id, _owner(request))
    items = stored.input_items
    if order == "desc":
        items = items[::-1]
    if after:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise InvalidRequestError(
                f"after: no input item with id '{after}' in response '{response_id}'.", param="after"
            )
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else "",
            "last_id": page[-1]["id"] if page else "",
            "has_more": len(items) > limit,
        }
    )
