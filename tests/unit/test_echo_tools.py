"""The echo provider's tool calls and JSON answers (docs/api-compatibility.md, column echo): what
lets the examples and anyone without a model try a tool loop or structured output offline."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
TIME: Any = {"type": "function", "function": {"name": "get_time"}}  # no parameters at all


def ask(client: openai.OpenAI, text: str, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": text}], tools=[TIME, WEATHER], **extra
    ).choices[0]


def test_a_tool_the_message_names_is_called_with_arguments_from_the_message(client: openai.OpenAI) -> None:
    choice = ask(client, "Use get_weather for the next 3 days in Paris")
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}


@pytest.mark.parametrize(
    ("text", "tool_choice", "called"),
    [
        ("what is the weather in Paris", None, None),  # auto: only a named tool
        ("what is the weather in Paris", "required", "get_time"),  # forced: the first tool
        ("use get_weather for Paris", "required", "get_weather"),
        ("use get_weather for Paris", {"type": "function", "function": {"name": "get_time"}}, "get_time"),
        ("use get_weather for Paris", "none", None),
        ("get_weathers is not a tool name", "auto", None),  # whole words only
    ],
)
def test_tool_choice(client: openai.OpenAI, text: str, tool_choice: Any, called: str | None) -> None:
    extra = {} if tool_choice is None else {"tool_choice": tool_choice}
    choice = ask(client, text, **extra)
    if called is None:
        assert choice.finish_reason == "stop" and choice.message.content == text and not choice.message.tool_calls
    else:
        assert choice.finish_reason == "tool_calls" and choice.message.tool_calls[0].function.name == called


def test_a_tool_without_parameters_gets_an_empty_object(client: openai.OpenAI) -> None:
    assert ask(client, "get_time please").message.tool_calls[0].function.arguments == "{}"


def test_after_tool_results_the_answer_is_their_text(client: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "use get_weather and get_time for Paris"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "noon"}]},
    ]
    choice = client.chat.completions.create(model="echo", messages=messages, tools=[WEATHER, TIME]).choices[0]
    assert choice.finish_reason == "stop" and choice.message.content == "sunny\nnoon"


def test_a_streamed_tool_call_arrives_as_openai_streams_one(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "get_weather in 2 days for Oslo"}],
            tools=[WEATHER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    calls = [c.choices[0].delta.tool_calls[0].function for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0] and calls[0].name == "get_weather"
    first: Any = next(c for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert first.choices[0].delta.tool_calls[0].id.startswith("call_")
    assert json.loads("".join(c.arguments or "" for c in calls if c)) == {"city": "Oslo", "days": 2}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "score": {"type": "number"},
        "ok": {"type": "boolean"},
        "mood": {"enum": ["happy", "sad"]},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
        "tree": {"$ref": "#/$defs/Node"},  # recursive: must still end
    },
    "required": ["name", "score", "ok", "mood", "note", "tags", "tree"],
    "additionalProperties": False,
    "$defs": {
        "Tag": {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]},
        "Node": {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            "required": ["children"],
        },
    },
}


def test_json_schema_answers_fit_the_schema(client: openai.OpenAI) -> None:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "thing", "schema": SCHEMA, "strict": True}}
    content = (
        client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "rated 4.5 by Ada"}], response_format=fmt
        )
        .choices[0]
        .message.content
    )
    answer = json.loads(content or "")
    jsonschema.validate(answer, SCHEMA)
    assert answer["name"] == "Ada" and answer["score"] == 4.5 and answer["tags"] == [{"label": "Ada"}]


@pytest.mark.parametrize(
    ("text", "answer"), [('{"a": 1}', {"a": 1}), ("plain words", {"text": "plain words"}), ("[1]", {"text": "[1]"})]
)
def test_json_object_answers_are_json_objects(client: openai.OpenAI, text: str, answer: dict[str, Any]) -> None:
    content = (
        client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": text}], response_format={"type": "json_object"}
        )
        .choices[0]
        .message.content
    )
    assert json.loads(content or "") == answer


def test_the_responses_api_tool_loop_and_text_format(client: openai.OpenAI) -> None:
    tool: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
    first = client.responses.create(model="echo", input="get_weather in 5 days for Rome", tools=[tool])
    (call,) = first.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Rome", "days": 5}
    done = client.responses.create(
        model="echo",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "warm"}],
        tools=[tool],
    )
    assert done.output_text == "warm"
    fmt: Any = {"type": "json_schema", "name": "thing", "schema": SCHEMA, "strict": True}
    jsonschema.validate(
        json.loads(client.responses.create(model="echo", input="x", text={"format": fmt}).output_text), SCHEMA
    )
