"""The openai_compatible provider against a fake vLLM over real HTTP: contract, auth, passthrough bytes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest
from modelmux_provider_vllm.plugin import render_preset
from modelmux_provider_vllm.provider import OpenAICompatibleProvider, OpenAICompatibleSettings

from modelmux.plugin import (
    Completion,
    EventStream,
    Host,
    ModelMuxError,
    RawEventStream,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRequest,
)
from modelmux.testing import ConfigError, LoopbackServer, ProviderContract, free_port, load_config

API_KEY = "sk-vllm-test"


def make(server_url: str, host: Host, **kw: Any) -> OpenAICompatibleProvider:
    settings = OpenAICompatibleSettings(base_url=server_url + "/v1", api_key=kw.pop("api_key", API_KEY), **kw)
    return OpenAICompatibleProvider("vllm", settings, host)


def req(body: dict[str, Any], model: str = "meta-llama/Llama-3.1-8B-Instruct") -> UpstreamRequest:
    return UpstreamRequest(body, model, str(body.get("model")), bool(body.get("stream")), "req-1")


class TestOpenAICompatibleContract(ProviderContract):
    upstream_model = "meta-llama/Llama-3.1-8B-Instruct"
    embedding_model = "BAAI/bge-m3"
    counts_unasked_stream_usage = False  # a passthrough: the upstream sends usage only when asked (docs/plugins.md)

    @pytest.fixture
    def provider_config(self, fake_vllm: LoopbackServer) -> dict[str, Any]:
        # Made as the gateway makes it: through the alias "vllm" and the registered class.
        return {"type": "vllm", "base_url": fake_vllm.url + "/v1", "api_key": API_KEY}


async def test_body_is_the_clients_with_only_the_model_replaced(host: Host, fake_vllm: LoopbackServer) -> None:
    body = {
        "model": "llama",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "chat_template_kwargs": {"enable_thinking": False},  # a vLLM extension, unknown to OpenAI
        "guided_json": {"type": "object"},
    }
    result = await make(fake_vllm.url, host).chat(req(body))
    assert isinstance(result, Completion)
    seen = fake_vllm.requests[-1]
    assert seen["path"] == "/v1/chat/completions"
    assert orjson.loads(seen["body"]) == {**body, "model": "meta-llama/Llama-3.1-8B-Instruct"}
    assert body["model"] == "llama"  # the client's dict was not changed
    assert seen["headers"]["Authorization"] == f"Bearer {API_KEY}"


async def test_non_stream_answer_is_the_upstreams_bytes(host: Host, fake_vllm: LoopbackServer) -> None:
    result = await make(fake_vllm.url, host).chat(req({"model": "x", "messages": [{"role": "user", "content": "hi"}]}))
    assert isinstance(result, Completion)
    assert result.json()["choices"][0]["message"]["content"] == "Hello from fake vLLM"
    # No re-encoding: byte-identical to what an unproxied client would have read.
    assert result.body() == orjson.dumps(result.json())
    assert result.usage == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


async def test_stream_bytes_pass_through_untouched_and_usage_is_seen(
    host: Host, fake_vllm: LoopbackServer, expected_frames: Any
) -> None:
    body = {
        "model": "x",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    result = await make(fake_vllm.url, host).chat(req(body))
    assert isinstance(result, RawEventStream)
    try:
        got = b"".join([frame async for frame in result.sse()])
    finally:
        await result.aclose()
    sent = orjson.loads(fake_vllm.requests[-1]["body"])
    assert got == b"".join(expected_frames("meta-llama/Llama-3.1-8B-Instruct", sent))
    assert result.usage == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


async def test_custom_key_header_and_static_headers(host: Host, make_fake_vllm: Any) -> None:
    server = make_fake_vllm(api_key="k-123", auth_header="x-api-key")
    p = make(server.url, host, api_key="k-123", api_key_header="X-Api-Key", headers={"X-Tenant": "team-a"})
    result = await p.chat(req({"model": "x", "messages": [{"role": "user", "content": "hi"}]}))
    assert isinstance(result, Completion)
    headers = server.requests[-1]["headers"]
    assert headers["X-Api-Key"] == "k-123"
    assert headers["X-Tenant"] == "team-a"
    assert "Authorization" not in headers


async def test_no_key_sends_no_auth_header(host: Host, make_fake_vllm: Any) -> None:
    server = make_fake_vllm(api_key=None)
    result = await make(server.url, host, api_key="").chat(
        req({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    )
    assert isinstance(result, Completion)
    assert "Authorization" not in server.requests[-1]["headers"]


async def test_wrong_key_is_a_502_naming_the_provider_and_the_fix(host: Host, fake_vllm: LoopbackServer) -> None:
    with pytest.raises(UpstreamAuthError) as info:
        await make(fake_vllm.url, host, api_key="wrong").chat(req({"model": "x", "messages": []}))
    assert info.value.status_code == 502
    assert "provider vllm" in info.value.message and "providers.vllm.api_key" in info.value.message
    assert "wrong" not in info.value.message


async def test_upstream_400_body_reaches_the_client_intact(host: Host, fake_vllm: LoopbackServer) -> None:
    with pytest.raises(ModelMuxError) as info:
        await make(fake_vllm.url, host).chat(req({"model": "x", "messages": []}, model="bad-request"))
    assert info.value.status_code == 400
    assert orjson.loads(info.value.to_json())["error"]["code"] == "context_length_exceeded"


async def test_html_instead_of_json_is_a_clear_502(host: Host, fake_vllm: LoopbackServer) -> None:
    with pytest.raises(UpstreamError) as info:
        await make(fake_vllm.url, host).chat(req({"model": "x", "messages": []}, model="html"))
    assert "instead of JSON" in info.value.message and info.value.status_code == 502


async def test_unreachable_upstream_is_a_502(host: Host) -> None:
    p = make(f"http://127.0.0.1:{free_port()}", host)
    with pytest.raises(UpstreamError) as info:
        await p.chat(req({"model": "x", "messages": []}))
    assert info.value.code == "upstream_unreachable"


async def test_native_responses_pass_through(host: Host, fake_vllm: LoopbackServer) -> None:
    p = make(fake_vllm.url, host)
    assert p.native_responses is True
    body = {"model": "gpt-oss", "input": "hi"}
    result = await p.responses(req(body, model="openai/gpt-oss-120b"))
    assert isinstance(result, Completion)
    assert result.json()["output"][0]["content"][0]["text"] == "Hello from responses"
    assert fake_vllm.requests[-1]["path"] == "/v1/responses"
    assert orjson.loads(fake_vllm.requests[-1]["body"])["model"] == "openai/gpt-oss-120b"

    stream = await p.responses(req({**body, "stream": True}, model="openai/gpt-oss-120b"))
    assert isinstance(stream, EventStream) and stream.kind == "responses"
    try:
        events = [e async for e in stream.events()]
    finally:
        await stream.aclose()
    assert [e["type"] for e in events] == ["response.created", "response.output_text.delta", "response.completed"]
    assert stream.usage == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}


async def test_native_responses_can_be_turned_off(host: Host, fake_vllm: LoopbackServer) -> None:
    p = make(fake_vllm.url, host, native_responses=False)
    assert p.native_responses is False
    with pytest.raises(NotImplementedError):
        await p.responses(req({"model": "x", "input": "hi"}))


async def test_list_models_and_doctor(host: Host, fake_vllm: LoopbackServer) -> None:
    p = make(fake_vllm.url, host)
    assert await p.list_models() == ["openai/gpt-oss-120b", "meta-llama/Llama-3.1-8B-Instruct"]
    assert fake_vllm.requests[-1]["path"] == "/v1/models"
    checks = await p.doctor()
    assert [c.ok for c in checks] == [True] and "2 model(s)" in checks[0].detail


async def test_doctor_names_each_failure_and_its_fix(host: Host, fake_vllm: LoopbackServer) -> None:
    (bad_key,) = await make(fake_vllm.url, host, api_key="nope").doctor()
    assert not bad_key.ok and bad_key.topic == "auth" and "api_key" in bad_key.fix
    no_v1 = OpenAICompatibleProvider("vllm", OpenAICompatibleSettings(base_url=fake_vllm.url, api_key=API_KEY), host)
    (missing,) = await no_v1.doctor()
    assert not missing.ok and missing.topic == "config" and missing.fix.endswith("/v1")
    (down,) = await make(f"http://127.0.0.1:{free_port()}", host).doctor()
    assert not down.ok and down.topic == "network" and "base_url" in down.fix


def test_settings_reject_a_base_url_without_a_scheme() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        OpenAICompatibleSettings(base_url="localhost:8000/v1")


def test_preset_detects_a_server_and_renders_a_valid_config(
    fake_vllm: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_BASE_URL", fake_vllm.url + "/v1")
    monkeypatch.setenv("VLLM_API_KEY", API_KEY)
    text = render_preset({"interactive": False})
    assert "openai/gpt-oss-120b" in text
    data = tomllib.loads(text)
    assert data["providers"]["vllm"]["base_url"] == fake_vllm.url + "/v1"
    assert data["models"]["gpt-oss-120b"] == {"provider": "vllm", "model": "openai/gpt-oss-120b"}
    path = tmp_path / "modelmux.toml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.providers["vllm"].type == "openai_compatible"


def test_preset_without_a_server_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    text = render_preset({"interactive": False})
    assert "Nothing answered" in text
    tomllib.loads(text)


def test_alias_type_vllm_and_bad_settings_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "modelmux.toml"
    path.write_text('[providers.local]\ntype = "vllm"\nbase_url = "http://127.0.0.1:8000/v1"\n')
    cfg = load_config(path)
    assert isinstance(cfg.providers["local"], OpenAICompatibleSettings)
    path.write_text('[providers.local]\ntype = "vllm"\nbase_url = "ftp://x"\n')
    with pytest.raises(ConfigError, match=r"providers\.local\.base_url"):
        load_config(path)


@pytest.mark.parametrize("name", ["vllm-llama3.toml", "vllm-gpt-oss-120b.toml"])
def test_example_configs_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_BASE_URL", raising=False)
    path = Path(__file__).resolve().parents[3] / "examples" / name
    cfg = load_config(path)
    settings = cfg.providers["vllm"]
    assert isinstance(settings, OpenAICompatibleSettings) and settings.base_url == "http://localhost:8000/v1"
    assert all(m.provider == "vllm" for m in cfg.settings.models.values())
