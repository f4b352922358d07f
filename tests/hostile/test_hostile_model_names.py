"""Model names a client makes up: never a 500 or a dropped connection (issue 15).

A name outside Latin-1 cannot go into the ``x-modelmux-model`` response header as it is, and a
control character in a header value makes the server drop the connection. Non-ASCII names are
served with the header percent-encoded; names with control or invisible characters are a 400
before any upstream call. Raw HTTP against a real ``modelmux serve``.
"""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest

from modelmux.testing import LoopbackServer

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def chat_calls(upstream: LoopbackServer) -> int:
    return sum(1 for r in upstream.requests if r["path"] == "/v1/chat/completions")


@pytest.mark.parametrize("stream", [False, True])
def test_a_non_ascii_model_name_is_served_with_an_encoded_header(api: httpx.Client, stream: bool) -> None:
    resp = api.post("/v1/chat/completions", json={"model": "echo/模型", **CHAT, "stream": stream})
    assert resp.status_code == 200, resp.text
    header = resp.headers["x-modelmux-model"]
    assert header.isascii() and unquote(header) == "模型"


def test_non_ascii_on_passthrough_and_responses(api: httpx.Client, upstream: LoopbackServer) -> None:
    before = len(upstream.requests)
    resp = api.post("/v1/chat/completions", json={"model": "vllm/modèle-模型", **CHAT})
    assert resp.status_code == 200, resp.text
    assert unquote(resp.headers["x-modelmux-model"]) == "modèle-模型"
    # the upstream gets the name unchanged
    assert '"model":"modèle-模型"' in upstream.requests[before]["body"].decode()
    resp = api.post("/v1/responses", json={"model": "echo/模型", "input": "hi"})
    assert resp.status_code == 200, resp.text
    assert unquote(resp.headers["x-modelmux-model"]) == "模型"


@pytest.mark.parametrize(
    "name", ["vllm/ok\nx", "vllm/ok\u0000", "vllm/ok\u007f", "vllm/a\rb", "vllm/\u2028x", "llama\t"]
)
@pytest.mark.parametrize("stream", [False, True])
def test_control_characters_in_chat_model_names_are_a_400(
    api: httpx.Client, upstream: LoopbackServer, name: str, stream: bool
) -> None:
    before = chat_calls(upstream)
    resp = api.post("/v1/chat/completions", json={"model": name, **CHAT, "stream": stream})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == "model" and error["type"] == "invalid_request_error"
    assert "control or invisible character" in error["message"]
    assert chat_calls(upstream) == before


@pytest.mark.parametrize("name", ["echo/ok\nx", "echo/ok\u0000", "echo/ok\u007f"])
def test_control_characters_in_responses_model_names_are_a_400(api: httpx.Client, name: str) -> None:
    resp = api.post("/v1/responses", json={"model": name, "input": "hi"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "model"


def test_the_server_keeps_serving_after_them(api: httpx.Client) -> None:
    for name in ("vllm/ok\nx", "vllm/模型", "vllm/\u0000"):
        api.post("/v1/chat/completions", json={"model": name, **CHAT})
    assert api.post("/v1/chat/completions", json={"model": "llama", **CHAT}).status_code == 200
