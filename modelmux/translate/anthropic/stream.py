"""Anthropic Messages stream events -> ``chat.completion.chunk`` dicts.

One id for every chunk; a first chunk with the role; text, reasoning and tool-call
deltas (each parallel tool call has its own ``index``: id and name first, then
argument fragments); a final chunk with ``finish_reason``; a usage chunk when the
client asked for one. An upstream ``error`` event, or a stream that ends before
``message_stop``, is raised as a ``ModelMuxError``: the host turns it into a final
SSE error event, so the client never sees a truncated answer as a success.

``AnthropicStream`` does the work event by event and synchronously, so a provider
can translate every event of one network read in one go and hand the host one
batch (``DictEventStream(..., batched=True)``); ``stream_from_anthropic`` is the
same as an async generator of single chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from modelmux.errors import UpstreamError
from modelmux.translate.anthropic.errors import error_from_event
from modelmux.translate.anthropic.request import AnthropicPlan
from modelmux.translate.anthropic.response import chat_id, finish_reason, usage_from_anthropic
from modelmux.translate.chunks import Chunks


class AnthropicStream:
    """The translation state of one stream. ``feed`` each decoded event, then ``finish``."""

    __slots__ = (
        "_blocks",
        "_chunks",
        "_json_answer",
        "_plan",
        "_provider",
        "_stop_reason",
        "_tool_count",
        "done",
        "started",
        "usage",
    )

    def __init__(self, plan: AnthropicPlan, *, model: str, provider: str = "upstream") -> None:
        self._plan = plan
        self._provider = provider
        self._chunks = Chunks(chat_id(None), model)
        self.usage: dict[str, Any] = {}
        self.started = False
        #: True once ``message_stop`` arrived: the answer is complete, later events are not read.
        self.done = False
        #: Anthropic content-block index -> ("text" | "thinking" | "json" | "tool" | "other", OpenAI tool index)
        self._blocks: dict[int, tuple[str, int]] = {}
        self._tool_count = 0
        self._json_answer = False
        self._stop_reason: str | None = None

    def feed(self, event: dict[str, Any], out: list[dict[str, Any]]) -> bool:
        """Append the chunks of one event to ``out``; True once the stream is complete."""
        kind = event.get("type")
        if kind == "content_block_delta" and self.started:  # nearly every event: checked first
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                if delta.get("text"):
                    out.append(self._chunks.delta({"content": delta["text"]}))
            elif dtype == "thinking_delta":
                if delta.get("thinking"):
                    out.append(self._chunks.delta({"reasoning_content": delta["thinking"]}))
            elif dtype == "input_json_delta" and delta.get("partial_json"):
                role, tool_index = self._blocks.get(int(event.get("index", 0)), ("other", 0))
                if role == "json":
                    out.append(self._chunks.delta({"content": delta["partial_json"]}))
                elif role == "tool":
                    fragment = {"index": tool_index, "function": {"arguments": delta["partial_json"]}}
                    out.append(self._chunks.delta({"tool_calls": [fragment]}))
            return False
        if kind == "error":
            raise error_from_event(self._provider, event)
        if kind == "message_start":
            message = event.get("message") or {}
            self._chunks.id = chat_id(message.get("id"))
            self.usage.update(message.get("usage") or {})
            self.started = True
            out.append(self._chunks.delta({"role": "assistant", "content": ""}))
            return False
        if not self.started:
            if kind == "ping":
                return False
            raise UpstreamError(f"provider {self._provider}: the upstream stream did not start with message_start")
        if kind == "content_block_start":
            self._block_start(int(event.get("index", 0)), event.get("content_block") or {}, out)
        elif kind == "message_delta":
            self._stop_reason = (event.get("delta") or {}).get("stop_reason") or self._stop_reason
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            json_only = self._json_answer and self._tool_count == 0
            out.append(self._chunks.delta({}, finish_reason(self._stop_reason, json_only=json_only)))
            if self._plan.include_usage:
                out.append(self._chunks.usage(usage_from_anthropic(self.usage)))
            self.done = True
            return True
        # ping, content_block_stop and unknown future events need nothing
        return False

    def _block_start(self, index: int, block: dict[str, Any], out: list[dict[str, Any]]) -> None:
        btype = block.get("type")
        plan = self._plan
        if btype == "tool_use" and plan.json_tool and block.get("name") == plan.json_tool:
            self._blocks[index] = ("json", 0)
            self._json_answer = True
        elif btype == "tool_use":
            self._blocks[index] = ("tool", self._tool_count)
            tid = str(block.get("id"))
            call = {
                "index": self._tool_count,
                "id": plan.tool_ids.get(tid, tid),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            out.append(self._chunks.delta({"tool_calls": [call]}))
            self._tool_count += 1
        elif btype in ("text", "thinking"):
            self._blocks[index] = (btype, 0)
            text = block.get(btype) or ""
            if text:
                out.append(self._chunks.delta({"content": text} if btype == "text" else {"reasoning_content": text}))
        else:
            self._blocks[index] = ("other", 0)

    def finish(self) -> None:
        """The upstream stream ended: an error unless ``message_stop`` came."""
        if not self.done:
            raise UpstreamError(
                f"provider {self._provider}: the upstream stream ended before message_stop",
                code="upstream_stream_truncated",
            )


async def stream_from_anthropic(
    events: AsyncIterable[dict[str, Any]],
    plan: AnthropicPlan,
    *,
    model: str,
    provider: str = "upstream",
) -> AsyncIterator[dict[str, Any]]:
    """Translate decoded Anthropic stream events (``{"type": "message_start", ...}``) as they arrive."""
    stream = AnthropicStream(plan, model=model, provider=provider)
    out: list[dict[str, Any]] = []
    async for event in events:
        done = stream.feed(event, out)
        for chunk in out:
            yield chunk
        out.clear()
        if done:
            return
    stream.finish()
