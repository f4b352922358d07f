"""OpenAI Chat Completions <-> Bedrock Converse, both ways (non-streaming half).

Converse is Bedrock's one message format for every chat model: ``system`` blocks,
strictly alternating ``user``/``assistant`` messages of content blocks (``text``,
``image`` as bytes, ``toolUse``, ``toolResult``), ``inferenceConfig`` and
``toolConfig``. JSON-schema output has no native switch in Converse, so it is asked
for with a forced tool whose input schema is the client's schema; the tool's input
is handed back as the message content, so the client sees plain JSON.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from modelmux.plugin import (
    Image,
    ImageFetcher,
    InvalidRequestError,
    RequestImages,
    parse_data_url,
    per_request,
    refuse_tool_choice_without_tools,
    refuse_unsupported,
    thinking_budget,
)

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

#: Image blocks still to fill in, with their URLs (fetched together once the request is translated).
Pending = list[tuple[str, dict[str, Any]]]
DEFAULT_OUTPUT_TOOL = "json_response"

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

_TOOL_NAME = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass
class ConverseCall:
    """A translated request: the Converse body and what the answer's translation must know."""

    payload: dict[str, Any]
    #: Name of the forced tool that carries JSON-schema output, if the client asked for it.
    output_tool: str | None = None
    include_usage: bool = False


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise InvalidRequestError(f"{where}[{i}]: only text parts are allowed here", param=f"{where}[{i}]")
            parts.append(str(part.get("text") or part.get("refusal") or ""))
        return "".join(parts)
    raise InvalidRequestError(f"{where}: must be a string or a list of parts", param=where)


def _user_blocks(content: Any, where: str, pending: Pending) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}: must be a string or a list of parts", param=where)
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            if not isinstance(url, str) or not url:
                raise InvalidRequestError(f"{where}[{i}].image_url.url: missing", param=f"{where}[{i}].image_url")
            # Converse's JSON protocol carries blob fields base64-encoded.
            image: dict[str, Any] = {"format": "", "source": {"bytes": ""}}
            if url.startswith("data:"):
                _fill(image, parse_data_url(url, IMAGE_TYPES))
            else:
                pending.append((url, image))
            blocks.append({"image": image})
        else:
            raise InvalidRequestError(
                f"{where}[{i}]: content part type {kind!r} is not supported by Bedrock Converse here; "
                "use text or image_url",
                param=f"{where}[{i}].type",
            )
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise InvalidRequestError(f"{where}: expected a function tool call", param=where)
    fn = call["function"]
    raw = fn.get("arguments") or "{}"
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"{where}.function.arguments: not valid JSON: {exc}", param=f"{where}.function.arguments"
        ) from exc
    if not isinstance(args, dict):
        raise InvalidRequestError(
            f"{where}.function.arguments: must be a JSON object", param=f"{where}.function.arguments"
        )
    if not call.get("id") or not fn.get("name"):
        raise InvalidRequestError(f"{where}: id and function.name are required", param=where)
    return {"toolUse": {"toolUseId": str(call["id"]), "name": str(fn["name"]), "input": args}}


def _fill(block: dict[str, Any], image: Image) -> None:
    block["format"] = image.media_type.split("/", 1)[1]
    block["source"]["bytes"] = image.base64


