"""Responses API <-> Chat Completions: what the request, response and stream sides share.

The translation is split by direction: ``responses_request`` builds the chat body from
a Responses request (and the stored conversation), ``responses_output`` turns a chat
completion into a Response object, ``responses_stream`` turns chat chunks into the
Responses event sequence as they arrive. This module holds their common vocabulary:
ids, how tool names are flattened for chat upstreams and mapped back, usage.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

#: ``namespace`` tool groups become chat functions named NAMESPACE + NS_SEP + NAME.
NS_SEP = "__"

#: "gateway": a built-in tool the gateway runs itself (``modelmux/tool_loop.py``), never a client item.
ToolKind = Literal["function", "custom", "gateway"]


def new_id(prefix: str) -> str:
    """An OpenAI-style id: ``resp_...``, ``msg_...``, ``fc_...``, ``rs_...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


def flat_name(namespace: str | None, name: str) -> str:
    return f"{namespace}{NS_SEP}{name}" if namespace else name


@dataclass(frozen=True, slots=True)
class ToolOrigin:
    name: str
    namespace: str | None = None
    kind: ToolKind = "function"


@dataclass
class ToolNames:
    """Chat function name -> the Responses tool it stands for (to map calls back)."""

    by_flat: dict[str, ToolOrigin] = field(default_factory=dict)

    def origin(self, flat: str) -> ToolOrigin:
        # a name we did not send (the model made it up): report it as a plain function call
        return self.by_flat.get(flat) or ToolOrigin(flat)


def call_item(
    call_id: str, flat: str, arguments: str, names: ToolNames, *, item_id: str | None = None, status: str
) -> dict[str, Any]:
    """The output item for one chat tool call: a ``function_call`` or a ``custom_tool_call``."""
    origin = names.origin(flat)
    if origin.kind == "custom":
        item: dict[str, Any] = {
            "type": "custom_tool_call",
            "id": item_id or new_id("ctc"),
            "call_id": call_id,
            "name": origin.name,
            "input": custom_input(arguments),
            "status": status,
        }
    else:
        item = {
            "type": "function_call",
            "id": item_id or new_id("fc"),
            "call_id": call_id,
            "name": origin.name,
            "arguments": arguments,
            "status": status,
        }
    if origin.namespace:
        item["namespace"] = origin.namespace
    return item


def custom_input(arguments: str) -> str:
    """A custom tool is sent to chat upstreams as a function with one string parameter ``input``."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    return arguments


def usage_from_chat(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat ``usage`` -> Responses ``usage`` with both details objects."""
    if not usage:
        return None
    inp = int(usage.get("prompt_tokens") or 0)
    out = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": inp,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
        },
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or inp + out),
    }


_ECHOED = (
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "previous_response_id",
    "temperature",
    "top_p",
    "top_logprobs",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt",
)


def echo_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The request's tools as the Response reports them: the fields the spec requires, as null when unset."""
    out = []
    for tool in tools or []:
        tool = dict(tool)
        if tool.get("type") == "function":
            tool.setdefault("parameters", None)
            tool.setdefault("strict", None)
        elif tool.get("type") == "namespace":
            tool.setdefault("description", "")
        out.append(tool)
    return out


#: Echoed as null when the request did not set them (the spec requires or allows null).
_NULLABLE = ("instructions", "max_output_tokens", "previous_response_id", "temperature", "top_p")


def response_skeleton(body: dict[str, Any], response_id: str | None = None) -> dict[str, Any]:
    """The Response object for ``body`` before any output: status ``in_progress``."""
    text = dict(body.get("text") or {})
    text.setdefault("format", {"type": "text"})
    resp: dict[str, Any] = {
        "id": response_id or new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "model": body.get("model"),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "metadata": body.get("metadata") or {},
        "reasoning": body.get("reasoning"),
        "service_tier": "default",
        "store": body.get("store") is not False,
        "text": text,
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": echo_tools(body.get("tools")),
        "truncation": body.get("truncation") or "disabled",
    }
    for key in _ECHOED:
        if key in _NULLABLE or body.get(key) is not None:
            resp[key] = body.get(key)
    return resp


def finalize(
    resp: dict[str, Any],
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    finish_reason: str | None,
) -> dict[str, Any]:
    """Set status, output and usage once the answer is complete."""
    resp["output"] = output
    if usage is not None:  # not nullable in the spec: absent when the upstream gave none
        resp["usage"] = usage
    if finish_reason in ("length", "content_filter"):
        resp["status"] = "incomplete"
        resp["incomplete_details"] = {"reason": "max_output_tokens" if finish_reason == "length" else "content_filter"}
        for item in output:
            if item.get("status") == "completed":
                item["status"] = "incomplete"
    else:
        resp["status"] = "completed"
        resp["completed_at"] = int(time.time())
    return resp


def failed(resp: dict[str, Any], message: str, output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    resp["status"] = "failed"
    resp["error"] = {"code": "server_error", "message": message}
    resp["output"] = output or []
    return resp
