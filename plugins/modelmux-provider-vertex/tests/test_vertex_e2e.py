"""End to end: the official openai SDK -> the real gateway -> the vertex plugin -> the fake Vertex AI."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import LoopbackServer, metric, run_gateway, serve_process

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def gateway(shared_fake_vertex: Any) -> Iterator[Any]:
    config = {
        "server": {"url_fetch_allow": ["127.0.0.1"]},
        "providers": {"claude": shared_fake_vertex.provider_table()},
        "models": {"claude-sonnet": {"provider": "claude", "model": "text@20250929"}},
    }
    with run_gateway(config) as gw:
        yield gw


@pytest.fixture
def fake(shared_fake_vertex: Any) -> Iterator[Any]:
    yield shared_fake_vertex
    shared_fake_vertex.stream_write_size = 0


@pytest.fixture
def client(gateway: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0, timeout=20)


def hi() -> list[Any]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def test_non_stream(client: openai.OpenAI, fake: Any) -> None:
    resp = client.chat.completions.create(model="claude-sonnet", messages=hi(), max_tokens=50)
    assert resp.model == "claude-sonnet"
    assert resp.choices[0].message.content == "Hello from Claude on Vertex."
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens == 21 and resp.usage.completion_tokens == 9
    sent = fake.last_body()
    assert sent["system"] == [{"type": "text", "text": "Be brief."}] and sent["max_tokens"] == 50


def test_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude-sonnet", messages=hi(), stream=True, stream_options={"include_usage": True}
        )
    )
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Claude on Vertex."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 30


def test_cached_tokens_reported(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="claude/cached@1", messages=hi())
    assert resp.usage is not None and resp.usage.prompt_tokens_details is not None
    assert resp.usage.prompt_tokens_details.cached_tokens == 1200 and resp.usage.prompt_tokens == 1205


def test_parallel_tools(client: openai.OpenAI, fake: Any) -> None:
    resp = client.chat.completions.create(
        model="claude/tools@1",
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER],
        tool_choice="auto",
        parallel_tool_calls=True,
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("toolu_vrtx_01Paris", "get_weather", {"city": "Paris"}),
        ("toolu_vrtx_02Tokyo", "get_weather", {"city": "Tokyo", "unit": "celsius"}),
    ]
    assert fake.last_body()["tools"][0]["name"] == "get_weather"
    # the answer goes back as tool results
    followup = client.chat.completions.create(
        model="claude-sonnet",
        messages=[
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "toolu_vrtx_01Paris", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_vrtx_02Tokyo", "content": "25C"},
        ],
        tools=[WEATHER],
    )
    assert followup.choices[0].message.content
    turns = fake.last_body()["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "tool_result"]


def test_stream_parallel_tools(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude/tools@1", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                if tc.id:
                    assert not entry["id"], "id sent twice for one index"
                    entry["id"] = tc.id
                if tc.function and tc.function.name:
                    entry["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    assert entry["id"], "arguments before id"
                    entry["arguments"] += tc.function.arguments
    assert finish == "tool_calls"
    assert {i: (c["id"], json.loads(c["arguments"])) for i, c in calls.items()} == {
        0: ("toolu_vrtx_01Paris", {"city": "Paris"}),
        1: ("toolu_vrtx_02Tokyo", {"city": "Tokyo", "unit": "celsius"}),
    }


def test_images_by_url_and_data_url(
    client: openai.OpenAI, fake: Any, image_server: LoopbackServer, png_bytes: bytes
) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes).decode()
    client.chat.completions.create(
        model="claude-sonnet",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"{image_server.url}/cat.png"}},
                    {"type": "image_url", "image_url": {"url": data_url, "detail": "low"}},
                ],
            }
        ],
    )
    blocks = fake.last_body()["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["text", "image", "image"]
    for b in blocks[1:]:
        assert b["source"]["type"] == "base64" and base64.b64decode(b["source"]["data"]) == png_bytes


def test_private_image_url_is_refused(client: openai.OpenAI, fake: Any) -> None:
    before = len(fake.predict_requests())
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="claude-sonnet",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/x.png"}}],
                }
            ],
        )
    assert "url_fetch_allow" in info.value.message
    assert len(fake.predict_requests()) == before


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema(client: openai.OpenAI, fake: Any, stream: bool) -> None:
    fmt: Any = {
        "type": "json_schema",
        "json_schema": {
            "name": "person",
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
                "required": ["name", "born"],
            },
        },
    }
    messages: Any = [{"role": "user", "content": "Who wrote the first program?"}]
    if stream:
        chunks = list(
            client.chat.completions.create(model="claude/json@1", messages=messages, response_format=fmt, stream=True)
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
        assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    else:
        resp = client.chat.completions.create(model="claude/json@1", messages=messages, response_format=fmt)
        text, finish = resp.choices[0].message.content or "", resp.choices[0].finish_reason
        assert resp.choices[0].message.tool_calls is None
    assert json.loads(text) == {"name": "Ada Lovelace", "born": 1815}
    assert finish == "stop"
    sent = fake.last_body()
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert sent["tools"][0]["input_schema"] == fmt["json_schema"]["schema"]


def test_thinking_as_reasoning_content(client: openai.OpenAI, fake: Any) -> None:
    resp = client.chat.completions.create(model="claude/thinking@1", messages=hi(), reasoning_effort="low")
    assert resp.choices[0].message.content == "4"
    assert resp.choices[0].message.model_extra == {"reasoning_content": "The user wants 2+2. That is 4."}
    assert fake.last_body()["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    chunks = list(client.chat.completions.create(model="claude/thinking@1", messages=hi(), stream=True))
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks if c.choices
    )
    assert reasoning == "The user wants 2+2. That is 4."


@pytest.mark.parametrize(
    ("model", "error", "status", "words"),
    [
        ("claude/error-400@1", openai.BadRequestError, 400, "image/png media type"),
        ("claude/error-404@1", openai.NotFoundError, 404, "region us-east5"),
        ("claude/error-429@1", openai.RateLimitError, 429, "Quota exceeded"),
        ("claude/error-529@1", openai.InternalServerError, 503, "overloaded"),
        ("claude/error-403@1", openai.InternalServerError, 502, "roles/aiplatform.user"),
    ],
)
def test_upstream_errors(
    client: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int, words: str
) -> None:
    for stream in (False, True):
        with pytest.raises(error) as info:
            client.chat.completions.create(model=model, messages=hi(), stream=stream)
        assert info.value.status_code == status and words in info.value.message
        if status in (429, 503):
            assert info.value.response.headers["retry-after"] in ("7", "1")


def test_what_claude_cannot_do_is_a_400(client: openai.OpenAI, fake: Any) -> None:
    before = len(fake.predict_requests())
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude-sonnet", messages=hi(), n=2)
    assert info.value.param == "n"
    with pytest.raises(openai.BadRequestError, match="arguments"):
        client.chat.completions.create(
            model="claude-sonnet",
            messages=[
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "r"},
            ],
        )
    assert len(fake.predict_requests()) == before


def test_multibyte_characters_split_across_network_reads(client: openai.OpenAI, fake: Any) -> None:
    fake.stream_write_size = 5
    chunks = list(client.chat.completions.create(model="claude/utf8@1", messages=hi(), stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Grüße aus Zürich 日本語のテキスト and emoji 🎉🚀 — done"


def test_error_event_mid_stream_raises_in_the_sdk(client: openai.OpenAI) -> None:
    received = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in client.chat.completions.create(model="claude/error_mid@1", messages=hi(), stream=True):
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Partial answer"


def test_events_arriving_in_one_network_read_give_the_same_chunks(client: openai.OpenAI, fake: Any) -> None:
    def chunks() -> list[dict[str, Any]]:
        stream = client.chat.completions.create(
            model="claude-sonnet", messages=hi(), stream=True, stream_options={"include_usage": True}
        )
        return [c.model_dump(exclude={"created"}) for c in stream]

    one_write_per_event = chunks()
    fake.stream_write_size = 1 << 20  # the whole answer in one write: the gateway reads it as one burst
    assert chunks() == one_write_per_event
    assert len(one_write_per_event) == 6  # role, three texts, finish, usage: none merged or lost


def test_error_event_in_the_same_read_as_text_keeps_the_text(client: openai.OpenAI, fake: Any) -> None:
    fake.stream_write_size = 1 << 20
    received = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in client.chat.completions.create(model="claude/error_mid@1", messages=hi(), stream=True):
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Partial answer"


def test_dropped_connection_raises_in_the_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError, match="provider claude"):
        list(client.chat.completions.create(model="claude/cut@1", messages=hi(), stream=True))


def test_raw_stream_ends_with_an_error_event_not_done(gateway: Any) -> None:
    body = {"model": "claude/cut@1", "messages": hi(), "stream": True}
    text = httpx.post(f"{gateway.url}/chat/completions", json=body, timeout=20).text
    assert '"error"' in text and "[DONE]" not in text


def test_a_stream_without_include_usage_is_counted(shared_fake_vertex: Any, tmp_path: Any) -> None:
    """A real ``modelmux serve``: the client asks for no usage chunk and gets none, yet the
    gateway counts the stream's tokens (metrics, token limits, the log line) from Vertex's events."""
    config = {
        "providers": {"claude": shared_fake_vertex.provider_table()},
        "models": {"claude-sonnet": {"provider": "claude", "model": "text@20250929"}},
    }
    with serve_process(config, tmp_path) as served:
        client = openai.OpenAI(base_url=f"{served.root}/v1", api_key="unused", max_retries=0, timeout=20)
        chunks = list(client.chat.completions.create(model="claude-sonnet", messages=hi(), stream=True))
        assert all(c.usage is None for c in chunks) and chunks[-1].choices  # no usage chunk was sent
        labels = {"provider": "claude", "model": "claude-sonnet"}
        assert metric(served.root, "modelmux_tokens_total", type="input", **labels) == 21
        assert metric(served.root, "modelmux_tokens_total", type="output", **labels) == 9
        line = served.request_line("POST /v1/chat/completions -> 200")
        assert "input_tokens=21" in line and "output_tokens=9" in line
