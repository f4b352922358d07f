"""The Responses API: ``POST /v1/responses`` (stream and not), ``GET`` / ``DELETE
/v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``.

``POST`` is a pipeline ``Exchange`` (``modelmux/pipeline.py``). Per deployment the router
asks ``body_for`` what to send: a provider with ``native_responses`` gets the Responses body
(its conversation expanded from the state store), any other gets the translated chat body.
Either way ModelMux stores the result (unless ``store: false``) so that
``previous_response_id`` works for every provider, across restarts and replicas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response

from modelmux import metrics, pipeline
from modelmux.cache import Entry
from modelmux.context import RequestContext
from modelmux.conversations import Conversations, History, Minted
from modelmux.errors import InvalidRequestError, ModelMuxError, NotFoundError, PayloadTooLargeError
from modelmux.gateway import Gateway
from modelmux.pipeline import SSE_HEADERS, Account, json_response
from modelmux.provider import Completion, EventStream, Provider
from modelmux.router import Api, Deployment, Routed
from modelmux.routes import responses_cache
from modelmux.schemas_responses import validate_responses
from modelmux.sse import SSEParser, encode
from modelmux.streaming import EventStreamResponse
from modelmux.tool_loop import ToolLoop
from modelmux.translate.responses import response_skeleton
from modelmux.translate.responses_output import completion_to_response
from modelmux.translate.responses_request import ChatPlan, chat_request, native_request, normalize_input
from modelmux.translate.responses_stream import ResponseEvents

DROPPED_HEADER = "x-modelmux-dropped-tools"
_TERMINAL = (b"response.completed", b"response.incomplete", b"response.failed")

Save = Callable[[dict[str, Any]], Awaitable[None]]
STORE_WARNING_HEADER = "x-modelmux-store-warning"


def conversations(gw: Gateway) -> Conversations:
    if gw.state is None:
        raise ModelMuxError("The state store is not open; the Responses API needs one ([state] backend).")
    settings = gw.config.settings
    return Conversations(gw.state, settings.state, settings.server.max_request_bytes)


class ResponsesExchange(pipeline.Exchange):
    api = "responses"

    def __init__(
        self,
        gw: Gateway,
        request: Request,
        ctx: RequestContext,
        body: dict[str, Any],
        history: History,
        input_items: list[dict[str, Any]],
        minted: Minted,
        convs: Conversations | None,
    ) -> None:
        super().__init__(gw, request, ctx, body)
        self.history = history
        self.previous = history.items
        self.input_items = input_items
        self.minted = minted
        #: Item id -> fields ModelMux added, over the whole conversation (left out for native upstreams).
        self.replay_minted = {**history.minted, **minted}
        self.convs = convs  # None: store is false
        #: Gateway tools named by the request (``[tools.TYPE]``): the tool loop, else None.
        self.loop = ToolLoop.of(gw, body, ctx)
        # Items of gateway tools in the conversation (stored, or sent back by a stateless client):
        # only the chat path can show them to the model (as the call and its answer).
        item_types = {tool.item_type for tool in gw.tools.values()}
        self.tool_items = bool(history.tool_calls) or (
            bool(item_types) and any(item.get("type") in item_types for item in (*history.items, *input_items))
        )
        self.save: Save | None = self.saver(output_minted=True)
        self.plans: dict[Deployment, ChatPlan] = {}
        self.plan: ChatPlan | None = None
        # The cache keeps a stream only if it ends without "error" (a storable final status).
        self.outcome: dict[str, Any] = {"error": "the stream did not end"}

    def saver(self, *, output_minted: bool) -> Save | None:
        """How to store this request's response; ``output_minted``: its output ids are ModelMux's."""
        convs = self.convs
        if convs is None:
            return None

        async def save(resp: dict[str, Any]) -> None:
            await convs.save(
                resp,
                self.history,
                self.input_items,
                self.ctx.key_id,
                self.minted,
                output_minted=output_minted,
                tool_calls=self.loop.replay if self.loop is not None else None,
            )

        return save

    def cache_key(self) -> tuple[dict[str, Any], Any] | None:
        if self.loop is not None:
            return None  # gateway tools answer from live sources (a search, a vector store that changes)
        return responses_cache.key_body(self.body), responses_cache.key_context(self.previous)

    def body_for(self, provider: Provider, dep: Deployment) -> tuple[Api, dict[str, Any]]:
        # Gateway tools (now, or their items in the history) need the chat path: the loop runs there.
        if provider.native_responses and self.loop is None and not self.tool_items:
            return "responses", native_request(self.body, self.previous, self.input_items, self.replay_minted)
        model = self.gw.config.settings.models.get(dep.route)
        plan = chat_request(
            self.body,
            self.previous + self.input_items,
            stream=self.stream,
            strict_tools=bool(model and model.strict_tools),
            gateway=self.loop.functions if self.loop is not None else None,
            replay=self.history.tool_calls,
        )
        self.plans[dep] = plan
        return "chat", plan.body

    def routed_to(self, routed: Routed) -> None:
        dep = routed.deployment
        self.plan = self.plans.get(dep)
        self.save = self.saver(output_minted=self.plan is not None)  # a native upstream's ids are its own
        if self.plan is not None and self.plan.dropped:
            self.kept[DROPPED_HEADER] = ",".join(self.plan.dropped)
            logger.info(
                "responses: dropped built-in tools {} for model {}: provider {} has no Responses API",
                ",".join(self.plan.dropped),
                dep.route,
                dep.provider,
            )

    async def answer(self, routed: Routed, result: Completion, account: Account) -> tuple[bytes, bool]:
        if self.plan is None:  # native: the upstream's Response, told what the client asked for
            resp = _as_client_asked(result.json(), self.body)
            await account.done(result.usage)
        elif self.loop is not None:
            try:
                resp = await self.loop.complete(
                    result.json(), self.plan.body, self.plan.names, response_skeleton(self.body)
                )
            finally:  # every round's tokens were spent, whatever the last one did
                await account.done(self.loop.usage or None)
        else:
            resp = completion_to_response(result.json(), response_skeleton(self.body), self.plan.names)
            await account.done(result.usage)
        self._warn(await _store(self.save, resp))
        return orjson.dumps(resp), responses_cache.storable(resp)

    def _warn(self, warning: str | None) -> None:
        if warning is not None:
            self.answer_headers[STORE_WARNING_HEADER] = pipeline.header_value(warning)

    def frames(self, routed: Routed, stream: EventStream, account: Account) -> AsyncIterator[bytes]:
        if self.plan is None:
            return account.metered(_native_stream(stream, self.body, self.save, self.outcome), stream)
        events = ResponseEvents(response_skeleton(self.body), self.plan.names)
        return _translated_stream(stream, events, self.save, account, self.outcome, self.loop, self.plan.body)

    def stream_ok(self) -> bool:
        return "error" not in self.outcome

    async def replay(self, entry: Entry, headers: dict[str, str]) -> Response:
        """A hit, answered as a new response (new ids) and stored like one."""
        renamer = responses_cache.Renamer(self.body)
        if entry.kind == "sse":
            frames = responses_cache.replay_stream(entry.body, renamer, self.save)
            return EventStreamResponse(frames, {**headers, **SSE_HEADERS})
        resp = renamer.response(orjson.loads(entry.body))
        self._warn(await _store(self.save, resp))
        return Response(orjson.dumps(resp), media_type="application/json", headers={**headers, **self.answer_headers})


async def create_response(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    body = await pipeline.read_json(gw, request, ctx)
    checked = validate_responses(body)
    owner = ctx.key_id
    convs = conversations(gw)
    history = History()
    if body.get("previous_response_id"):
        head = await convs.require(body["previous_response_id"], owner, "previous_response_id")
        history = await convs.history(head)
    minted: Minted = {}
    input_items = normalize_input(body.get("input"), history.items, minted)
    store = checked.store is not False  # validated: strictly a boolean
    # Size, quota and a store that answers: checked before the upstream spends tokens.
    await convs.admit(history, input_items, owner, store)
    exchange = ResponsesExchange(gw, request, ctx, body, history, input_items, minted, convs if store else None)
    if exchange.loop is not None:
        await exchange.loop.prepare()  # the tools' own checks that need a look-up: a 400 before any token
    return await pipeline.run(exchange)


def _settle(outcome: dict[str, Any] | None, resp: dict[str, Any] | None) -> None:
    """Tell the cache whether the stream's final Response may be stored."""
    if outcome is not None and responses_cache.storable(resp):
        outcome.pop("error", None)


