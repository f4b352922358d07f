"""The tool loop: built-in tools the gateway runs itself inside one Responses request.

When a request names a configured gateway tool (``[tools.TYPE]``, ``gw.tools``), the request goes
the chat path (whatever the provider) and each such tool is offered to the model as a function
(``Tool.function``). When the model calls one, ``ToolLoop`` runs the calls of that round
concurrently (``Tool.run``, bounded by the request's deadline), gives the model each tool's
text and calls the upstream again through the router, up to ``[tools] max_rounds`` round trips;
then the model is asked once more with ``tool_choice: "none"``, so it answers. The Response gets
one output item per call (``web_search_call``, ``file_search_call``, ...) before the answer, whose
text the tools annotate (citations). Usage is summed over the rounds. A client function called in
the same round ends the loop: the gateway's calls of that round are run, and the client's come
back to the client as usual.

A tool that fails (raises, times out, or gets arguments that are not a JSON object) never fails
the request: its item is ``failed``, the model reads why in general terms, the log says exactly.
Each call's call, arguments and text are kept (``replay``) and stored with the response, so a
later turn (``previous_response_id``) shows the model the call and its answer again.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from loguru import logger

from modelmux import metrics
from modelmux.errors import InvalidRequestError, UpstreamError
from modelmux.logs import scrub
from modelmux.provider import Completion, EventStream
from modelmux.tools import Tool, ToolCall, ToolOutput
from modelmux.translate.responses import ToolNames, finalize, new_id, usage_from_chat
from modelmux.translate.responses_output import completion_to_response
from modelmux.translate.responses_stream import Event, GatewayCall, ResponseEvents

if TYPE_CHECKING:
    from modelmux.context import RequestContext
    from modelmux.gateway import Gateway

#: Id prefixes of the items OpenAI's hosted tools make; another tool's items get ``tc_``.
ITEM_PREFIX = {"web_search_call": "ws", "file_search_call": "fs"}
FAILED_TEXT = "The {tool} tool failed and gave no result ({why}). Answer without it, or say it could not be used."


@dataclass(frozen=True, slots=True)
class Offered:
    """One gateway tool of the request: the tool, the client's entry, the function the model sees."""

    tool: Tool
    entry: Mapping[str, Any]
    function: dict[str, Any]


@dataclass(slots=True)
class Ran:
    """One call, run: its output item (as the client sees it) and what the model read."""

    item: dict[str, Any]
    call: GatewayCall
    text: str
    output: ToolOutput | None
    tool: Tool


