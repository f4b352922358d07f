"""Chat completion chunks -> the Responses API event sequence, one chunk at a time.

``ResponseEvents`` is a small state machine: ``start()`` gives ``response.created`` and
``response.in_progress``; ``feed(chunk)`` gives the events one chat chunk causes (an
output item opens when its first delta arrives, the previous one closes when another
kind of output begins); ``finish()`` closes what is open and gives the terminal event;
``fail(message)`` gives ``response.failed`` and ``error``. Nothing is buffered beyond
the texts of the open items (needed for their ``.done`` events and the final Response).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelmux.translate.responses import (
    ToolNames,
    call_item,
    custom_input,
    failed,
    finalize,
    new_id,
    usage_from_chat,
)
from modelmux.translate.responses_output import message_item, reasoning_item, reasoning_of, text_part

Event = dict[str, Any]


@dataclass
class _Call:
    output_index: int
    item: dict[str, Any]
    arguments: list[str] = field(default_factory=list)


@dataclass
class GatewayCall:
    """A call of a tool the gateway runs: no events of its own, collected for the tool loop."""

    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class ResponseEvents:
    def __init__(self, resp: dict[str, Any], names: ToolNames) -> None:
        self.response = resp
        self.names = names
        self.output: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self._seq = 0
        #: The open reasoning or message item and its current content part.
        self._item: dict[str, Any] | None = None
        self._part: dict[str, Any] | None = None
        self._texts: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._gateway: dict[int, GatewayCall] = {}
        #: The upstream's own ``usage`` of the current round (chat shape).
        self.chat_usage: dict[str, Any] | None = None
        #: Annotations of the answer's text, asked when an output_text part closes (the tool loop's last round).
        self.annotate: Callable[[str], list[dict[str, Any]]] | None = None

    def event(self, kind: str, **fields: Any) -> Event:
        """An event of this response (the next sequence number): for the tool loop's own events."""
        return self._event(kind, **fields)

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def _snapshot(self, kind: str) -> Event:
        return self._event(kind, response=copy.deepcopy(self.response))

    def start(self) -> list[Event]:
        return [self._snapshot("response.created"), self._snapshot("response.in_progress")]

    # -- the open reasoning / message item --------------------------------------------------------

    def _open_item(self, item: dict[str, Any]) -> list[Event]:
        events = self._close_item()
        self.output.append(item)
        self._item = item
        events.append(
            self._event("response.output_item.added", output_index=len(self.output) - 1, item=copy.deepcopy(item))
        )
        return events

    def _open_part(self, part: dict[str, Any]) -> list[Event]:
        events = self._close_part()
        assert self._item is not None
        self._item["content"].append(part)
        self._part = part
        self._texts = []
        events.append(
            self._event(
                "response.content_part.added",
                item_id=self._item["id"],
                output_index=len(self.output) - 1,
                content_index=len(self._item["content"]) - 1,
                part=copy.deepcopy(part),
            )
        )
        return events

    def _close_part(self) -> list[Event]:
        if self._part is None or self._item is None:
            return []
        part, item = self._part, self._item
        text = "".join(self._texts)
        where = {"item_id": item["id"], "output_index": len(self.output) - 1, "content_index": len(item["content"]) - 1}
        events = []
        if part["type"] == "output_text":
            part["text"] = text
            if self.annotate is not None:
                part["annotations"] = self.annotate(text)
                for i, annotation in enumerate(part["annotations"]):
                    events.append(
                        self._event(
                            "response.output_text.annotation.added", annotation_index=i, annotation=annotation, **where
                        )
                    )
            events.append(self._event("response.output_text.done", text=text, logprobs=[], **where))
        elif part["type"] == "refusal":
            part["refusal"] = text
            events.append(self._event("response.refusal.done", refusal=text, **where))
        else:
            part["text"] = text
            events.append(self._event("response.reasoning_text.done", text=text, **where))
        events.append(self._event("response.content_part.done", part=copy.deepcopy(part), **where))
        self._part = None
        self._texts = []
        return events

    def _close_item(self) -> list[Event]:
        if self._item is None:
            return []
        events = self._close_part()
        item = self._item
        item["status"] = "completed"
        index = self.output.index(item)
        events.append(self._event("response.output_item.done", output_index=index, item=copy.deepcopy(item)))
        self._item = None
        return events

    def _delta(self, kind: str, part_type: str, text: str) -> list[Event]:
        events: list[Event] = []
        if self._item is None or self._item["type"] != kind:
            new = (
                reasoning_item("", status="in_progress")
                if kind == "reasoning"
                else message_item([], status="in_progress")
            )
            new["content"] = []
            events += self._open_item(new)
        if self._part is None or self._part["type"] != part_type:
            if part_type == "output_text":
                part = text_part("")
            elif part_type == "refusal":
                part = {"type": "refusal", "refusal": ""}
            else:
                part = {"type": "reasoning_text", "text": ""}
            events += self._open_part(part)
        assert self._item is not None
        self._texts.append(text)
        event_type = {
            "output_text": "response.output_text.delta",
            "refusal": "response.refusal.delta",
            "reasoning_text": "response.reasoning_text.delta",
        }[part_type]
        extra: dict[str, Any] = {"logprobs": []} if part_type == "output_text" else {}
        events.append(
            self._event(
                event_type,
                item_id=self._item["id"],
                output_index=len(self.output) - 1,
                content_index=len(self._item["content"]) - 1,
                delta=text,
                **extra,
            )
        )
        return events

    # -- tool calls ---------------------------------------------------------------------------------

    def _tool_delta(self, call: dict[str, Any]) -> list[Event]:
        index = int(call.get("index") or 0)
        fn = call.get("function") or {}
        events: list[Event] = []
        gateway_call = self._gateway.get(index)
        if gateway_call is None and index not in self._calls and fn.get("name"):
            if self.names.origin(str(fn["name"])).kind == "gateway":
                gateway_call = self._gateway[index] = GatewayCall(call.get("id") or new_id("call"), str(fn["name"]))
        if gateway_call is not None:
            piece = fn.get("arguments")
            if isinstance(piece, str) and piece:
                gateway_call.arguments.append(piece)
            return []
        open_call = self._calls.get(index)
        if open_call is None:
            events += self._close_item()
            item = call_item(
                call.get("id") or new_id("call"), str(fn.get("name") or ""), "", self.names, status="in_progress"
            )
            self.output.append(item)
            open_call = self._calls[index] = _Call(len(self.output) - 1, item)
            events.append(
                self._event("response.output_item.added", output_index=open_call.output_index, item=copy.deepcopy(item))
            )
        elif fn.get("name") and not open_call.item["name"]:
            open_call.item["name"] = self.names.origin(fn["name"]).name
        piece = fn.get("arguments")
        if isinstance(piece, str) and piece:
            open_call.arguments.append(piece)
            # a custom tool's input is the "input" string inside these JSON arguments: sent whole at the end
            if open_call.item["type"] == "function_call":
                events.append(
                    self._event(
                        "response.function_call_arguments.delta",
                        item_id=open_call.item["id"],
                        output_index=open_call.output_index,
                        delta=piece,
                    )
                )
        return events

    def _close_calls(self) -> list[Event]:
        events: list[Event] = []
        for open_call in self._calls.values():
            item, where = open_call.item, {"item_id": open_call.item["id"], "output_index": open_call.output_index}
            arguments = "".join(open_call.arguments)
            if item["type"] == "function_call":
                item["arguments"] = arguments
                events.append(
                    self._event(
                        "response.function_call_arguments.done", name=item["name"], arguments=arguments, **where
                    )
                )
            else:
                item["input"] = custom_input(arguments)
                events.append(self._event("response.custom_tool_call_input.delta", delta=item["input"], **where))
                events.append(self._event("response.custom_tool_call_input.done", input=item["input"], **where))
            item["status"] = "completed"
            events.append(
                self._event("response.output_item.done", output_index=open_call.output_index, item=copy.deepcopy(item))
            )
        self._calls.clear()
        return events

    # -- chunks ------------------------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if chunk.get("usage"):
            self.chat_usage = chunk["usage"]
            self.usage = usage_from_chat(chunk["usage"])
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            thought = reasoning_of(delta)
            if thought:
                events += self._delta("reasoning", "reasoning_text", thought)
            content = delta.get("content")
            if isinstance(content, str) and content:
                events += self._delta("message", "output_text", content)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                events += self._delta("message", "refusal", refusal)
            for call in delta.get("tool_calls") or []:
                events += self._tool_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def has_gateway_calls(self) -> bool:
        return bool(self._gateway)

    def end_round(self) -> tuple[list[Event], list[GatewayCall]]:
        """The tool loop's end of one model call: what is open closes, and the calls of gateway tools
        (which had no events) are handed over; the response goes on with the next call's chunks."""
        events = self._close_item() + self._close_calls()
        calls = list(self._gateway.values())
        self._gateway.clear()
        self.finish_reason = None
        return events, calls

    def add_item(self, item: dict[str, Any]) -> tuple[int, Event]:
        """Open an item the tool loop made (a ``web_search_call``): its output index and ``output_item.added``."""
        self.output.append(item)
        index = len(self.output) - 1
        return index, self._event("response.output_item.added", output_index=index, item=copy.deepcopy(item))

    def item_done(self, index: int) -> Event:
        return self._event("response.output_item.done", output_index=index, item=copy.deepcopy(self.output[index]))

    def finish(self) -> list[Event]:
        events = self._close_item() + self._close_calls()
        finalize(self.response, self.output, self.usage, self.finish_reason)
        kind = "response.incomplete" if self.response["status"] == "incomplete" else "response.completed"
        events.append(self._snapshot(kind))
        return events

    def fail(self, message: str, code: str | None = None, param: str | None = None) -> list[Event]:
        """``response.failed`` (the Response with its error), then ``error`` (which the SDK raises)."""
        failed(self.response, message, [i for i in self.output if i.get("status") == "completed"])
        err = {"type": "error", "code": code, "message": message, "param": param}
        return [self._snapshot("response.failed"), self._event("error", **err, error=dict(err))]
