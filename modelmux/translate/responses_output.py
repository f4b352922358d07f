"""Chat completion (non-streaming) -> Response object."""

from __future__ import annotations

from typing import Any

from modelmux.errors import UpstreamError
from modelmux.translate.responses import ToolNames, call_item, finalize, new_id, usage_from_chat


def reasoning_of(message: dict[str, Any]) -> str | None:
    """Reasoning text the upstream gave (vLLM/DeepSeek ``reasoning_content``, newer ``reasoning``)."""
    text = message.get("reasoning_content")
    if not isinstance(text, str) or not text:
        text = message.get("reasoning")
    return text if isinstance(text, str) and text else None


def reasoning_item(text: str, item_id: str | None = None, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": item_id or new_id("rs"),
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": status,
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(parts: list[dict[str, Any]], item_id: str | None = None, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id or new_id("msg"),
        "role": "assistant",
        "status": status,
        "content": parts,
    }


def completion_to_response(completion: dict[str, Any], resp: dict[str, Any], names: ToolNames) -> dict[str, Any]:
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError("the upstream answered a chat completion without choices")
    choice = choices[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    thought = reasoning_of(message)
    if thought:
        output.append(reasoning_item(thought))
    parts = []
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(text_part(content))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(message_item(parts))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        output.append(
            call_item(
                call.get("id") or new_id("call"),
                str(fn.get("name", "")),
                str(fn.get("arguments") or ""),
                names,
                status="completed",
            )
        )
    return finalize(resp, output, usage_from_chat(completion.get("usage")), choice.get("finish_reason"))
