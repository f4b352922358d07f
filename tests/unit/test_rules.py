"""Request rules are declared once (pydantic models); the plain-Python check compiled from them
(``modelmux.rules``, the hot path) accepts exactly what the models accept for chat, and never
more than the models for any endpoint, so no request passes that the models would refuse."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelmux.errors import InvalidRequestError
from modelmux.rules import Rules, compile_check
from modelmux.schemas import CHAT_RULES, ChatCompletionRequest, Message
from modelmux.schemas_responses import ResponsesRequest

chat_is_valid = CHAT_RULES.fast
CHECKED_FIELDS = frozenset(ChatCompletionRequest.model_fields)
MESSAGE_FIELDS = frozenset(Message.model_fields)

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


def test_the_models_name_what_the_fast_check_refuses() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        CHAT_RULES.validate({**BASE, "temperature": 3})
    assert caught.value.param == "temperature" and "less than or equal to 2" in caught.value.message
    with pytest.raises(InvalidRequestError) as caught:
        CHAT_RULES.validate({"messages": BASE["messages"]})
    assert caught.value.message == "Missing required parameter: 'model'."


class _WithValidator(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str

    @field_validator("name")
    @classmethod
    def _upper(cls, v: str) -> str:
        if not v.isupper():
            raise ValueError("upper case only")
        return v


class _Patterned(BaseModel):
    name: str = Field(pattern=r"^[a-z]+$")


class _Forbidding(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str


def test_what_the_check_cannot_judge_goes_to_the_model() -> None:
    # A custom validator or an unknown constraint: the fast check says no, the model decides.
    assert compile_check(_WithValidator)({"name": "ABC"}) is False
    Rules(_WithValidator).validate({"name": "ABC"})
    with pytest.raises(InvalidRequestError):
        Rules(_WithValidator).validate({"name": "abc"})
    assert compile_check(_Patterned)({"name": "abc"}) is False
    with pytest.raises(InvalidRequestError):
        Rules(_Patterned).validate({"name": "ABC"})
    forbidding = compile_check(_Forbidding)
    assert forbidding({"name": "a"}) and not forbidding({"name": "a", "other": 1})


RESPONSES_BODIES: list[Any] = [
    {"model": "m", "input": "hi"},
    {"model": "m", "input": [{"role": "user", "content": "hi"}]},
    {"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]},
    {"model": "m", "input": "hi", "stream": True, "store": False, "instructions": "be brief"},
    {"model": "m", "input": "hi", "stream": "false"},
    {"model": "m", "input": "hi", "store": "false"},
    {"model": "m", "input": "hi", "temperature": 3},
    {"model": "m", "input": "hi", "max_output_tokens": 0},
    {"model": "m", "input": [{"role": "wizard", "content": "x"}]},
    {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
    {"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}}]},
    {"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}},
    {"model": "m", "input": "hi", "metadata": {"k": "v"}},
    {"model": "", "input": "hi"},
    {"input": "hi"},
    {"model": "m", "input": 5},
]


@pytest.mark.parametrize("body", RESPONSES_BODIES)
def test_the_responses_check_is_never_looser_than_its_model(body: dict[str, Any]) -> None:
    fast = compile_check(ResponsesRequest)(body)
    try:
        ResponsesRequest.model_validate(body)
        accepted = True
    except ValidationError:
        accepted = False
    assert not fast or accepted, body
