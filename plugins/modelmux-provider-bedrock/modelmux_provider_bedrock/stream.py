"""ConverseStream: the ``application/vnd.amazon.eventstream`` body, decoded and turned into chunks.

Frames are decoded with botocore's ``EventStreamBuffer`` as bytes arrive (it checks
both CRCs and buffers at most one partial frame). Each ``event`` frame is one
Converse stream event (messageStart, contentBlockStart/Delta/Stop, messageStop,
metadata); ``exception`` and ``error`` frames become ModelMux errors raised from the
iterator.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncGenerator, Callable
from typing import Any

import aiohttp
import orjson
from botocore.eventstream import EventStreamBuffer, ParserError

from modelmux.plugin import Chunks, UpstreamError, upstream_errors
from modelmux_provider_bedrock.aws_errors import frame_error
from modelmux_provider_bedrock.converse import ConverseCall, finish_reason, new_id, usage

Event = tuple[str, dict[str, Any]]


async def events(content: aiohttp.StreamReader, provider: str, *, auth_fix: str) -> AsyncGenerator[Event, None]:
    """(event type, payload) of each ``event`` frame, as soon as the frame is complete."""
    buffer = EventStreamBuffer()
    async with upstream_errors(provider):
        async for data in content.iter_any():
            buffer.add_data(data)
            while True:
                # One message at a time: frames before a corrupt one are still delivered.
                try:
                    message = next(buffer)
                except StopIteration:
                    break  # the rest of this frame is still on the wire
                except (ParserError, ValueError, KeyError, struct.error) as exc:
                    raise UpstreamError(
                        f"provider {provider}: Bedrock sent a malformed event-stream frame: {exc}",
                        code="upstream_bad_stream",
                    ) from exc
                headers = message.headers
                kind = headers.get(":message-type")
                if kind in ("exception", "error"):
                    raise frame_error(provider, headers, message.payload, auth_fix=auth_fix)
                if kind != "event":
                    continue
                try:
                    payload = orjson.loads(message.payload) if message.payload else {}
                except orjson.JSONDecodeError as exc:
                    raise UpstreamError(f"provider {provider}: invalid JSON in a Bedrock event: {exc}") from exc
                yield str(headers.get(":event-type") or ""), payload


class ChunkBuilder:
    """Converse stream events -> chat.completion.chunk dicts with one id.

    Tool calls get OpenAI's own running index (Converse numbers all content blocks),
    arrive with id and name first, then argument fragments. With JSON-schema output,
    the forced tool's input fragments are the content and stray text is held back.
    """

    def __init__(self, call: ConverseCall, model: str, on_usage: Callable[[dict[str, Any]], None]) -> None:
        self.call = call
        self.chunks = Chunks(new_id(), model)
        self.on_usage = on_usage
        self.started = False
        self.finished = False
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._output_blocks: set[int] = set()
        self._held: list[str] = []

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return self.chunks.delta(delta, finish)

    def feed(self, kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.started:
            self.started = True
            out.append(self.chunk({"role": "assistant", "content": ""}))
        block = int(data.get("contentBlockIndex") or 0)
        if kind == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                if self.call.output_tool is not None and use.get("name") == self.call.output_tool:
                    self._output_blocks.add(block)
                else:
                    index = self._tools.setdefault(block, len(self._tools))
                    call = {
                        "index": index,
                        "id": str(use.get("toolUseId")),
                        "type": "function",
                        "function": {"name": str(use.get("name")), "arguments": ""},
                    }
                    out.append(self.chunk({"tool_calls": [call]}))
        elif kind == "contentBlockDelta":
            delta = data.get("delta") or {}
            if "text" in delta:
                text = str(delta["text"])
                if self.call.output_tool is not None:
                    self._held.append(text)
                elif text:
                    out.append(self.chunk({"content": text}))
            elif "reasoningContent" in delta:
                thought = (delta["reasoningContent"] or {}).get("text")
                if thought:
                    out.append(self.chunk({"reasoning_content": str(thought)}))
            elif "toolUse" in delta:
                fragment = str((delta["toolUse"] or {}).get("input") or "")
                if block in self._output_blocks:
                    out.append(self.chunk({"content": fragment}))
                elif block in self._tools and fragment:
                    args = {"index": self._tools[block], "function": {"arguments": fragment}}
                    out.append(self.chunk({"tool_calls": [args]}))
        elif kind == "messageStop":
            if self._held and not self._output_blocks:
                out.append(self.chunk({"content": "".join(self._held)}))
            self._held.clear()
            self.finished = True
            reason = finish_reason(
                data.get("stopReason"), only_output_tool=bool(self._output_blocks) and not self._tools
            )
            out.append(self.chunk({}, reason))
        elif kind == "metadata":
            counted = usage(data.get("usage"))
            self.on_usage(counted)
            if self.call.include_usage:
                out.append(self.chunks.usage(counted))
        return out
