"""Validation of client requests: enough structure to give a clear 400, nothing more.

The validated body stays the client's own dict (providers that pass requests
through forward it unchanged); these models only check it. Unknown fields are
allowed: OpenAI adds fields often, and a provider decides what it can honour.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelmux.errors import InvalidRequestError


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


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidRequestError("The request body is empty. Send a JSON object.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError(f"The request body must be a JSON object, not {type(data).__name__}.")
    return data


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[ContentPart]", "function-after", "literal"):
            continue  # union branch names pydantic adds to locations
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_error(exc: ValidationError) -> InvalidRequestError:
    err = exc.errors()[0]
    param = _param(err["loc"])
    if err["type"] == "missing":
        message = f"Missing required parameter: '{param}'."
    else:
        shown = orjson.dumps(err.get("input"), default=str).decode()[:200]
        message = f"Invalid value for '{param}': {err['msg']} (got {shown})."
    more = len(exc.errors()) - 1
    if more > 0:
        message += f" ({more} more problem{'s' if more > 1 else ''} in the request)"
    return InvalidRequestError(
        message,
        param=param,
        code="invalid_value" if err["type"] != "missing" else "missing_required_parameter",
    )


def validate_chat(body: dict[str, Any]) -> None:
    if chat_is_valid(body):
        return
    try:
        ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


# A plain-Python check of the same rules, for the hot path: building the pydantic models costs
# about 1.5 µs a message (200 µs for a 150-message conversation, more than parsing its JSON).
# It accepts only what ``ChatCompletionRequest`` accepts (tests/test_chat_validation_fast.py
# checks both on many inputs); anything else goes to the models, which name the problem.
# The types are exact: JSON parsing makes no subclasses, and anything unusual takes the slow path.

_ROLES = frozenset(("system", "developer", "user", "assistant", "tool", "function"))
#: ChatCompletionRequest's fields with the types each may have (None: absent or null, always allowed).
_SIMPLE: dict[str, tuple[type, ...]] = {
    "stream": (bool,),
    "tools": (list,),
    "tool_choice": (str, dict),
    "parallel_tool_calls": (bool,),
    "response_format": (dict,),
    "user": (str,),
    "stop": (str, list),
}
#: Numeric fields: (types, minimum, maximum or None). ``int`` is a valid float, ``bool`` neither.
_NUMBERS: dict[str, tuple[tuple[type, ...], float, float | None]] = {
    "n": ((int,), 1, 128),
    "temperature": ((float, int), 0, 2),
    "top_p": ((float, int), 0, 1),
    "max_tokens": ((int,), 1, None),
    "max_completion_tokens": ((int,), 1, None),
}
#: Every field the check knows (a test keeps this equal to the model's fields).
CHECKED_FIELDS = frozenset(("model", "messages", "stream_options", *_SIMPLE, *_NUMBERS))
MESSAGE_FIELDS = frozenset(("role", "content", "name", "tool_calls", "tool_call_id"))


def chat_is_valid(body: dict[str, Any]) -> bool:
    """True only if ``ChatCompletionRequest`` accepts ``body`` (False: ask the model)."""
    model = body.get("model")
    messages = body.get("messages")
    if type(model) is not str or not model or type(messages) is not list or not messages:
        return False
    for key, types in _SIMPLE.items():
        value = body.get(key)
        if value is not None and type(value) not in types:
            return False
    for key, (types, low, high) in _NUMBERS.items():
        value = body.get(key)
        if value is not None and (type(value) not in types or value < low or (high is not None and value > high)):
            return False
    options = body.get("stream_options")
    if options is not None:
        if type(options) is not dict:
            return False
        # Not "in (None, True, False)": 1 == True, and the model refuses 1.
        usage = options.get("include_usage")
        if usage is not None and type(usage) is not bool:
            return False
    # Loops, not generator expressions: a generator per list costs more than the checks.
    for key in ("stop", "tools"):
        items = body.get(key)
        if type(items) is list:
            wanted = str if key == "stop" else dict
            for item in items:
                if type(item) is not wanted:
                    return False
    return _messages_are_valid(messages)


def _messages_are_valid(messages: list[Any]) -> bool:
    for message in messages:
        if type(message) is not dict:
            return False
        role = message.get("role")
        if type(role) is not str or role not in _ROLES:
            return False
        content = message.get("content")
        if content is not None and type(content) is not str:
            if type(content) is not list:
                return False
            for part in content:
                if type(part) is not dict or type(part.get("type")) is not str:
                    return False
        name, call_id = message.get("name"), message.get("tool_call_id")
        if (name is not None and type(name) is not str) or (call_id is not None and type(call_id) is not str):
            return False
        calls = message.get("tool_calls")
        if calls is not None:
            if type(calls) is not list:
                return False
            for call in calls:
                if type(call) is not dict:
                    return False
    return True
