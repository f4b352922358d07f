"""OpenAI chat <-> Converse translation details that the end-to-end tests do not pin down."""

from __future__ import annotations

from typing import Any

import pytest
from modelmux_provider_bedrock.converse import STOP_REASONS, ConverseCall, to_completion, to_converse

from modelmux.plugin import UNSUPPORTED_UNLESS_DEFAULT, ImageFetcher, InvalidRequestError, to_anthropic

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}


async def convert(**body: Any) -> ConverseCall:
    images = ImageFetcher()
    try:
        return await to_converse({"model": "m", **body}, images)
    finally:
        await images.aclose()


async def test_roles_are_merged_to_alternate_and_system_is_collected() -> None:
    call = await convert(
        messages=[
            {"role": "system", "content": "s1"},
            {"role": "user", "content": "a"},
            {"role": "developer", "content": [{"type": "text", "text": "s2"}]},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "  ", "tool_calls": [CALL, {**CALL, "id": "c2"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "r1"},
            {"role": "tool", "tool_call_id": "c2", "content": ""},
            {"role": "user", "content": "c"},
        ],
        tools=[TOOL],
    )
    p = call.payload
    assert p["system"] == [{"text": "s1"}, {"text": "s2"}]
    assert [m["role"] for m in p["messages"]] == ["user", "assistant", "user"]
    assert p["messages"][0]["content"] == [{"text": "a"}, {"text": "b"}]
    assert [next(iter(b)) for b in p["messages"][1]["content"]] == ["toolUse", "toolUse"]  # blank text dropped
    assert p["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "c1", "content": [{"text": "r1"}]}},
        {"toolResult": {"toolUseId": "c2", "content": [{"text": "(no output)"}]}},
        {"text": "c"},
    ]


async def test_tool_choice_none_with_tool_history_keeps_tools_without_a_choice() -> None:
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    call = await convert(messages=history, tools=[TOOL], tool_choice="none")
    assert call.payload["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]
    }
    with pytest.raises(InvalidRequestError, match="send `tools`"):
        await convert(messages=history)


async def test_json_output_with_client_tools_lets_the_model_pick_either() -> None:
    call = await convert(
        messages=[{"role": "user", "content": "q"}], tools=[TOOL], response_format={"type": "json_object"}
    )
    assert call.output_tool == "json_response"
    assert call.payload["toolConfig"]["toolChoice"] == {"any": {}}
    assert [t["toolSpec"]["name"] for t in call.payload["toolConfig"]["tools"]] == ["f", "json_response"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0]"),
        ({"tool_choice": "sometimes", "tools": [TOOL]}, "tool_choice"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format.json_schema"),
    ],
)
async def test_invalid_requests_are_400_naming_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await convert(messages=[{"role": "user", "content": "q"}], **body)
    assert info.value.param == param and info.value.status_code == 400


#: A value each refused field may take in a real request (its neutral values are accepted).
REFUSED_VALUES: dict[str, Any] = {
    "logprobs": True,
    "top_logprobs": 3,
    "presence_penalty": 0.5,
    "frequency_penalty": -1,
    "logit_bias": {"50256": -100},
    "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "x"},
    "web_search_options": {},  # `{}` turns OpenAI's search on: not a neutral value
    "functions": [{"name": "f", "parameters": {"type": "object"}}],
    "function_call": "auto",  # refused even without functions, as on Vertex
}


def test_every_shared_unsupported_field_has_a_refused_value_here() -> None:
    assert set(REFUSED_VALUES) == set(UNSUPPORTED_UNLESS_DEFAULT)


@pytest.mark.parametrize(
    ("body", "param", "instead"),
    [
        *(({name: value}, name, "omit it") for name, value in REFUSED_VALUES.items() if "function" not in name),
        ({"functions": REFUSED_VALUES["functions"]}, "functions", "use tools and tool_choice"),
        ({"function_call": REFUSED_VALUES["function_call"]}, "function_call", "use tools and tool_choice"),
        ({"function_call": {"name": "f"}}, "function_call", "use tools and tool_choice"),
        ({"function_call": "none"}, "function_call", "use tools and tool_choice"),
        ({"modalities": ["text", "audio"]}, "modalities", '["text"]'),
        ({"modalities": ["audio"]}, "modalities", '["text"]'),
        ({"n": 3}, "n", "set n to 1"),
        ({"tool_choice": "auto"}, "tool_choice", "send tools"),
        ({"tool_choice": "none", "tools": []}, "tool_choice", "send tools"),
        ({"tool_choice": "required", "response_format": {"type": "json_object"}}, "tool_choice", "send tools"),
    ],
)
async def test_what_converse_cannot_honour_is_refused_like_on_vertex(
    body: dict[str, Any], param: str, instead: str
) -> None:
    """Refused, not dropped: a 400 naming the field and what to send instead, the same error as
    the Claude (Vertex) translation gives for the same body, apart from the upstream's name."""
    messages = [{"role": "user", "content": "q"}]
    with pytest.raises(InvalidRequestError) as bedrock:
        await convert(messages=messages, **body)
    with pytest.raises(InvalidRequestError) as vertex:
        await to_anthropic({"model": "m", "messages": messages, **body})
    err = bedrock.value
    assert err.status_code == 400 and err.param == param and err.message.startswith(param)
    assert instead in err.message and err.code in ("unsupported_parameter", "unsupported_value", "invalid_value")
    assert (err.param, err.code) == (vertex.value.param, vertex.value.code)
    assert err.message == vertex.value.message.replace("Claude", "Bedrock Converse")


async def test_neutral_values_of_refused_fields_are_accepted() -> None:
    call = await convert(
        messages=[{"role": "user", "content": "q"}],
        n=1,
        logprobs=False,
        top_logprobs=0,
        presence_penalty=0,
        frequency_penalty=0.0,
        logit_bias={},
        audio=None,
        prediction=None,
        web_search_options=None,
        functions=[],
        function_call=None,
        modalities=["text"],
        tool_choice=None,
    )
    assert call.payload == {"messages": [{"role": "user", "content": [{"text": "q"}]}]}


async def test_bad_tool_call_arguments_are_400() -> None:
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{oops"}}]},
    ]
    with pytest.raises(InvalidRequestError) as info:
        await convert(messages=messages, tools=[TOOL])
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


@pytest.mark.parametrize(("stop_reason", "finish"), sorted(STOP_REASONS.items()))
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish: str) -> None:
    data = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": stop_reason}
    out = to_completion(data, ConverseCall({}), "m")
    assert out["choices"][0]["finish_reason"] == finish


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    data = {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 4, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 50},
    }
    assert to_completion(data, ConverseCall({}), "m")["usage"] == {
        "prompt_tokens": 160,
        "completion_tokens": 4,
        "total_tokens": 164,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


def test_reasoning_is_returned_as_reasoning_content() -> None:
    content = [{"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}}, {"text": "answer"}]
    data = {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": "end_turn"}
    message = to_completion(data, ConverseCall({}), "m")["choices"][0]["message"]
    assert message["content"] == "answer" and message["reasoning_content"] == "think"