def _as_client_asked(resp: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A native upstream saw no previous_response_id (ModelMux sent the items): say what the client sent."""
    resp["previous_response_id"] = body.get("previous_response_id")
    resp["store"] = body.get("store") is not False
    return resp


async def _store(save: Save | None, resp: dict[str, Any]) -> str | None:
    """Store ``resp``; on failure the answer still reaches the client (its tokens are spent):
    a log line, and the warning for the ``x-modelmux-store-warning`` header."""
    if save is None:
        return None
    try:
        await save(resp)
    except PayloadTooLargeError as exc:
        logger.warning("response {} not stored: {}", resp.get("id"), exc.message)
        metrics.ERRORS.labels("store_failed").inc()
        return exc.message
    except Exception as exc:
        message = exc.message if isinstance(exc, ModelMuxError) else f"{type(exc).__name__}: {exc}"
        logger.error("could not store response {}: {}", resp.get("id"), message)
        metrics.ERRORS.labels("store_failed").inc()
        return (
            "not stored: the state store failed (see the gateway log); GET /v1/responses/{id} and "
            "previous_response_id will not find this response"
        )
    return None


async def _translated_stream(
    stream: EventStream,
    events: ResponseEvents,
    save: Save | None,
    account: Account,
    outcome: dict[str, Any],
    loop: ToolLoop | None = None,
    chat_body: dict[str, Any] | None = None,
) -> AsyncIterator[bytes]:
    provider = account.provider
    try:
        for event in events.start():
            yield encode(event, event["type"])
        try:
            if loop is None:
                async for chunk in stream.events():
                    out = events.feed(chunk)
                    if out:
                        account.first_token()
                    for event in out:
                        yield encode(event, event["type"])
            else:
                assert chat_body is not None
                async for event in loop.stream_rounds(stream, events, chat_body, account.first_token):
                    yield encode(event, event["type"])
            final = events.finish()
        except ModelMuxError as exc:
            logger.warning("stream from {} failed after it started: {}", provider, exc.message)
            metrics.ERRORS.labels(exc.code or exc.error_type).inc()
            account.ctx.fail(exc, exc.message)
            final = events.fail(exc.message, exc.code, exc.param)
        except Exception as exc:  # a plugin bug still ends the stream with an error, not a silent cut
            logger.exception("stream from {} failed: {}", provider, exc)
            metrics.ERRORS.labels("server_error").inc()
            account.ctx.fail(exc, str(exc))
            final = events.fail(f"provider {provider}: internal error in stream")
        # stored before the terminal event goes out: a client may continue from it at once
        await _store(save, events.response)
        _settle(outcome, events.response)
        for event in final:
            yield encode(event, event["type"])
    finally:
        await stream.aclose()
        await account.done(loop.usage or None if loop is not None else stream.usage)


async def _native_stream(
    stream: EventStream, body: dict[str, Any], save: Save | None, outcome: dict[str, Any]
) -> AsyncIterator[bytes]:
    """The upstream's bytes untouched; only the terminal event is decoded, to store its Response."""
    parser = SSEParser()
    async for frame in stream.sse():
        for ev in parser.feed(frame):
            name = ev.event.encode() if ev.event else ev.data[:80]
            if any(t in name for t in _TERMINAL):
                resp = orjson.loads(ev.data).get("response")
                if isinstance(resp, dict):
                    await _store(save, _as_client_asked(resp, body))
                    _settle(outcome, resp)
        yield frame


async def retrieve_response(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    stored = await conversations(gw).require(request.path_params["response_id"], ctx.key_id)
    return json_response(stored.response)


async def delete_response(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    response_id = request.path_params["response_id"]
    if not await conversations(gw).delete(response_id, ctx.key_id):
        raise NotFoundError(f"Response with id '{response_id}' not found.")
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


def _invalid(param: str, problem: str, value: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{param}': {problem} (got {value!r}).", param=param)


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _invalid(name, f"an integer from {low} to {high}", raw)
    return int(raw)


async def list_input_items(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    response_id = request.path_params["response_id"]
    limit = _query_int(request, "limit", 20, 1, 100)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _invalid("order", "must be 'asc' or 'desc'", order)
    after = request.query_params.get("after")
    stored = await conversations(gw).require(response_id, ctx.key_id)
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
