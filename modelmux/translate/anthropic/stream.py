"""Anthropic Messages stream events -> ``chat.completion.chunk`` dicts.

One id for every chunk; a first chunk with the role; text, reasoning and tool-call
deltas (each parallel tool call has its own ``index``: id and name first, then
argument fragments); a final chunk with ``finish_reason``; a usage chunk when the
client asked for one. An upstream ``error`` event, or a stream that ends before
``message_stop``, is raised as a ``ModelMuxError`` from the generator: the host
turns it into a final SSE error event, so the client never sees a truncated answer
as a success.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from modelmux.errors import UpstreamError
from modelmux.translate.anthropic.errors import error_from_event
from modelmux.translate.anthropic.request import AnthropicPlan
from modelmux.translate.anthropic.response import chat_id, finish_reason, usage_from_anthropic
from modelmux.translate.chunks import Chunks


async def stream_from_anthropic(
    events: AsyncIterable[dict[str, Any]],
    plan: AnthropicPlan,
    *,
    model: str,
    provider: str = "upstream",
) -> AsyncIterator[dict[str, Any]]:
    """Translate decoded Anthropic stream events (``{"type": "message_start", ...}``) as they arrive."""
    chunks = Chunks(chat_id(None), model)
    chunk = chunks.delta
    usage: dict[str, Any] = {}
    stop_reason: str | None = None
    started = False
    #: Anthropic content-block index -> ("text" | "thinking" | "json" | "tool", OpenAI tool index)
    blocks: dict[int, tuple[str, int]] = {}
    tool_count = 0
    json_answer = False

    async for event in events:
        kind = event.get("type")
        if kind == "error":
            raise error_from_event(provider, event)
        if kind == "message_start":
            message = event.get("message") or {}
            chunks.id = chat_id(message.get("id"))
            usage.update(message.get("usage") or {})
            started = True
            yield chunk({"role": "assistant", "content": ""})
            continue
        if not started:
            if kind == "ping":
                continue
            raise UpstreamError(f"provider {provider}: the upstream stream did not start with message_start")
        if kind == "content_block_start":
            index = int(event.get("index", 0))
            block = event.get("content_block") or {}
            btype = block.get("type")
            if btype == "tool_use" and plan.json_tool and block.get("name") == plan.json_tool:
                blocks[index] = ("json", 0)
                json_answer = True
            elif btype == "tool_use":
                blocks[index] = ("tool", tool_count)
                tid = str(block.get("id"))
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": tool_count,
                                "id": plan.tool_ids.get(tid, tid),
                                "type": "function",
                                "function": {"name": block.get("name"), "arguments": ""},
                            }
                        ]
                    }
                )
                tool_count += 1
            elif btype in ("text", "thinking"):
                blocks[index] = (btype, 0)
                text = block.get(btype) or ""
                if text:
                    yield chunk({"content": text} if btype == "text" else {"reasoning_content": text})
            else:
                blocks[index] = ("other", 0)
        elif kind == "content_block_delta":
            role, tool_index = blocks.get(int(event.get("index", 0)), ("other", 0))
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta" and delta.get("text"):
                yield chunk({"content": delta["text"]})
            elif dtype == "thinking_delta" and delta.get("thinking"):
                yield chunk({"reasoning_content": delta["thinking"]})
            elif dtype == "input_json_delta" and delta.get("partial_json"):
                if role == "json":
                    yield chunk({"content": delta["partial_json"]})
                elif role == "tool":
                    yield chunk(
                        {"tool_calls": [{"index": tool_index, "function": {"arguments": delta["partial_json"]}}]}
                    )
        elif kind == "message_delta":
            stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            yield chunk({}, finish_reason(stop_reason, json_only=json_answer and tool_count == 0))
            if plan.include_usage:
                yield chunks.usage(usage_from_anthropic(usage))
            return
        # ping, content_block_stop and unknown future events need nothing
    raise UpstreamError(
        f"provider {provider}: the upstream stream ended before message_stop", code="upstream_stream_truncated"
    )
