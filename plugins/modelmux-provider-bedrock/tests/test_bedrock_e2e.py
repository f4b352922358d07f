"""End to end: the official openai SDK -> the real gateway -> the fake Bedrock runtime (SigV4 checked)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import orjson
import pytest

from modelmux.testing import LoopbackServer, RunningGateway, metric, run_gateway, serve_process, validate

CLAUDE_PATH = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def sent(fake: LoopbackServer) -> dict[str, Any]:
    """The Converse body of the last request the fake received."""
    body: dict[str, Any] = orjson.loads(fake.requests[-1]["body"])
    return body


def test_non_streaming_chat(bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer) -> None:
    raw = bedrock_client.chat.completions.with_raw_response.create(
        model="claude",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
    )
    out = raw.parse()
    validate("CreateChatCompletionResponse", raw.http_response.json())
    assert out.choices[0].message.content == "[be brief] You said: hello there"
    assert out.choices[0].finish_reason == "stop"
    assert out.model == "claude"
    # Usage: cache reads and writes count as prompt tokens; reads are reported as cached.
    assert out.usage is not None and out.usage.prompt_tokens == 7 + 3 + 2
    assert out.usage.prompt_tokens_details is not None and out.usage.prompt_tokens_details.cached_tokens == 3
    request = fake_bedrock.requests[-1]
    assert request["path"] == f"{CLAUDE_PATH}/converse"  # inference profile id, ':' quoted, signature valid
    assert sent(fake_bedrock) == {
        "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
        "system": [{"text": "be brief"}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    }


def test_streaming_chat_with_usage(bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer) -> None:
    stream = bedrock_client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert fake_bedrock.requests[-1]["path"] == f"{CLAUDE_PATH}/converse-stream"
    assert fake_bedrock.requests[-1]["headers"]["Accept"] == "application/vnd.amazon.eventstream"
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three four"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3  # really streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (
        chunks[-1].usage.prompt_tokens == 12
        and chunks[-1].usage.total_tokens == 12 + chunks[-1].usage.completion_tokens
    )
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))


def test_stream_without_include_usage_has_no_usage_chunk(bedrock_client: openai.OpenAI) -> None:
    chunks = list(
        bedrock_client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)


def test_tool_call_and_tool_result_round_trip(bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer) -> None:
    messages: list[Any] = [{"role": "user", "content": "what is the weather in Paris?"}]
    out = bedrock_client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER_TOOL])
    body = sent(fake_bedrock)
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},
                }
            }
        ],
        "toolChoice": {"auto": {}},
    }
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.id == "tooluse_0" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21C"},
    ]
    final = bedrock_client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER_TOOL])
    assert final.choices[0].message.content == "Tool said: 21C"
    body = sent(fake_bedrock)
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_0", "name": "get_weather", "input": {"city": "Paris"}}},
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "tooluse_0", "content": [{"text": "21C"}]}}],
    }


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_is_translated(
    bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer, tool_choice: Any, expected: dict[str, Any]
) -> None:
    bedrock_client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL], tool_choice=tool_choice
    )
    assert sent(fake_bedrock)["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_leaves_the_tools_out(bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer) -> None:
    out = bedrock_client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert "toolConfig" not in sent(fake_bedrock)
    assert out.choices[0].message.tool_calls is None and out.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_web_search_options_is_refused_before_any_upstream_call(
    bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer, stream: bool
) -> None:
    before = len(fake_bedrock.requests)
    with pytest.raises(openai.BadRequestError) as info:
        bedrock_client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "news?"}], web_search_options={}, stream=stream
        )
    error = info.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error" and error["param"] == "web_search_options"
    assert error["code"] == "unsupported_parameter"
    assert "not supported by Bedrock Converse" in error["message"] and "search function" in error["message"]
    assert len(fake_bedrock.requests) == before


def test_parallel_tool_calls_streamed(bedrock_client: openai.OpenAI) -> None:
    stream = bedrock_client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "parallel weather in Paris and Tokyo"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = list(stream)
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            if tc.id:
                assert not entry["arguments"], "id and name come before the arguments"
                entry["id"], entry["name"] = tc.id, tc.function.name if tc.function else ""
            if tc.function and tc.function.arguments:
                entry["arguments"] += tc.function.arguments
    assert sorted(calls) == [0, 1]
    assert [calls[i]["id"] for i in (0, 1)] == ["tooluse_0", "tooluse_1"]
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_parallel_tool_calls_non_streaming(bedrock_client: openai.OpenAI) -> None:
    out = bedrock_client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "parallel weather please"}], tools=[WEATHER_TOOL]
    )
    calls = out.choices[0].message.tool_calls or []
    assert [(c.id, json.loads(c.function.arguments)["city"]) for c in calls] == [
        ("tooluse_0", "Paris"),
        ("tooluse_1", "Tokyo"),
    ]


def test_images_from_data_and_http_urls_are_sent_as_bytes(
    bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer, bedrock_wire: Any
) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(bedrock_wire.png).decode()
    out = bedrock_client.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what are these?"},
                    {"type": "image_url", "image_url": {"url": data_url}},
                    {"type": "image_url", "image_url": {"url": f"{fake_bedrock.url}/img/red.png"}},
                ],
            }
        ],
    )
    n = len(bedrock_wire.png)
    assert out.choices[0].message.content == f"I see 2 image(s): png {n} bytes, png {n} bytes"
    converse = next(r for r in reversed(fake_bedrock.requests) if r["method"] == "POST")
    blocks = orjson.loads(converse["body"])["messages"][0]["content"]
    assert blocks[1] == {"image": {"format": "png", "source": {"bytes": base64.b64encode(bedrock_wire.png).decode()}}}


@pytest.mark.parametrize("stream", [False, True])
def test_a_large_body_is_signed_and_sent_whole(
    bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer, stream: bool
) -> None:
    """A body of several MB (written a slice at a time) reaches Bedrock whole, its signature valid."""
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 12_000  # 3 MB
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    messages: Any = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    answer = "I see 1 image(s): png 3072008 bytes"
    if stream:
        chunks = bedrock_client.chat.completions.create(model="claude", messages=messages, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    else:
        out = bedrock_client.chat.completions.create(model="claude", messages=messages)
        assert out.choices[0].message.content == answer
    assert len(fake_bedrock.requests[-1]["body"]) > 4_000_000


def test_json_schema_output_is_plain_json_content(bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}, "unit": {"type": "string"}}}
    response_format: Any = {"type": "json_schema", "json_schema": {"name": "measure", "schema": schema}}
    out = bedrock_client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "how far?"}], response_format=response_format
    )
    assert json.loads(out.choices[0].message.content or "") == {"answer": 42, "unit": "m"}
    assert out.choices[0].finish_reason == "stop" and not out.choices[0].message.tool_calls
    tool_config = sent(fake_bedrock)["toolConfig"]
    assert tool_config["toolChoice"] == {"tool": {"name": "measure"}}
    assert tool_config["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}

    chunks = list(
        bedrock_client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "how far?"}],
            response_format=response_format,
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == {"answer": 42, "unit": "m"}
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.parametrize(("prompt", "reason"), [("a long one", "length"), ("please filter", "content_filter")])
def test_stop_reasons(bedrock_client: openai.OpenAI, prompt: str, reason: str) -> None:
    out = bedrock_client.chat.completions.create(model="nova", messages=[{"role": "user", "content": prompt}])
    assert out.choices[0].finish_reason == reason
    chunks = list(
        bedrock_client.chat.completions.create(
            model="nova", messages=[{"role": "user", "content": prompt}], stream=True
        )
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == reason


@pytest.mark.parametrize("stream", [False, True])
def test_throttling_is_429_with_retry_after(bedrock_client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        bedrock_client.chat.completions.create(
            model="bedrock/throttled", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    assert info.value.status_code == 429
    assert "throttling" in info.value.message.lower()


def test_throttling_is_retried_by_the_host(
    fake_bedrock: LoopbackServer, config_for_fake: Callable[..., dict[str, Any]]
) -> None:
    with run_gateway(config_for_fake(fake_bedrock, max_retries=1)) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        before = len(fake_bedrock.requests)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="bedrock/throttled", messages=[{"role": "user", "content": "hi"}])
        assert len(fake_bedrock.requests) - before == 2


def test_image_urls_are_fetched_once_per_request_within_its_limits(
    fake_bedrock: LoopbackServer, config_for_fake: Callable[..., dict[str, Any]]
) -> None:
    config = config_for_fake(fake_bedrock, max_retries=2)
    config["server"]["images"] = {"max_per_request": 3}
    url = f"{fake_bedrock.url}/img/red.png"

    def ask(model: str, n: int) -> Any:
        parts = [{"type": "image_url", "image_url": {"url": f"{url}?{i % 2}"}} for i in range(n)]
        return client.chat.completions.create(model=model, messages=[{"role": "user", "content": parts}])

    def fetches() -> int:
        return sum(1 for r in fake_bedrock.requests if r["path"].startswith("/img/red.png"))

    with run_gateway(config) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        before, calls = fetches(), len(fake_bedrock.requests)
        with pytest.raises(openai.RateLimitError):
            ask("bedrock/throttled", 3)  # three tries, two distinct URLs: each fetched once
        assert fetches() - before == 2
        assert len(fake_bedrock.requests) - calls == 3 + 2
        with pytest.raises(openai.BadRequestError) as info:
            ask("claude", 4)
        assert info.value.code == "too_many_images" and "server.images.max_per_request" in info.value.message
        assert fetches() - before == 2  # refused before fetching


@pytest.mark.parametrize("stream", [False, True])
def test_validation_error_is_400_with_bedrocks_message(bedrock_client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        bedrock_client.chat.completions.create(
            model="bedrock/invalid", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    assert "The provided model identifier is invalid." in info.value.message


def test_exception_frame_mid_stream_raises_in_the_sdk(bedrock_client: openai.OpenAI) -> None:
    stream = bedrock_client.chat.completions.create(
        model="bedrock/midstream-error", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received)  # the stream had started
    assert "The model stopped unexpectedly." in info.value.message


def test_stream_cut_short_is_an_error_not_a_silent_end(bedrock_client: openai.OpenAI) -> None:
    stream = bedrock_client.chat.completions.create(
        model="bedrock/cut-short", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "messageStop" in info.value.message


def test_wrong_credentials_are_502_naming_the_fix(
    fake_bedrock: LoopbackServer, config_for_fake: Callable[..., dict[str, Any]]
) -> None:
    config = config_for_fake(fake_bedrock, aws_secret_access_key="not-the-secret")
    with run_gateway(config) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as info:
                client.chat.completions.create(
                    model="claude", messages=[{"role": "user", "content": "hi"}], stream=stream
                )
            assert info.value.status_code == 502
            assert "signature we calculated does not match" in info.value.message
            assert "Fix:" in info.value.message and "not-the-secret" not in info.value.message
    assert fake_bedrock.requests[-1]["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")


def test_access_denied_is_502_with_the_fix(bedrock_client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        bedrock_client.chat.completions.create(model="bedrock/denied", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    assert "bedrock:InvokeModel" in info.value.message and "access to the model is enabled" in info.value.message


def test_bedrock_api_key_is_sent_as_bearer(
    fake_bedrock: LoopbackServer, config_for_fake: Callable[..., dict[str, Any]], bedrock_wire: Any
) -> None:
    config = config_for_fake(fake_bedrock, api_key=bedrock_wire.api_key)
    del config["providers"]["bedrock"]["aws_access_key_id"], config["providers"]["bedrock"]["aws_secret_access_key"]
    with run_gateway(config) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        out = client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "bearer"}])
    assert out.choices[0].message.content == "You said: bearer"
    assert fake_bedrock.requests[-1]["headers"]["Authorization"] == f"Bearer {bedrock_wire.api_key}"
    assert "X-Amz-Date" not in fake_bedrock.requests[-1]["headers"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ([{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}], "input_audio"),
        ([{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}], "base64"),
        ([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}], "image/bmp"),
    ],
)
def test_bad_content_is_400(bedrock_client: openai.OpenAI, content: Any, needle: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        bedrock_client.chat.completions.create(model="claude", messages=[{"role": "user", "content": content}])
    assert needle in info.value.message


# --- reasoning_effort: Claude's extended thinking through Converse, as on Vertex


def test_reasoning_effort_is_claudes_thinking_and_comes_back_as_reasoning_content(
    bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer
) -> None:
    messages: Any = [{"role": "user", "content": "what is 2+2"}]
    resp = bedrock_client.chat.completions.create(model="claude", messages=messages, reasoning_effort="low")
    message = resp.choices[0].message
    assert message.content == "You said: what is 2+2"
    assert message.model_extra == {"reasoning_content": "Thinking about: what is 2+2"}
    body = sent(fake_bedrock)
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert body["inferenceConfig"]["maxTokens"] == 2048 + 4096  # the budget on top of the default answer
    assert "reasoning_effort" not in body and "temperature" not in body["inferenceConfig"]

    chunks = list(
        bedrock_client.chat.completions.create(
            model="claude", messages=messages, reasoning_effort="high", max_tokens=3000, stream=True
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join((d.model_extra or {}).get("reasoning_content", "") for d in deltas) == "Thinking about: what is 2+2"
    assert "".join(d.content or "" for d in deltas) == "You said: what is 2+2"
    # the reasoning comes before the answer, as Claude writes it
    first_text = next(i for i, d in enumerate(deltas) if d.content)
    assert all(not (d.model_extra or {}).get("reasoning_content") for d in deltas[first_text:])
    body = sent(fake_bedrock)
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2999  # below max_tokens
    assert body["inferenceConfig"]["maxTokens"] == 3000


def test_reasoning_effort_none_and_other_models_send_no_thinking(
    bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer
) -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    for model, effort in (("claude", "none"), ("nova", "high")):
        resp = bedrock_client.chat.completions.create(model=model, messages=messages, reasoning_effort=effort)
        assert resp.choices[0].message.content == "You said: hi" and not resp.choices[0].message.model_extra
        assert "additionalModelRequestFields" not in sent(fake_bedrock)


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"temperature": 0.2}, "temperature", "together with reasoning_effort"),
        ({"max_tokens": 1000}, "max_tokens", "must exceed 1024"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "is not one of minimal, low, medium, high"),
        ({"reasoning_effort": ["low"]}, "reasoning_effort", "is not one of"),
        ({"response_format": {"type": "json_object"}}, "response_format", "cannot force a JSON answer"),
    ],
)
def test_thinking_requests_claude_refuses_are_400_before_any_upstream_call(
    bedrock_gateway: RunningGateway, fake_bedrock: LoopbackServer, extra: dict[str, Any], param: str, words: str
) -> None:
    before = len(fake_bedrock.requests)
    body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low", **extra}
    resp = httpx.post(f"{bedrock_gateway.url}/chat/completions", json=body, timeout=10)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and words in error["message"]
    assert len(fake_bedrock.requests) == before


def test_responses_reasoning_effort_gives_a_reasoning_item(
    bedrock_client: openai.OpenAI, fake_bedrock: LoopbackServer
) -> None:
    resp = bedrock_client.responses.create(
        model="claude", input="what is 2+2", reasoning={"effort": "low"}, store=False
    )
    assert [item.type for item in resp.output] == ["reasoning", "message"]
    assert resp.output_text == "You said: what is 2+2"
    assert sent(fake_bedrock)["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2048


def test_a_stream_without_include_usage_is_counted(
    fake_bedrock: LoopbackServer, config_for_fake: Callable[..., dict[str, Any]], tmp_path: Any
) -> None:
    """A real ``modelmux serve``: the client asks for no usage chunk and gets none, yet the
    gateway counts the stream's tokens (metrics, token limits, the log line) from the metadata event."""
    with serve_process(config_for_fake(fake_bedrock), tmp_path) as served:
        client = openai.OpenAI(base_url=f"{served.root}/v1", api_key="unused", max_retries=0, timeout=20)
        messages: Any = [{"role": "user", "content": "one two three four"}]
        chunks = list(client.chat.completions.create(model="claude", messages=messages, stream=True))
        assert all(c.usage is None for c in chunks) and chunks[-1].choices  # no usage chunk was sent
        labels = {"provider": "bedrock", "model": "claude"}
        line = served.request_line("POST /v1/chat/completions -> 200")
        # The counts a client that asks is told.
        asked = client.chat.completions.create(
            model="claude", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        usage = list(asked)[-1].usage
        assert usage is not None and usage.prompt_tokens == 12
        assert metric(served.root, "modelmux_tokens_total", type="input", **labels) == 2 * usage.prompt_tokens
        assert metric(served.root, "modelmux_tokens_total", type="output", **labels) == 2 * usage.completion_tokens
        assert f"input_tokens={usage.prompt_tokens}" in line and f"output_tokens={usage.completion_tokens}" in line
