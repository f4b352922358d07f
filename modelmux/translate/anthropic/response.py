"""Anthropic Messages answer -> Chat Completions answer."""

from __future__ import annotations

import time
from typing import Any

import orjson

from modelmux.errors import UpstreamError
from modelmux.translate.anthropic.request import AnthropicPlan

#: Anthropic ``stop_reason`` -> OpenAI ``finish_reason``.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, *, json_only: bool = False) -> str:
    reason = FINISH_REASONS.get(stop_reason or "end_turn", "stop")
    # The forced JSON tool is an answer, not a tool call, for the client.
    return "stop" if reason == "tool_calls" and json_only else reason


def usage_from_anthropic(usage: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI usage: prompt_tokens counts cached and cache-written input too, as OpenAI's does."""
    usage = usage or {}
    fresh = int(usage.get("input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = fresh + read + written
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
    }


def chat_id(message_id: Any) -> str:
    return f"chatcmpl-{message_id}" if message_id else f"chatcmpl-{time.time_ns():x}"


def from_anthropic(
    message: dict[str, Any], plan: AnthropicPlan, *, model: str, provider: str = "upstream"
) -> dict[str, Any]:
    """A ``chat.completion`` for an Anthropic ``message``; ``model`` is the name the client asked for."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamError(f"provider {provider}: the upstream answered something that is not a Messages answer")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    json_answer = False
    for block in message["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use" and plan.json_tool and block.get("name") == plan.json_tool:
            texts.append(orjson.dumps(block.get("input") or {}).decode())
            json_answer = True
        elif kind == "tool_use":
            tid = str(block.get("id"))
            calls.append(
                {
                    "id": plan.tool_ids.get(tid, tid),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        # redacted_thinking and server-tool blocks carry nothing the client can use
    if json_answer:
        texts = texts[-1:]  # the JSON only: text around the forced tool call is not JSON
    out_message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        out_message["tool_calls"] = calls
    if reasoning:
        out_message["reasoning_content"] = "".join(reasoning)
    return {
        "id": chat_id(message.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": out_message,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason"), json_only=json_answer and not calls),
            }
        ],
        "usage": usage_from_anthropic(message.get("usage")),
    }
