"""The azure provider against a fake Azure OpenAI over real HTTP, and end to end with the openai SDK."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from modelmux_provider_azure.plugin import render_preset
from modelmux_provider_azure.provider import AzureProvider, AzureSettings, responses_supported

from modelmux.plugin import (
    Completion,
    EventStream,
    Host,
    ModelMuxError,
    RawEventStream,
    UpstreamAuthError,
    UpstreamRequest,
)
from modelmux.testing import ConfigError, LoopbackServer, ProviderContract, RunningGateway, load_config, run_gateway

API_KEY = "azure-key-123"
API_VERSION = "2024-10-21"
MESSAGES: Any = [{"role": "user", "content": "hi"}]


def make(url: str, host: Host, **kw: Any) -> AzureProvider:
    kw.setdefault("api_key", API_KEY)
    return AzureProvider("azure", AzureSettings(endpoint=url, **kw), host)


def req(body: dict[str, Any], deployment: str = "gpt-4o-prod") -> UpstreamRequest:
    return UpstreamRequest(body, deployment, str(body.get("model")), bool(body.get("stream")), "r1")


class TestAzureClassicContract(ProviderContract):
    upstream_model = "gpt-4o-prod"
    embedding_model = "embed-small-prod"
    counts_unasked_stream_usage = False  # a passthrough: the upstream sends usage only when asked (docs/plugins.md)

    @pytest.fixture
    def provider_config(self, fake_azure: LoopbackServer) -> dict[str, Any]:
        return {"type": "azure", "endpoint": fake_azure.url, "api_key": API_KEY, "api_version": API_VERSION}


class TestAzureV1Contract(ProviderContract):
    upstream_model = "gpt-4o-prod"
    embedding_model = "embed-small-prod"
    counts_unasked_stream_usage = False  # a passthrough: the upstream sends usage only when asked (docs/plugins.md)

    @pytest.fixture
    def provider_config(self, fake_azure: LoopbackServer) -> dict[str, Any]:
        return {"type": "azure", "endpoint": fake_azure.url, "api_key": API_KEY}


async def test_classic_path_query_and_key(host: Host, fake_azure: LoopbackServer) -> None:
    p = make(fake_azure.url + "/", host, api_version=API_VERSION)
    result = await p.chat(req({"model": "gpt4o", "messages": MESSAGES}, deployment="my deployment"))
    assert isinstance(result, Completion)
    seen = fake_azure.requests[-1]
    assert seen["path"] == f"/openai/deployments/my%20deployment/chat/completions?api-version={API_VERSION}"
    assert seen["headers"]["api-key"] == API_KEY and "Authorization" not in seen["headers"]
    assert orjson.loads(seen["body"]) == {"model": "my deployment", "messages": MESSAGES}


async def test_v1_path_has_no_api_version_and_names_the_deployment_in_the_body(
    host: Host, fake_azure: LoopbackServer
) -> None:
    p = make(fake_azure.url + "/openai/v1/", host)  # a pasted SDK base URL works too
    result = await p.chat(req({"model": "gpt4o", "messages": MESSAGES}))
    assert isinstance(result, Completion)
    seen = fake_azure.requests[-1]
    assert seen["path"] == "/openai/v1/chat/completions"
    assert orjson.loads(seen["body"])["model"] == "gpt-4o-prod"


async def test_leading_prompt_filter_event_is_dropped_the_rest_passes_untouched(
    host: Host, fake_azure: LoopbackServer
) -> None:
    p = make(fake_azure.url, host, api_version=API_VERSION)
    stream = await p.chat(req({"model": "m", "messages": MESSAGES, "stream": True}))
    assert isinstance(stream, RawEventStream)
    try:
        raw = b"".join([frame async for frame in stream.sse()])
    finally:
        await stream.aclose()
    assert b"prompt_filter_results" not in raw
    assert raw.startswith(b'data: {"id":"chatcmpl-az1"') and raw.endswith(b"data: [DONE]\n\n")
    assert raw.count(b"content_filter") == 0 and b"Hello" in raw


async def test_content_filter_refusal_is_a_400_that_says_so(host: Host, fake_azure: LoopbackServer) -> None:
    p = make(fake_azure.url, host, api_version=API_VERSION)
    with pytest.raises(ModelMuxError) as info:
        await p.chat(req({"model": "m", "messages": MESSAGES}, deployment="filtered"))
    err = info.value
    assert err.status_code == 400 and err.code == "content_filter"
    assert "filtered by Azure OpenAI's content filter (violence)" in err.message


async def test_missing_deployment_is_a_404_naming_the_fix(host: Host, fake_azure: LoopbackServer) -> None:
    p = make(fake_azure.url, host, api_version=API_VERSION)
    with pytest.raises(ModelMuxError) as info:
        await p.chat(req({"model": "m", "messages": MESSAGES}, deployment="missing"))
    assert info.value.status_code == 404 and "deployment name" in info.value.message


async def test_wrong_key_is_a_502_with_the_fix(host: Host, fake_azure: LoopbackServer) -> None:
    p = make(fake_azure.url, host, api_key="wrong-key", api_version=API_VERSION)
    with pytest.raises(UpstreamAuthError) as info:
        await p.chat(req({"model": "m", "messages": MESSAGES}))
    assert "providers.azure.api_key" in info.value.message and "wrong-key" not in info.value.message
    checks = {c.name: c for c in await p.doctor()}
    reach = checks["Azure accepts our credentials"]
    assert checks["API path"].ok and not reach.ok and reach.topic == "auth"


@pytest.fixture
def managed_identity(fake_azure: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-identity finds an App Service managed identity whose endpoint is the fake's."""
    for var in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "MSI_ENDPOINT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", fake_azure.url + "/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "identity-secret")