def _messages(
    messages: list[dict[str, Any]], pending: Pending
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """(system blocks, Converse messages, whether tool blocks occur)."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    has_tools = False

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        # Converse wants user and assistant turns to alternate: merge neighbours of one role
        # (several tool results, or tool results followed by a user message, are one user turn).
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for i, msg in enumerate(messages):
        role = msg.get("role")
        where = f"messages[{i}].content"
        content = msg.get("content")
        if role in ("system", "developer"):
            text = _text_of(content, where)
            if text:
                system.append({"text": text})
        elif role == "user":
            add("user", _user_blocks(content, where, pending))
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = _text_of(content, where)
            if text.strip():  # Converse rejects blank text blocks
                blocks.append({"text": text})
            for j, call in enumerate(msg.get("tool_calls") or []):
                blocks.append(_tool_use(call, f"messages[{i}].tool_calls[{j}]"))
                has_tools = True
            add("assistant", blocks)
        elif role in ("tool", "function"):
            call_id = msg.get("tool_call_id") or msg.get("name")
            if not call_id:
                raise InvalidRequestError(f"messages[{i}].tool_call_id: missing", param=f"messages[{i}].tool_call_id")
            text = _text_of(content, where)
            result = {"toolUseId": str(call_id), "content": [{"text": text or "(no output)"}]}
            add("user", [{"toolResult": result}])
            has_tools = True
        else:
            raise InvalidRequestError(f"messages[{i}].role: unknown role {role!r}", param=f"messages[{i}].role")
    return system, out, has_tools


def _tool_specs(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise InvalidRequestError(f"tools[{i}]: Bedrock takes function tools with a name", param=f"tools[{i}]")
        spec: dict[str, Any] = {
            "name": str(fn["name"]),
            "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}},
        }
        if fn.get("description"):
            spec["description"] = str(fn["description"])
        specs.append({"toolSpec": spec})
    return specs


def _tool_choice(choice: Any) -> dict[str, Any]:
    """Converse's toolChoice for OpenAI's auto / required / a named function."""
    if choice is None or choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict):
        fn = choice.get("function")
        if choice.get("type") == "function" and isinstance(fn, dict) and fn.get("name"):
            return {"tool": {"name": str(fn["name"])}}
    raise InvalidRequestError(
        f"tool_choice: expected 'none', 'auto', 'required' or a function; got {choice!r}", param="tool_choice"
    )


def _output_tool(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"name": DEFAULT_OUTPUT_TOOL, "schema": {"type": "object"}, "description": ""}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise InvalidRequestError(
                "response_format.json_schema.schema: a JSON schema object is required",
                param="response_format.json_schema",
            )
        name = _TOOL_NAME.sub("_", str(spec.get("name") or DEFAULT_OUTPUT_TOOL))[:64]
        return {"name": name, "schema": spec["schema"], "description": str(spec.get("description") or "")}
    raise InvalidRequestError(f"response_format.type: unknown type {kind!r}", param="response_format.type")


def is_claude(model: str) -> bool:
    """Anthropic's models on Bedrock: ``anthropic.claude-...``, inference profiles ``us.anthropic.claude-...``
    and the ARNs of either (an application inference profile's ARN names no model: not recognised)."""
    return "anthropic.claude" in model.lower()


async def to_converse(body: dict[str, Any], images: RequestImages | ImageFetcher, model: str = "") -> ConverseCall:
    """The Converse request body for an OpenAI chat completion request to ``model`` (the upstream id).

    Pass the request's ``UpstreamRequest.images`` so that retries and fallbacks reuse what was
    fetched; the whole request is checked before any image URL is fetched.
    """
    # The same fields, refused the same way, as for Claude on Vertex (docs/api-compatibility.md).
    refuse_unsupported(body, "Bedrock Converse")
    pending: Pending = []
    system, messages, has_tool_blocks = _messages(body["messages"], pending)
    if not messages:
        raise InvalidRequestError(
            "messages: at least one user or assistant message with content is required", param="messages"
        )
    payload: dict[str, Any] = {"messages": messages}
    if system:
        payload["system"] = system

    inference: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    # reasoning_effort is Claude's extended thinking, mapped as on Vertex; other models ignore it.
    thinking = thinking_budget(body) if is_claude(model) else None
    if thinking is not None:
        budget, max_tokens = thinking
        payload["additionalModelRequestFields"] = {"thinking": {"type": "enabled", "budget_tokens": budget}}
    if max_tokens:
        inference["maxTokens"] = int(max_tokens)
    if body.get("temperature") is not None:
        inference["temperature"] = float(body["temperature"])
    if body.get("top_p") is not None:
        inference["topP"] = float(body["top_p"])
    stop = body.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if inference:
        payload["inferenceConfig"] = inference

    tools = _tool_specs(body.get("tools") or [])
    choice_raw = body.get("tool_choice")
    refuse_tool_choice_without_tools(choice_raw, bool(tools))
    output = _output_tool(body.get("response_format"))
    output_name: str | None = None
    if output is not None and thinking is not None:
        raise InvalidRequestError(
            "response_format: Claude cannot force a JSON answer while reasoning_effort is set; drop one of them",
            param="response_format",
        )
    if output is not None:
        output_name = output["name"]
        description = output["description"] or "Give the final answer by calling this tool"
        spec = {
            "name": output_name,
            "description": f"{description}. Its input is the response, as JSON matching the schema.",
            "inputSchema": {"json": output["schema"]},
        }
        if choice_raw == "none" or not tools:
            tools, choice = [{"toolSpec": spec}], {"tool": {"name": output_name}}
        else:
            # The model may call the client's tools or answer through the output tool, nothing else.
            tools = [*tools, {"toolSpec": spec}]
            choice = _tool_choice(choice_raw) if isinstance(choice_raw, dict) else {"any": {}}
        payload["toolConfig"] = {"tools": tools, "toolChoice": choice}
    elif tools and choice_raw == "none":
        # Converse has no "none": leave the tools out, unless the conversation already holds tool
        # blocks, which Converse only accepts alongside a toolConfig (the model may then still call one).
        if has_tool_blocks:
            payload["toolConfig"] = {"tools": tools}
    elif tools:
        payload["toolConfig"] = {"tools": tools, "toolChoice": _tool_choice(choice_raw)}
    elif has_tool_blocks:
        raise InvalidRequestError(
            "the conversation holds tool calls or tool results, so Bedrock needs the tools too: send `tools`",
            param="tools",
        )

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if pending:
        loaded = await per_request(images).fetch_all([url for url, _ in pending], IMAGE_TYPES)
        for (_, block), image in zip(pending, loaded, strict=True):
            _fill(block, image)
    return ConverseCall(payload, output_name, include_usage)


def usage(raw: Any) -> dict[str, Any]:
    """OpenAI usage from Converse usage. ``inputTokens`` excludes cached tokens, OpenAI's
    ``prompt_tokens`` includes them: cache reads and writes are added, reads are reported
    as ``prompt_tokens_details.cached_tokens``."""
    raw = raw if isinstance(raw, dict) else {}
    read = int(raw.get("cacheReadInputTokens") or 0)
    write = int(raw.get("cacheWriteInputTokens") or 0)
    prompt = int(raw.get("inputTokens") or 0) + read + write
    completion = int(raw.get("outputTokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
    }


def finish_reason(stop_reason: Any, *, only_output_tool: bool) -> str:
    if stop_reason == "tool_use" and only_output_tool:
        return "stop"
    return STOP_REASONS.get(str(stop_reason), "stop")


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def to_completion(data: dict[str, Any], call: ConverseCall, model: str) -> dict[str, Any]:
    """An OpenAI chat.completion from a Converse response."""
    message = ((data.get("output") or {}).get("message")) or {}
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    output_json: str | None = None
    for block in message.get("content") or []:
        if "text" in block:
            texts.append(str(block["text"]))
        elif "reasoningContent" in block:
            reasoning.append(str(((block["reasoningContent"] or {}).get("reasoningText") or {}).get("text") or ""))
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input") or {}).decode()
            if call.output_tool is not None and use.get("name") == call.output_tool:
                output_json = arguments
                continue
            tool_calls.append(
                {
                    "id": str(use.get("toolUseId")),
                    "type": "function",
                    "function": {"name": str(use.get("name")), "arguments": arguments},
                }
            )
    # With JSON output the client gets exactly the JSON (any text the model wrote around it is dropped).
    content: str | None = output_json if output_json is not None else ("".join(texts) or None)
    out_message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        out_message["tool_calls"] = tool_calls
    if any(reasoning):
        out_message["reasoning_content"] = "".join(reasoning)  # the field DeepSeek and vLLM use
    reason = finish_reason(data.get("stopReason"), only_output_tool=output_json is not None and not tool_calls)
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": out_message, "logprobs": None, "finish_reason": reason}],
        "usage": usage(data.get("usage")),
    }
