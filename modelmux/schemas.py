"""Chat Completions request rules: enough structure to give a clear 400, nothing more.

The validated body stays the client's own dict (providers that pass requests
through forward it unchanged); these models only check it, through ``rules.Rules`` (a fast
check compiled from them, the models themselves to name a problem). Unknown fields are
allowed: OpenAI adds fields often, and a provider decides what it can honour.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from modelmux.errors import InvalidRequestError
from modelmux.rules import Rules, validation_error


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class ContentPart(_Open):
    type: str


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(_Open):
    include_usage: bool | None = None


class ChatCompletionRequest(_Open):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None


def model_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model name (None: it can). It reaches response headers, log lines
    and upstream URLs: control and invisible characters (newline, NUL, DEL, ...) are refused."""
    if name.isprintable():
        return None
    bad = next(c for c in name if not c.isprintable())
    return (
        f"the model name contains the character U+{ord(bad):04X}, which is a control or invisible character; "
        "use a name from GET /v1/models, or PROVIDER/MODEL with the upstream's model id"
    )


def check_model_name(name: str) -> None:
    """A 400 for a model name with a control or invisible character (see ``model_name_problem``)."""
    problem = model_name_problem(name)
    if problem is not None:
        shown = orjson.dumps(name[:100]).decode()
        raise InvalidRequestError(f"Invalid value for 'model': {problem} (got {shown}).", param="model")


#: Deepest nesting of a request body's JSON. orjson reads 1,024 levels but writes only 254, and
#: the gateway writes what clients send (upstream bodies, translations that wrap tool schemas a
#: few levels deeper, stored responses, cache keys): the rest is the margin for that wrapping.
MAX_JSON_DEPTH = 128
#: orjson's encoder refuses anything nested deeper than this.
ENCODER_DEPTH = 254


def _probe() -> tuple[list[Any], list[Any]]:
    """One-element lists nested ``ENCODER_DEPTH - MAX_JSON_DEPTH`` deep: (outermost, innermost)."""
    inner: list[Any] = [None]
    outer = inner
    for _ in range(ENCODER_DEPTH - MAX_JSON_DEPTH - 1):
        outer = [outer]
    return outer, inner


_PROBE_OUTER, _PROBE_INNER = _probe()


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidRequestError("The request body is empty. Send a JSON object.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError(f"The request body must be a JSON object, not {type(data).__name__}.")
    # Nesting MAX_JSON_DEPTH + 1 levels takes at least twice as many bytes: small bodies skip the check.
    if len(raw) > 2 * MAX_JSON_DEPTH:
        check_depth(data)
    return data


def check_depth(data: dict[str, Any]) -> None:
    """A 400 if ``data`` nests deeper than MAX_JSON_DEPTH.

    The check is orjson's own encoder (C, about 0.1 ns a byte, its output dropped) run on the
    body wrapped in the levels between MAX_JSON_DEPTH and the encoder's limit: a walk in Python
    costs about ten times as much. Only a refused body is walked, to name the field.
    """
    _PROBE_INNER[0] = data  # no await until it is cleared: no other request sees it
    try:
        orjson.dumps(_PROBE_OUTER)
    except orjson.JSONEncodeError:
        param = _deep_field(data)
        raise InvalidRequestError(
            f"The request nests JSON more than {MAX_JSON_DEPTH} levels deep"
            + (f" (in '{param}')" if param else "")
            + f". Send at most {MAX_JSON_DEPTH} levels of nested objects and arrays.",
            param=param,
            code="json_too_deep",
        ) from None
    finally:
        _PROBE_INNER[0] = None


def _deep_field(data: dict[str, Any]) -> str | None:
    """Where the body nests too deep, as a parameter path (a few levels: enough to name the field)."""
    path = ""
    node: Any = data
    for level in range(1, 7):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, (dict, list)) and level + _depth(child, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
                path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else str(key))
                node = child
                break
        else:
            break
    return path or None


def _depth(node: Any, limit: int) -> int:
    """Nesting depth of ``node``, counted up to ``limit`` (a loop: deep input must not recurse)."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        item, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest >= limit:
                break
        values = item.values() if isinstance(item, dict) else item
        stack.extend((v, level + 1) for v in values if isinstance(v, (dict, list)))
    return deepest


#: The chat rules, checked fast and named by the model (modelmux/rules.py).
CHAT_RULES = Rules(ChatCompletionRequest)
validate_chat = CHAT_RULES.validate

__all__ = [
    "CHAT_RULES",
    "MAX_JSON_DEPTH",
    "ChatCompletionRequest",
    "check_model_name",
    "model_name_problem",
    "parse_json_object",
    "validate_chat",
    "validation_error",
]
