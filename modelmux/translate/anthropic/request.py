"""Chat Completions request -> Anthropic Messages request.

Everything Claude can do is mapped; everything it cannot do (``n > 1``, logprobs,
penalties, audio, ...) is a 400 naming the field, never silently dropped (the list is
shared with the other translators: ``modelmux.translate.unsupported``). Fields
that only tune OpenAI's own service (``seed``, ``service_tier``, ``store``,
``metadata``) are ignored, as documented in docs/api-compatibility.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from modelmux.errors import InvalidRequestError
from modelmux.images import parse_data_url, per_request
from modelmux.translate.unsupported import refuse_tool_choice_without_tools, refuse_unsupported

if TYPE_CHECKING:
    from modelmux.images import ImageFetcher, RequestImages

#: Image sources still to fill in, with their URLs (fetched together once the request is translated).
Pending = list[tuple[str, dict[str, Any]]]

#: ``max_tokens`` is required by Anthropic; this is sent when the client gives none.
DEFAULT_MAX_TOKENS = 4096
#: Image types Claude accepts.
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
#: ``reasoning_effort`` -> ``thinking.budget_tokens`` (Anthropic's minimum budget is 1024).
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
#: The forced tool that carries a ``response_format`` answer; its input becomes the content.
JSON_TOOL_NAME = "json_response"

_TOOL_ID = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass
class AnthropicPlan:
    """The translated request, and what the answer's translation needs to know about it."""

    #: Anthropic Messages body without ``model`` / ``anthropic_version`` (the transport adds them).
    body: dict[str, Any]
    stream: bool = False
    include_usage: bool = False
    #: Name of the forced tool carrying a ``response_format`` answer, if any.
    json_tool: str | None = None
    #: Tool ids as the client sent them, by the sanitised id Anthropic saw.
    tool_ids: dict[str, str] = field(default_factory=dict)


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)


