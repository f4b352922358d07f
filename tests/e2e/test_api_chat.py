"""The chat API through the real server, driven by the official openai SDK."""

from __future__ import annotations

import httpx
import openai
import pytest

from modelmux.testing import RunningGateway, validate


def test_non_streaming_echo_is_a_valid_chat_completion(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 2
    validate("CreateChatCompletionResponse", raw.http_response.json())
    assert raw.headers["x-modelmux-provider"] == "echo"


def test_streaming_echo_word_by_word_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 6
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))


def test_text_parts_are_read(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": [{"type": "text", "text": "from parts"}]}]
    )
    assert out.choices[0].message.content == "from parts"


def test_provider_slash_model_names_are_routed(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(model="echo/anything", messages=[{"role": "user", "content": "x y"}])
    assert out.choices[0].message.content == "x y"


def test_models_list_and_retrieve(client: openai.OpenAI, gateway: RunningGateway) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["echo"]
    validate("ListModelsResponse", httpx.get(f"{gateway.url}/models").json())
    assert client.models.retrieve("echo").owned_by == "echo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("missing-model")


def test_unknown_model_is_404_listing_what_exists(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    err = info.value.body
    assert isinstance(err, dict)
    assert err["code"] == "model_not_found" and "echo" in err["message"] and err["param"] == "model"


def test_request_id_is_echoed_or_made(gateway: RunningGateway) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    mine = httpx.post(f"{gateway.url}/chat/completions", json=body, headers={"x-request-id": "req-abc"})
    assert mine.headers["x-request-id"] == "req-abc"
    made = httpx.post(f"{gateway.url}/chat/completions", json=body)
    assert len(made.headers["x-request-id"]) == 32
    assert httpx.get(f"{gateway.root}/nowhere").headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "model"),
        (b'{"model": "echo"}', 400, "messages"),
        (b'{"model": "echo", "messages": []}', 400, "messages"),
        (b'{"model": "echo", "messages": "hi"}', 400, "messages"),
        (b'{"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}', 400, "messages[0].role"),
        (b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', 400, "model"),
        (
            b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            400,
            "temperature",
        ),
        (b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', 400, "stream"),
        (b'{"model": "echo", "messages": [{"role": "user", "content": "x"}], "n": 3}', 400, "n"),
        (b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404, "nope"),
    ],
)
def test_bad_input_gets_an_openai_error_not_a_500(
    gateway: RunningGateway, body: bytes, status: int, needle: str
) -> None:
    resp = httpx.post(f"{gateway.url}/chat/completions", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert needle in error["message"] or needle == error["param"]


def test_unknown_path_and_method_are_openai_errors(gateway: RunningGateway) -> None:
    missing = httpx.post(f"{gateway.url}/no-such-endpoint", json={})
    assert missing.status_code == 404 and "Unknown path" in missing.json()["error"]["message"]
    wrong = httpx.delete(f"{gateway.url}/chat/completions")
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "invalid_request_error"
