"""The plain-Python check of chat requests (the hot path) accepts exactly what the pydantic
models accept, so a request is never let through that the models would refuse with a 400."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from modelmux.schemas import (
    CHECKED_FIELDS,
    MESSAGE_FIELDS,
    ChatCompletionRequest,
    ContentPart,
    Message,
    StreamOptions,
    chat_is_valid,
)

_MISSING = object()
VALUES: list[Any] = [
    _MISSING,
    None,
    True,
    False,
    0,
    1,
    2,
    3,
    128,
    129,
    -1,
    0.0,
    0.5,
    1.0,
    1.5,
    2.0,
    2.5,
    "",
    "x",
    "user",
    "tool",
    [],
    ["x"],
    [1],
    [{}],
    [{"type": "text", "text": "hi"}],
    [{"type": 1}],
    [{"type": "text"}, "x"],
    [None],
    {},
    {"include_usage": True},
    {"include_usage": "yes"},
    {"include_usage": 1},
    {"include_usage": 0.0},
    {"include_usage": None},
    {"type": "json_object"},
]
BASE: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _model_accepts(body: dict[str, Any]) -> bool:
    try:
        ChatCompletionRequest.model_validate(body)
    except ValidationError:
        return False
    return True


def _with(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = dict(body)
    if value is _MISSING:
        out.pop(key, None)
    else:
        out[key] = value
    return out


def test_the_check_knows_every_field_of_the_models() -> None:
    # A field added to a model must be added to the check too (else it would go unchecked).
    assert set(ChatCompletionRequest.model_fields) == CHECKED_FIELDS
    assert set(Message.model_fields) == MESSAGE_FIELDS
    assert set(ContentPart.model_fields) == {"type"}
    assert set(StreamOptions.model_fields) == {"include_usage"}


@pytest.mark.parametrize("key", sorted(CHECKED_FIELDS | {"unknown_field"}))
def test_each_request_field_agrees_with_the_model(key: str) -> None:
    for value in VALUES:
        body = _with(BASE, key, value)
        assert chat_is_valid(body) == _model_accepts(body), (key, value)


@pytest.mark.parametrize("key", sorted(MESSAGE_FIELDS | {"refusal"}))
def test_each_message_field_agrees_with_the_model(key: str) -> None:
    for value, role in itertools.product(VALUES, ("user", "tool")):
        body = {**BASE, "messages": [{"role": "assistant", "content": "a"}, _with({"role": role}, key, value)]}
        assert chat_is_valid(body) == _model_accepts(body), (key, value)


def test_odd_messages_agree_with_the_model() -> None:
    for messages in ([], ["x"], [None], [[]], [{}], [{"role": "wizard"}], [{"role": "user"}] * 3):
        body = {**BASE, "messages": messages}
        assert chat_is_valid(body) == _model_accepts(body), messages


def test_everyday_requests_take_the_fast_path() -> None:
    long_conversation = [
        {"role": "system", "content": "be brief"},
        *(
            m
            for i in range(50)
            for m in (
                {"role": "user", "content": [{"type": "text", "text": f"q{i}"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": f"c{i}", "content": "result"},
            )
        ),
    ]
    bodies = [
        BASE,
        {**BASE, "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.2, "top_p": 1},
        {**BASE, "messages": long_conversation, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {**BASE, "stop": ["\n"], "max_tokens": 10, "n": 1, "user": "u", "response_format": {"type": "text"}},
        {**BASE, "tool_choice": "auto", "parallel_tool_calls": False, "seed": 7, "logprobs": True},
    ]
    for body in bodies:
        assert chat_is_valid(body) and _model_accepts(body)