async def test_entra_id_tokens_from_azure_identity(
    host: Host, fake_azure: LoopbackServer, managed_identity: None
) -> None:
    p = AzureProvider("azure", AzureSettings(endpoint=fake_azure.url, auth="entra"), host)
    try:
        result = await p.chat(req({"model": "m", "messages": MESSAGES}))
        assert isinstance(result, Completion)
        headers = {k.lower(): v for k, v in fake_azure.requests[-1]["headers"].items()}
        assert headers["authorization"] == "Bearer entra-token-xyz"
        assert "api-key" not in headers
        assert any(r["path"].startswith("/msi/token?") for r in fake_azure.requests)
    finally:
        await p.aclose()


def test_api_key_is_required_unless_entra() -> None:
    with pytest.raises(ValueError, match="api_key: missing"):
        AzureSettings(endpoint="https://res.openai.azure.com")
    assert AzureSettings(endpoint="https://res.openai.azure.com", auth="entra").auth == "entra"


def test_responses_allowed_by_api_version() -> None:
    assert responses_supported(None)
    assert responses_supported("2025-03-01-preview") and responses_supported("2025-04-01-preview")
    assert not responses_supported("2024-10-21")


async def test_native_responses_on_both_paths(host: Host, fake_azure: LoopbackServer) -> None:
    old = make(fake_azure.url, host, api_version=API_VERSION)
    assert old.native_responses is False
    for p, path in (
        (
            make(fake_azure.url, host, api_version="2025-04-01-preview"),
            "/openai/responses?api-version=2025-04-01-preview",
        ),
        (make(fake_azure.url, host), "/openai/v1/responses"),
    ):
        assert p.native_responses is True
        done = await p.responses(req({"model": "m", "input": "hi"}))
        assert isinstance(done, Completion) and done.json()["output"][0]["content"][0]["text"].startswith("Hello")
        assert fake_azure.requests[-1]["path"] == path
        stream = await p.responses(req({"model": "m", "input": "hi", "stream": True}))
        assert isinstance(stream, EventStream) and stream.kind == "responses"
        try:
            types = [e["type"] async for e in stream.events()]
        finally:
            await stream.aclose()
        assert types == ["response.created", "response.completed"]


async def test_list_models_and_doctor(host: Host, fake_azure: LoopbackServer) -> None:
    for kw, path in (
        ({"api_version": API_VERSION}, f"/openai/models?api-version={API_VERSION}"),
        ({}, "/openai/v1/models"),
    ):
        p = make(fake_azure.url, host, **kw)
        assert await p.list_models() == ["gpt-4o", "gpt-4.1-mini"]
        assert fake_azure.requests[-1]["path"] == path
    checks = await make(fake_azure.url, host).doctor()
    names = {c.name: c for c in checks}
    assert not names["endpoint uses https"].ok  # the fake is plain http: doctor says so
    assert names["Azure endpoint reachable"].ok