def _tool_id(raw: Any, param: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise _bad(f"{param}: a non-empty tool call id is required", param)
    return _TOOL_ID.sub("_", raw)


def _text_of(content: Any, param: str, *, allow: tuple[str, ...] = ("text",)) -> list[str]:
    """Texts of a string or list-of-parts content (system, developer, tool, assistant)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise _bad(f"{param}: must be a string or a list of content parts", param)
    out: list[str] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allow:
            raise _bad(
                f"{param}[{i}]: content part type {kind!r} is not supported here; use {' or '.join(allow)}",
                f"{param}[{i}].type",
                "unsupported_content_part",
            )
        out.append(str(part.get("text") if kind == "text" else part.get("refusal") or ""))
    return out


def _text_block(text: str, part: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if part is not None and isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]  # Anthropic prompt caching, passed on
    return block


def _user_blocks(content: Any, param: str, pending: Pending | None) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    if not isinstance(content, list):
        raise _bad(f"{param}: must be a string or a list of content parts", param)
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = str(part.get("text") or "")
            if text:
                blocks.append(_text_block(text, part))
        elif kind == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            if not isinstance(url, str) or not url:
                raise _bad(f"{where}.image_url.url: required", f"{where}.image_url.url")
            if url.startswith("data:"):
                image = parse_data_url(url, IMAGE_TYPES)
                source = {"type": "base64", "media_type": image.media_type, "data": image.base64}
            elif pending is None:
                raise _bad(f"{where}: image URLs are not supported here; send a data: URL", where)
            else:
                source = {"type": "base64", "media_type": "", "data": ""}
                pending.append((url, source))
            block: dict[str, Any] = {"type": "image", "source": source}
            if isinstance(part.get("cache_control"), dict):
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        elif kind == "file":
            spec = part.get("file") if isinstance(part.get("file"), dict) else {}
            data = spec.get("file_data")
            if not isinstance(data, str) or not data.startswith("data:"):
                raise _bad(
                    f"{where}: only inline PDF files (file.file_data as a data:application/pdf URL) are supported; "
                    "file_id references are not",
                    f"{where}.file",
                    "unsupported_content_part",
                )
            doc = parse_data_url(data, ("application/pdf",))
            blocks.append(
                {"type": "document", "source": {"type": "base64", "media_type": doc.media_type, "data": doc.base64}}
            )
        else:
            raise _bad(
                f"{where}: content part type {kind!r} is not supported by Claude; use text, image_url or file (PDF)",
                f"{where}.type",
                "unsupported_content_part",
            )
    return blocks


def _assistant_blocks(message: dict[str, Any], param: str, plan: AnthropicPlan) -> list[dict[str, Any]]:
    blocks = [_text_block(t) for t in _text_of(message.get("content"), f"{param}.content", allow=("text", "refusal"))]
    blocks = [b for b in blocks if b["text"]]
    for j, call in enumerate(message.get("tool_calls") or []):
        where = f"{param}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise _bad(f"{where}.function.name: required", f"{where}.function.name")
        raw_args = fn.get("arguments") or "{}"
        try:
            args = orjson.loads(raw_args) if isinstance(raw_args, str) else raw_args
        except orjson.JSONDecodeError as exc:
            raise _bad(f"{where}.function.arguments: not valid JSON ({exc})", f"{where}.function.arguments") from exc
        if not isinstance(args, dict):
            raise _bad(f"{where}.function.arguments: must be a JSON object", f"{where}.function.arguments")
        tid = _tool_id(call.get("id"), f"{where}.id")
        plan.tool_ids[tid] = call["id"]
        blocks.append({"type": "tool_use", "id": tid, "name": fn["name"], "input": args})
    return blocks


def _tool_result(message: dict[str, Any], param: str) -> dict[str, Any]:
    texts = [t for t in _text_of(message.get("content"), f"{param}.content") if t]
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(message.get("tool_call_id"), param)}
    if texts:
        block["content"] = texts[0] if len(texts) == 1 else [_text_block(t) for t in texts]
    return block


def _messages(
    messages: list[dict[str, Any]], pending: Pending | None, plan: AnthropicPlan
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:  # Anthropic wants alternating roles: merge
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_block(t) for t in _text_of(message.get("content"), f"{param}.content") if t)
        elif role == "user":
            add("user", _user_blocks(message.get("content"), f"{param}.content", pending))
        elif role == "assistant":
            add("assistant", _assistant_blocks(message, param, plan))
        elif role == "tool":
            add("user", [_tool_result(message, f"{param}.tool_call_id")])
        else:
            raise _bad(
                f"{param}.role: {role!r} is not supported by Claude; use system, developer, user, assistant or tool",
                f"{param}.role",
            )
    if not turns:
        raise _bad("messages: at least one user or assistant message with content is required", "messages")
    return system, turns


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(body.get("tools") or []):
        param = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise _bad(f"{param}.type: {kind!r} tools are not supported by Claude; use function tools", param)
        fn = tool.get("function")
        if not isinstance(fn, dict) or not fn.get("name"):
            raise _bad(f"{param}.function.name: required", f"{param}.function.name")
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        entry: dict[str, Any] = {"name": fn["name"], "input_schema": schema}
        if fn.get("description"):
            entry["description"] = fn["description"]
        out.append(entry)
    return out


def _tool_choice(choice: Any, has_tools: bool) -> dict[str, Any] | None:
    if choice is None:
        return None
    refuse_tool_choice_without_tools(choice, has_tools)
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise _bad(
        f"tool_choice: {orjson.dumps(choice).decode()[:120]} is not supported; use auto, none, required "
        'or {"type": "function", "function": {"name": ...}}',
        "tool_choice",
    )


def _response_format(body: dict[str, Any], tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A forced tool whose input schema is the requested JSON shape (None for text)."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        schema: dict[str, Any] = {"type": "object"}
        description = "Give your answer as a JSON object by calling this tool."
    elif kind == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
        schema = spec.get("schema") or {"type": "object"}
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise _bad(
                "response_format.json_schema.schema: Claude can only be constrained to a JSON object schema",
                "response_format.json_schema.schema",
            )
        description = spec.get("description") or f"Give your answer as JSON matching the {spec.get('name')} schema."
    else:
        raise _bad(
            f"response_format.type: {kind!r} is not supported; use text, json_object or json_schema",
            "response_format.type",
        )
    name = JSON_TOOL_NAME
    taken = {t["name"] for t in tools}
    while name in taken:
        name += "_"
    return {"name": name, "description": description, "input_schema": schema}


def _stop(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    items = [stop] if isinstance(stop, str) else stop
    # Anthropic refuses whitespace-only stop sequences; OpenAI clients send "\n" often.
    if any(not s.strip() for s in items):
        raise _bad("stop: Claude does not accept whitespace-only stop sequences", "stop")
    return list(items) or None


def thinking_budget(body: dict[str, Any], default_max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[int, int] | None:
    """Claude's extended thinking for ``reasoning_effort``: ``(budget_tokens, max_tokens)``, or None when off.

    One mapping for every way Claude is served (Anthropic Messages on Vertex AI, Converse on
    Bedrock), so each refuses the same requests with the same 400s.
    """
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
        shown = orjson.dumps(effort).decode()[:60]
        raise _bad(f"reasoning_effort: {shown} is not one of {', '.join(THINKING_BUDGETS)}, none", "reasoning_effort")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    budget = THINKING_BUDGETS[effort]
    if max_tokens is None:
        max_tokens = budget + default_max_tokens
    elif max_tokens <= 1024:
        raise _bad("max_tokens: with reasoning_effort it must exceed 1024 (thinking uses part of it)", "max_tokens")
    if body.get("temperature") not in (None, 1, 1.0):
        raise _bad("temperature: Claude does not allow changing it together with reasoning_effort", "temperature")
    return min(budget, max_tokens - 1), int(max_tokens)


async def to_anthropic(
    body: dict[str, Any],
    *,
    images: RequestImages | ImageFetcher | None = None,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
) -> AnthropicPlan:
    """Translate a validated Chat Completions body. Bad or unsupported input is a 400.

    ``images`` fetches http(s) image URLs (Claude on Vertex and Bedrock take no URL
    sources): pass the request's ``UpstreamRequest.images`` so that retries and fallbacks
    reuse what was fetched. Without it only ``data:`` URLs are accepted. The whole request
    is checked before any image is fetched.
    """
    refuse_unsupported(body, "Claude")
    plan = AnthropicPlan(body={}, stream=bool(body.get("stream")))
    plan.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    pending: Pending | None = [] if images is not None else None
    system, messages = _messages(body["messages"], pending, plan)
    out = plan.body
    out["messages"] = messages
    if system:
        out["system"] = system

    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    planned = thinking_budget(body, default_max_tokens)
    thinking = planned is not None
    if planned is not None:
        budget, max_tokens = planned
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    out["max_tokens"] = int(max_tokens or default_max_tokens)

    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = _stop(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    if plan.stream:
        out["stream"] = True

    tools = _tools(body)
    choice = _tool_choice(body.get("tool_choice"), bool(tools))
    json_tool = _response_format(body, tools)
    if json_tool is not None:
        if thinking:
            raise _bad(
                "response_format: Claude cannot force a JSON answer while reasoning_effort is set; drop one of them",
                "response_format",
            )
        plan.json_tool = json_tool["name"]
        if choice is not None and choice["type"] == "none":
            tools, choice = [], None  # no client tools may be called: only the JSON answer
        tools.append(json_tool)
        if choice is None or choice["type"] in ("auto", "any"):
            # Forced when alone; with client tools the model may call them or answer.
            choice = {"type": "tool", "name": json_tool["name"]} if len(tools) == 1 else {"type": "any"}
    if tools:
        out["tools"] = tools
        if body.get("parallel_tool_calls") is False:
            choice = dict(choice or {"type": "auto"})
            if choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
        if choice is not None:
            out["tool_choice"] = choice
    if pending:
        assert images is not None
        await fill_images(pending, images)
    return plan


async def fill_images(pending: Pending, images: RequestImages | ImageFetcher) -> None:
    """Fetch the pending images together (within the request's limits) and fill their sources in."""
    loaded = await per_request(images).fetch_all([url for url, _ in pending], IMAGE_TYPES)
    for (_, source), image in zip(pending, loaded, strict=True):
        source["media_type"] = image.media_type
        source["data"] = image.base64