def pending_fields(item_type: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the spec requires of an item before its tool answered (``output_item.added``)."""
    query = arguments.get("query")
    query = query if isinstance(query, str) else ""
    if item_type == "web_search_call":
        return {"action": {"type": "search", "query": query}}
    if item_type == "file_search_call":
        return {"queries": [query] if query else [], "results": None}
    return {}


def shown(item: dict[str, Any], include: frozenset[str]) -> dict[str, Any]:
    """The item as the client asked for it: search results and sources only when ``include`` names them."""
    if item.get("type") == "file_search_call" and "file_search_call.results" not in include:
        item["results"] = None
    if item.get("type") == "web_search_call" and "web_search_call.action.sources" not in include:
        action = item.get("action")
        if isinstance(action, dict) and "sources" in action:
            item["action"] = {k: v for k, v in action.items() if k != "sources"}
    return item


def _add_usage(total: dict[str, Any], usage: Any) -> None:
    """Chat usage summed over rounds (the details objects too)."""
    if not isinstance(usage, dict):
        return
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            total[key] = int(total.get(key) or 0) + value
        elif isinstance(value, dict):
            _add_usage(total.setdefault(key, {}), value)


class ToolLoop:
    def __init__(self, gw: Gateway, body: dict[str, Any], ctx: RequestContext, offered: dict[int, Offered]) -> None:
        self.gw = gw
        self.body = body
        self.ctx = ctx
        self.offered = offered
        self.by_name = {o.function["name"]: o for o in offered.values()}
        raw_include = body.get("include")
        self.include = frozenset(str(i) for i in raw_include) if isinstance(raw_include, list) else frozenset()
        self.max_rounds = gw.config.settings.tools.max_rounds
        limit = body.get("max_tool_calls")
        self.max_calls = limit if type(limit) is int and limit >= 0 else None
        self.rounds = 0
        self.calls_made = 0
        #: The chat usage of every model call, summed.
        self.usage: dict[str, Any] = {}
        #: Item id -> the call as the model saw it, stored with the response (``Conversations.save``).
        self.replay: dict[str, dict[str, Any]] = {}
        self.ran: list[Ran] = []
        #: Chat messages the rounds added after the conversation (assistant calls, tool answers).
        self.added: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + gw.config.settings.router.deadline_seconds

    @classmethod
    def of(cls, gw: Gateway, body: dict[str, Any], ctx: RequestContext) -> ToolLoop | None:
        """The loop for a request naming a configured gateway tool (each entry checked: a 400 before
        any upstream call), or None: the request takes the path without gateway tools."""
        tools = body.get("tools")
        if not gw.tools or not isinstance(tools, list):
            return None
        offered: dict[int, Offered] = {}
        for index, entry in enumerate(tools):
            tool = gw.tools.get(str(entry.get("type"))) if isinstance(entry, dict) else None
            if tool is None:
                continue
            try:
                tool.check(entry)
            except InvalidRequestError as exc:
                exc.param = exc.param if exc.param and exc.param != "tools" else f"tools[{index}]"
                raise
            function = dict(tool.function(entry))
            function.setdefault("parameters", {"type": "object", "properties": {}})
            offered[index] = Offered(tool, entry, function)
        return cls(gw, body, ctx, offered) if offered else None

    async def prepare(self) -> None:
        """Each tool's ``prepare`` for its entries, before the first model call (a 400 naming ``tools[i]``)."""
        ctx = self.gw.tool_context(self.ctx.key_id, self.ctx.request_id)
        for index, offered in self.offered.items():
            try:
                await offered.tool.prepare(offered.entry, ctx)
            except InvalidRequestError as exc:
                exc.param = exc.param if exc.param and exc.param != "tools" else f"tools[{index}]"
                raise

    @property
    def functions(self) -> dict[int, dict[str, Any]]:
        """What ``chat_request(gateway=...)`` offers the model, by index in ``tools``."""
        return {i: o.function for i, o in self.offered.items()}

    # -- one round ---------------------------------------------------------------------------------

    def _pending(self, call: GatewayCall) -> tuple[Offered, dict[str, Any] | None, dict[str, Any]]:
        offered = self.by_name[call.name]
        try:
            arguments = orjson.loads("".join(call.arguments) or "{}")
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            arguments = None
        item_type = offered.tool.item_type
        item = {
            "id": new_id(ITEM_PREFIX.get(item_type, "tc")),
            "type": item_type,
            "status": "in_progress",
            **pending_fields(item_type, arguments or {}),
        }
        return offered, arguments, item

    async def _run_one(
        self, offered: Offered, call: GatewayCall, arguments: dict[str, Any] | None, item: dict[str, Any]
    ) -> Ran:
        tool = offered.tool
        output: ToolOutput | None = None
        why = ""
        self.calls_made += 1
        if arguments is None:
            why = "its arguments were not a JSON object"
        elif self.max_calls is not None and self.calls_made > self.max_calls:
            why = f"max_tool_calls ({self.max_calls}) was reached"
        else:
            ctx = self.gw.tool_context(self.ctx.key_id, self.ctx.request_id)
            started = time.perf_counter()
            try:
                async with asyncio.timeout_at(self.deadline):
                    result = await tool.run(ToolCall(call.call_id, arguments, offered.entry, self.include), ctx)
                if not isinstance(result, ToolOutput):
                    raise TypeError(f"run() returned {type(result).__name__}, not ToolOutput")
                output = result
            except TimeoutError:
                why = "it did not answer within the request's deadline (router.deadline_seconds)"
            except Exception as exc:  # a tool never fails the request: the model and the log are told
                message = getattr(exc, "message", None) or str(exc)
                logger.opt(exception=not hasattr(exc, "message")).warning(
                    "tool {} failed: {}: {}", tool.type, type(exc).__name__, scrub(str(message))
                )
                why = "an error in the tool"
            metrics.child(metrics.TOOL_DURATION, tool.type).observe(time.perf_counter() - started)
        if output is None:
            if why and "error in the tool" not in why:
                logger.warning("tool {} call {} not run: {}", tool.type, call.call_id, why)
            text = FAILED_TEXT.format(tool=tool.type, why=why)
            final = {**item, "status": "failed"}
        else:
            text = output.text
            final = {**item, **copy.deepcopy(output.item), "status": "failed" if output.failed else "completed"}
            final["id"], final["type"] = item["id"], item["type"]
        self.replay[item["id"]] = {
            "call_id": call.call_id,
            "name": call.name,
            "arguments": "".join(call.arguments) or "{}",
            "output": text,
        }
        metrics.child(metrics.TOOL_CALLS, tool.type, final["status"]).inc()
        ran = Ran(shown(final, self.include), call, text, output, tool)
        self.ran.append(ran)
        return ran

    async def run(self, calls: Sequence[GatewayCall]) -> list[Ran]:
        """The calls of one round, concurrently, in the model's order."""
        pending = [(call, *self._pending(call)) for call in calls]
        return await self._gather(pending)

    async def _gather(
        self, pending: list[tuple[GatewayCall, Offered, dict[str, Any] | None, dict[str, Any]]]
    ) -> list[Ran]:
        return list(await asyncio.gather(*(self._run_one(o, c, a, i) for c, o, a, i in pending)))

    def next_messages(self, text: str | None, calls: Sequence[GatewayCall], ran: Sequence[Ran]) -> None:
        """The round as chat messages for the next model call: the assistant's calls, then each answer."""
        tool_calls = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": "".join(c.arguments) or "{}"},
            }
            for c in calls
        ]
        self.added.append({"role": "assistant", "content": text or None, "tool_calls": tool_calls})
        self.added += [{"role": "tool", "tool_call_id": r.call.call_id, "content": r.text} for r in ran]

    def next_body(self, first: dict[str, Any]) -> dict[str, Any]:
        """The chat body of the next model call: the conversation so far; after ``max_rounds`` round
        trips the tools stay listed (the conversation names them) but ``tool_choice`` is ``none``."""
        body = dict(first)
        body["messages"] = [*first["messages"], *self.added]
        if "tools" in body:
            if self.rounds >= self.max_rounds:
                body["tool_choice"] = "none"
            elif body.get("tool_choice") not in (None, "auto", "none"):
                body["tool_choice"] = "auto"  # a forced call was made: the model may now answer
        return body

    async def call_model(self, first: dict[str, Any], *, stream: bool) -> Completion | EventStream:
        routed = await self.gw.router.call(
            "chat",
            self.next_body(first),
            stream=stream,
            request_id=self.ctx.request_id,
            deadline=self.deadline,
        )
        return routed.result

    def annotations(self, text: str) -> list[dict[str, Any]]:
        """Each tool's annotations of the answer, from its own outputs of this request."""
        out: list[dict[str, Any]] = []
        for tool in {id(r.tool): r.tool for r in self.ran}.values():
            outputs = [r.output for r in self.ran if r.tool is tool and r.output is not None]
            if not outputs:
                continue
            try:
                out += tool.annotate(text, outputs)
            except Exception as exc:
                logger.opt(exception=exc).warning("tool {}: annotate() failed: {}", tool.type, exc)
        return out

    def _gateway_calls(self, completion: dict[str, Any], names: ToolNames) -> tuple[dict[str, Any], list[GatewayCall]]:
        """The completion without the gateway's tool calls, and those calls."""
        choices = completion.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise UpstreamError("the upstream answered a chat completion without choices")
        message = dict(choices[0].get("message") or {})
        calls: list[GatewayCall] = []
        kept = []
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            name = str(fn.get("name") or "")
            if names.origin(name).kind == "gateway" and name in self.by_name:
                calls.append(GatewayCall(call.get("id") or new_id("call"), name, [str(fn.get("arguments") or "")]))
            else:
                kept.append(call)
        message["tool_calls"] = kept or None
        stripped = {**completion, "choices": [{**choices[0], "message": message}]}
        return stripped, calls

    # -- non-stream --------------------------------------------------------------------------------

    async def complete(
        self, completion: dict[str, Any], first: dict[str, Any], names: ToolNames, resp: dict[str, Any]
    ) -> dict[str, Any]:
        """The Response for a non-stream request: rounds until the model answers."""
        output: list[dict[str, Any]] = []
        while True:
            _add_usage(self.usage, completion.get("usage"))
            stripped, calls = self._gateway_calls(completion, names)
            items = completion_to_response(stripped, {}, names)["output"]
            finish = (stripped["choices"][0] or {}).get("finish_reason")
            if not calls or self.rounds >= self.max_rounds:
                if calls:
                    logger.warning(
                        "the model called a gateway tool after its last tool round: not run ({})",
                        ", ".join(c.name for c in calls),
                    )
                    finish = "stop" if finish == "tool_calls" else finish
                self._annotate(items)
                return finalize(resp, output + items, usage_from_chat(self.usage), finish)
            ran = await self.run(calls)
            client_calls = [i for i in items if i["type"] in ("function_call", "custom_tool_call")]
            said = [i for i in items if i not in client_calls]
            output += said + [r.item for r in ran] + client_calls
            if client_calls:  # the client runs its functions: the response ends here, as without gateway tools
                return finalize(resp, output, usage_from_chat(self.usage), finish)
            self.rounds += 1
            self.next_messages(_text_of(said), calls, ran)
            result = await self.call_model(first, stream=False)
            if not isinstance(result, Completion):
                await result.aclose()
                raise UpstreamError("the upstream answered a stream to a non-streaming request")
            completion = result.json()

    def _annotate(self, items: list[dict[str, Any]]) -> None:
        if not self.ran:
            return
        for item in items:
            if item.get("type") == "message":
                for part in item.get("content") or []:
                    if part.get("type") == "output_text":
                        part["annotations"] = self.annotations(str(part.get("text", "")))

    # -- streams -----------------------------------------------------------------------------------

    async def stream_rounds(
        self, stream: EventStream, events: ResponseEvents, first: dict[str, Any], on_token: Any
    ) -> AsyncIterator[Event]:
        """The events of every round after ``events.start()`` and before ``events.finish()``: the
        first stream's, each tool call's, and the later model calls'. Closes the streams it opens."""
        current = stream
        while True:
            start = len(events.output)
            try:
                async for chunk in current.events():
                    out = events.feed(chunk)
                    if out:
                        on_token()
                    for event in out:
                        yield event
            finally:
                if current is not stream:  # the first stream is the pipeline's to close
                    await current.aclose()
            _add_usage(self.usage, events.chat_usage or current.usage)
            events.chat_usage = None
            if not events.has_gateway_calls() or self.rounds >= self.max_rounds:
                if events.has_gateway_calls():
                    logger.warning("the model called a gateway tool after its last tool round: not run")
                if self.ran:
                    events.annotate = self.annotations
                events.usage = usage_from_chat(self.usage)
                return
            closing, calls = events.end_round()
            for event in closing:
                yield event
            said = [i for i in events.output[start:] if i["type"] in ("message", "reasoning")]
            client_calls = any(i["type"] in ("function_call", "custom_tool_call") for i in events.output[start:])
            pending = [(call, *self._pending(call)) for call in calls]
            opened: list[int] = []
            for _, offered, _, item in pending:
                index, added = events.add_item(item)
                opened.append(index)
                yield added
                kind = offered.tool.item_type
                yield events.event(f"response.{kind}.in_progress", output_index=index, item_id=item["id"])
                yield events.event(f"response.{kind}.searching", output_index=index, item_id=item["id"])
            ran = await self._gather(pending)
            for index, done in zip(opened, ran, strict=True):
                events.output[index] = done.item
                if done.item["status"] == "completed":
                    yield events.event(
                        f"response.{done.tool.item_type}.completed", output_index=index, item_id=done.item["id"]
                    )
                yield events.item_done(index)
            if client_calls:
                events.usage = usage_from_chat(self.usage)
                return
            self.rounds += 1
            self.next_messages(_text_of(said), calls, ran)
            result = await self.call_model(first, stream=True)
            if not isinstance(result, EventStream):
                raise UpstreamError("the upstream answered a non-stream to a streaming request")
            current = result


def _text_of(items: Sequence[dict[str, Any]]) -> str:
    """The text the model wrote in a round (its message items), for the conversation's next call."""
    parts = [
        str(p.get("text", ""))
        for i in items
        if i.get("type") == "message"
        for p in i.get("content") or []
        if p.get("type") == "output_text"
    ]
    return "".join(parts)


__all__ = ["ToolLoop", "pending_fields", "shown"]