def test_preset_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://myres.openai.azure.com/")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    monkeypatch.delenv("AZURE_OPENAI_API_VERSION", raising=False)
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    text = render_preset({"interactive": False})
    data = tomllib.loads(text)
    assert data["providers"]["azure"]["endpoint"] == "https://myres.openai.azure.com"
    assert "api_version" not in data["providers"]["azure"]
    assert "k" != data["providers"]["azure"]["api_key"]  # a reference, never the secret itself
    path = tmp_path / "modelmux.toml"
    path.write_text(text)
    cfg = load_config(path)
    assert isinstance(cfg.providers["azure"], AzureSettings)


def test_config_error_names_the_key_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "modelmux.toml"
    path.write_text('[providers.az]\ntype = "azure"\nendpoint = "https://r.openai.azure.com"\n')
    with pytest.raises(ConfigError, match=r"providers\.az.*api_key: missing.*auth = \"entra\""):
        load_config(path)


# End to end: the official openai SDK through the real gateway.


@pytest.fixture(scope="module")
def gateway(fake_azure: LoopbackServer) -> Iterator[RunningGateway]:
    cfg = {
        "providers": {
            "azure": {"type": "azure", "endpoint": fake_azure.url, "api_key": API_KEY, "api_version": API_VERSION}
        },
        "models": {
            "gpt-4o": {"provider": "azure", "model": "gpt-4o-prod"},
            "filtered": {"provider": "azure", "model": "filtered"},
            "filtered-output": {"provider": "azure", "model": "filtered-output"},
            "embed": {"provider": "azure", "model": "embed-small-prod"},
            "embed-v1": {"provider": "azure-v1", "model": "embed-small-prod"},
        },
    }
    cfg["providers"]["azure-v1"] = {"type": "azure", "endpoint": fake_azure.url, "api_key": API_KEY}
    with run_gateway(cfg) as gw:
        yield gw


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0, timeout=20)


def test_sdk_non_stream_and_stream(client: openai.OpenAI, fake_azure: LoopbackServer) -> None:
    done = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert done.choices[0].message.content == "Hello from Azure"
    assert fake_azure.requests[-1]["path"].startswith("/openai/deployments/gpt-4o-prod/chat/completions?")
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.id == "chatcmpl-az1" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Azure"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12


def test_sdk_sees_a_filtered_prompt_as_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="filtered", messages=MESSAGES)
    assert info.value.code == "content_filter"
    assert "filtered by Azure OpenAI's content filter" in info.value.message


def test_sdk_sees_content_filter_finish_reasons(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(model="filtered-output", messages=MESSAGES)
    assert done.choices[0].finish_reason == "content_filter"
    finishes = [
        c.choices[0].finish_reason
        for c in client.chat.completions.create(model="filtered-output", messages=MESSAGES, stream=True)
        if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["content_filter"]


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("embed", f"/openai/deployments/embed-small-prod/embeddings?api-version={API_VERSION}"),
        ("embed-v1", "/openai/v1/embeddings"),
    ],
)
def test_sdk_embeddings_on_both_paths(client: openai.OpenAI, fake_azure: LoopbackServer, model: str, path: str) -> None:
    out = client.embeddings.create(model=model, input=["alpha", "beta"], dimensions=4)  # base64, the SDK default
    assert [len(d.embedding) for d in out.data] == [4, 4] and out.usage.total_tokens == 2  # a token a word
    seen = fake_azure.requests[-1]
    assert seen["path"] == path and seen["headers"]["api-key"] == API_KEY
    sent = orjson.loads(seen["body"])
    assert sent == {
        "model": "embed-small-prod",
        "input": ["alpha", "beta"],
        "dimensions": 4,
        "encoding_format": "base64",
    }


def test_sdk_embeddings_with_a_chat_deployment_is_azures_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="gpt-4o", input="x")
    assert "embeddings operation does not work" in info.value.message
