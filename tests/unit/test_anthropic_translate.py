"""Chat Completions <-> Anthropic Messages translation, both directions, streaming included."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelmux.errors import (
    InvalidRequestError,
    RateLimitError,
    UpstreamError,
    UpstreamRequestError,
    UpstreamUnavailableError,
)
from modelmux.testing import validate
from modelmux.translate.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicPlan,
    from_anthropic,
    stream_from_anthropic,
    to_anthropic,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


async def translate(body: dict[str, Any]) -> dict[str, Any]:
    return (await to_anthropic(body)).body


async def bad(body: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        await to_anthropic(body)
    return info.value


# --- request side --------------------------------------------------------------------------


async def test_system_and_developer_become_top_level_system_in_order() -> None:
    out = await translate(
        chat(
            {"role": "system", "content": "Be brief."},
            user("Hi"),
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            user("Again"),
        )
    )
    assert out["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}]
    # not inlined into a user turn; the two user turns are merged, as Anthropic alternates roles
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Again"}]}
    ]
    assert out["max_tokens"] == DEFAULT_MAX_TOKENS
    assert "model" not in out and "anthropic_version" not in out


async def test_text_and_data_url_image_parts() -> None:
    out = await translate(
        chat(user([{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]))
    )
    text, image = out["messages"][0]["content"]
    assert text == {"type": "text", "text": "What is it?"}
    assert image == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
    }


async def test_http_image_without_fetcher_and_unsupported_parts_are_400s() -> None:
    err = await bad(chat(user([{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}])))
    assert err.status_code == 400 and "data: URL" in err.message
    err = await bad(chat(user([{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}])))
    assert err.param == "messages[0].content[0].type" and "input_audio" in err.message
    err = await bad(chat(user([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}])))
    assert "image/bmp" in err.message


async def test_pdf_file_part_becomes_a_document() -> None:
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 test").decode()
    out = await translate(chat(user([{"type": "file", "file": {"filename": "a.pdf", "file_data": pdf}}])))
    assert out["messages"][0]["content"][0]["type"] == "document"
    err = await bad(chat(user([{"type": "file", "file": {"file_id": "file-123"}}])))
    assert "file_id" in err.message


async def test_tool_calls_and_results_round_trip() -> None:
    out = await translate(
        chat(
            user("Weather in Paris and Tokyo?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {"id": "call.2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call.2", "content": [{"type": "text", "text": "25C"}]},
            user("Thanks"),
            tools=[WEATHER],
        )
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
        ],
    }
    # consecutive tool messages: one user turn of tool_result blocks, merged with the next user text
    assert out["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "25C"},
            {"type": "text", "text": "Thanks"},
        ],
    }
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather of a city",
            "input_schema": WEATHER["function"]["parameters"],
        }
    ]


async def test_invalid_tool_arguments_are_a_400() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
    err = await bad(chat(user("x"), {"role": "assistant", "tool_calls": [call]}))
    assert err.param == "messages[1].tool_calls[0].function.arguments"


async def test_tools_without_description_or_parameters() -> None:
    out = await translate(chat(user("x"), tools=[{"type": "function", "function": {"name": "ping"}}]))
    assert out["tools"] == [{"name": "ping", "input_schema": {"type": "object", "properties": {}}}]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
async def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    extra: dict[str, Any] = {"tools": [WEATHER]}
    if choice is not None:
        extra["tool_choice"] = choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    assert (await translate(chat(user("x"), **extra)))["tool_choice"] == expected


async def test_tool_choice_without_tools_is_a_400() -> None:
    assert (await bad(chat(user("x"), tool_choice="required"))).param == "tool_choice"


async def test_sampling_and_limits() -> None:
    out = await translate(
        chat(user("x"), max_tokens=100, temperature=0.5, top_p=0.9, stop="END", user="user-42", seed=7)
    )
    assert out["max_tokens"] == 100 and out["temperature"] == 0.5 and out["top_p"] == 0.9
    assert out["stop_sequences"] == ["END"] and out["metadata"] == {"user_id": "user-42"}
    out = await translate(chat(user("x"), max_tokens=100, max_completion_tokens=50, stop=["a", "b"]))
    assert out["max_tokens"] == 50 and out["stop_sequences"] == ["a", "b"]
    plan = await to_anthropic(chat(user("x"), stream=True, stream_options={"include_usage": True}))
    assert plan.body["stream"] is True and plan.include_usage


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 1),
        ("logit_bias", {"50256": -100}),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("functions", [{"name": "f"}]),
    ],
)
async def test_things_claude_cannot_do_are_400s(field: str, value: Any) -> None:
    err = await bad(chat(user("x"), **{field: value}))
    assert err.status_code == 400 and err.param == field and field in err.message


async def test_defaults_of_unsupported_fields_are_accepted() -> None:
    await translate(chat(user("x"), n=1, logprobs=False, presence_penalty=0, frequency_penalty=0.0, logit_bias={}))


async def test_json_schema_by_forced_tool() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    plan = await to_anthropic(
        chat(user("x"), response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    )
    assert plan.json_tool == "json_response"
    assert plan.body["tools"][0]["name"] == "json_response" and plan.body["tools"][0]["input_schema"] == schema
    assert plan.body["tool_choice"] == {"type": "tool", "name": "json_response"}
    # with the client's own tools, the model must call one of them or answer in JSON
    plan = await to_anthropic(chat(user("x"), tools=[WEATHER], response_format={"type": "json_object"}))
    assert [t["name"] for t in plan.body["tools"]] == ["get_weather", "json_response"]
    assert plan.body["tool_choice"] == {"type": "any"}
    plan = await to_anthropic(chat(user("x"), response_format={"type": "text"}))
    assert plan.json_tool is None and "tools" not in plan.body


async def test_reasoning_effort_becomes_a_thinking_budget() -> None:
    out = await translate(chat(user("x"), reasoning_effort="low"))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert out["max_tokens"] == 2048 + DEFAULT_MAX_TOKENS
    out = await translate(chat(user("x"), reasoning_effort="high", max_completion_tokens=5000))
    assert out["thinking"]["budget_tokens"] == 4999 and out["max_tokens"] == 5000
    assert "thinking" not in await translate(chat(user("x"), reasoning_effort="none"))
    assert (await bad(chat(user("x"), reasoning_effort="medium", temperature=0.2))).param == "temperature"
    assert (await bad(chat(user("x"), reasoning_effort="extreme"))).param == "reasoning_effort"


# --- response side -------------------------------------------------------------------------


def message(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def test_text_answer_with_the_client_model_name() -> None:
    out = from_anthropic(message([{"type": "text", "text": "Hello"}]), AnthropicPlan({}), model="my-claude")
    validate("CreateChatCompletionResponse", out)
    assert out["model"] == "my-claude" and out["object"] == "chat.completion"
    assert out["choices"][0]["message"]["content"] == "Hello"
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    out = from_anthropic(message([{"type": "text", "text": "x"}], stop), AnthropicPlan({}), model="m")
    assert out["choices"][0]["finish_reason"] == finish


def test_tool_use_thinking_and_cached_tokens() -> None:
    plan = AnthropicPlan({}, tool_ids={"call_2": "call.2"})
    out = from_anthropic(
        message(
            [
                {"type": "thinking", "thinking": "Two cities.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xyz"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Tokyo"}},
            ],
            "tool_use",
            cache_read_input_tokens=100,
            cache_creation_input_tokens=20,
        ),
        plan,
        model="m",
    )
    validate("CreateChatCompletionResponse", out)
    msg = out["choices"][0]["message"]
    assert msg["content"] is None and msg["reasoning_content"] == "Two cities."
    assert msg["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call.2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'}},
    ]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"]["prompt_tokens"] == 130 and out["usage"]["prompt_tokens_details"] == {"cached_tokens": 100}


def test_forced_json_tool_is_plain_content() -> None:
    plan = AnthropicPlan({}, json_tool="json_response")
    out = from_anthropic(
        message([{"type": "tool_use", "id": "t", "name": "json_response", "input": {"a": 1}}], "tool_use"),
        plan,
        model="m",
    )
    assert out["choices"][0]["message"]["content"] == '{"a":1}'
    assert "tool_calls" not in out["choices"][0]["message"]
    assert out["choices"][0]["finish_reason"] == "stop"


def test_not_a_message_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        from_anthropic({"type": "error"}, AnthropicPlan({}), model="m")


# --- streaming -----------------------------------------------------------------------------


async def events(*items: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


def start(**usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {"id": "msg_s", "role": "assistant", "content": [], "usage": {"input_tokens": 7, **usage}},
    }


def block(index: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": content}


def delta(index: int, d: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": d}


def finish(stop: str, out: int = 3) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": out}},
        {"type": "message_stop"},
    ]


async def run(plan: AnthropicPlan, *items: dict[str, Any]) -> list[dict[str, Any]]:
    out = [c async for c in stream_from_anthropic(events(*items), plan, model="my-claude")]
    for c in out:
        validate("CreateChatCompletionStreamResponse", c)
    return out


async def test_stream_text_one_id_role_first_finish_and_usage() -> None:
    out = await run(
        AnthropicPlan({}, include_usage=True),
        start(cache_read_input_tokens=4),
        {"type": "ping"},
        block(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": "Hel"}),
        delta(0, {"type": "text_delta", "text": "lo"}),
        {"type": "content_block_stop", "index": 0},
        *finish("end_turn"),
    )
    assert len({c["id"] for c in out}) == 1 and out[0]["id"] == "chatcmpl-msg_s"
    assert {c["model"] for c in out} == {"my-claude"}
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in out[1:3]] == ["Hel", "lo"]
    assert out[3]["choices"][0]["finish_reason"] == "stop"
    assert out[4]["choices"] == [] and out[4]["usage"]["prompt_tokens"] == 11
    assert out[4]["usage"]["completion_tokens"] == 3 and out[4]["usage"]["prompt_tokens_details"]["cached_tokens"] == 4


async def test_stream_parallel_tool_calls_have_distinct_indexes() -> None:
    out = await run(
        AnthropicPlan({}),
        start(),
        block(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": "Checking."}),
        block(1, {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
        delta(1, {"type": "input_json_delta", "partial_json": ""}),
        delta(1, {"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
        delta(1, {"type": "input_json_delta", "partial_json": 'ris"}'}),
        block(2, {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {}}),
        delta(2, {"type": "input_json_delta", "partial_json": '{"city": "Tokyo"}'}),
        *finish("tool_use"),
    )
    calls = [tc for c in out for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert calls[1:3] == [
        {"index": 0, "function": {"arguments": '{"city": "Pa'}},
        {"index": 0, "function": {"arguments": 'ris"}'}},
    ]
    assert calls[3]["index"] == 1 and calls[3]["id"] == "toolu_b" and calls[4]["index"] == 1
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all("usage" not in c for c in out)


async def test_stream_json_tool_and_thinking() -> None:
    out = await run(
        AnthropicPlan({}, json_tool="json_response"),
        start(),
        block(0, {"type": "thinking", "thinking": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "Hmm."}),
        delta(0, {"type": "signature_delta", "signature": "sig"}),
        block(1, {"type": "tool_use", "id": "t", "name": "json_response", "input": {}}),
        delta(1, {"type": "input_json_delta", "partial_json": '{"a":'}),
        delta(1, {"type": "input_json_delta", "partial_json": " 1}"}),
        *finish("tool_use"),
    )
    deltas = [c["choices"][0]["delta"] for c in out if c["choices"]]
    assert {"reasoning_content": "Hmm."} in deltas
    assert "".join(d.get("content") or "" for d in deltas) == '{"a": 1}'
    assert out[-1]["choices"][0]["finish_reason"] == "stop"


async def test_stream_error_event_raises() -> None:
    seen: list[dict[str, Any]] = []
    # overloaded is a 503 (as Anthropic's 529 is), retryable after a second
    with pytest.raises(UpstreamUnavailableError, match="Overloaded") as info:
        async for c in stream_from_anthropic(
            events(start(), {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            AnthropicPlan({}),
            model="m",
        ):
            seen.append(c)
    assert len(seen) == 1 and info.value.headers["retry-after"] == "1" and info.value.status_code == 503
    with pytest.raises(RateLimitError):
        async for _ in stream_from_anthropic(
            events({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
            AnthropicPlan({}),
            model="m",
        ):
            pass
    with pytest.raises(UpstreamRequestError):
        async for _ in stream_from_anthropic(
            events({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}),
            AnthropicPlan({}),
            model="m",
        ):
            pass


async def test_stream_ending_before_message_stop_raises() -> None:
    with pytest.raises(UpstreamError, match="before message_stop"):
        async for _ in stream_from_anthropic(
            events(start(), block(0, {"type": "text", "text": ""}), delta(0, {"type": "text_delta", "text": "Hi"})),
            AnthropicPlan({}),
            model="m",
        ):
            pass
