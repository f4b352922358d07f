"""The vertex provider against the fake Vertex AI: contract, auth, URLs, errors, doctor, preset."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from modelmux_provider_vertex.presets import render
from modelmux_provider_vertex.provider import VertexProvider, vertex_base_url
from modelmux_provider_vertex.settings import VertexSettings

from modelmux.plugin import (
    Completion,
    EventStream,
    Host,
    ModelMuxError,
    NotFoundError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRequest,
    UpstreamRequestError,
    UpstreamUnavailableError,
)
from modelmux.testing import ProviderContract


def make(fake: Any, host: Host, **over: Any) -> VertexProvider:
    return VertexProvider("claude", VertexSettings(**fake.provider_table(**over)), host)


def req(model: str, stream: bool = False, **body: Any) -> UpstreamRequest:
    payload = {"model": "claude-sonnet", "messages": [{"role": "user", "content": "Hi"}], **body}
    if stream:
        payload["stream"] = True
    return UpstreamRequest(payload, model, "claude-sonnet", stream, "rid")


async def collect(result: Completion | EventStream) -> list[dict[str, Any]]:
    assert isinstance(result, EventStream)
    try:
        return [c async for c in result.events()]
    finally:
        await result.aclose()


class TestVertexContract(ProviderContract):
    upstream_model = "text@20250929"

    @pytest.fixture
    def provider_config(self, fake_vertex: Any) -> dict[str, Any]:
        return dict(fake_vertex.provider_table(), name="claude")  # made by the registered factory


# --- URL, body and auth ---------------------------------------------------------------------


def test_default_hosts_by_region() -> None:
    assert vertex_base_url("us-east5") == "https://us-east5-aiplatform.googleapis.com"
    assert vertex_base_url("global") == "https://aiplatform.googleapis.com"


async def test_request_path_body_and_token(fake_vertex: Any, host: Host) -> None:
    p = make(fake_vertex, host)
    result = await p.chat(req("text@20250929", temperature=0.2))
    assert isinstance(result, Completion)
    sent = fake_vertex.predict_requests()[-1]
    assert sent["path"] == (
        "/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/text@20250929:rawPredict"
    )
    assert sent["headers"]["Authorization"] == "Bearer ya29.fake-1"
    body = json.loads(sent["body"])
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body
    assert body["temperature"] == 0.2
    stream = await p.chat(req("text@20250929", stream=True))
    await collect(stream)
    assert fake_vertex.predict_requests()[-1]["path"].endswith("text@20250929:streamRawPredict")


async def test_token_is_cached_across_requests(fake_vertex: Any, host: Host) -> None:
    p = make(fake_vertex, host)
    for _ in range(3):
        await p.chat(req("text@1"))
    assert fake_vertex.token_requests == 1
    tokens = {r["headers"]["Authorization"] for r in fake_vertex.predict_requests()}
    assert tokens == {"Bearer ya29.fake-1"}


async def test_concurrent_requests_share_one_refresh(fake_vertex: Any, host: Host) -> None:
    fake_vertex.token_delay = 0.2
    p = make(fake_vertex, host)
    results = await asyncio.gather(*(p.chat(req("text@1")) for _ in range(8)))
    assert all(isinstance(r, Completion) for r in results)
    assert fake_vertex.token_requests == 1


async def test_token_is_refreshed_before_it_expires(fake_vertex: Any, host: Host) -> None:
    # 200 s left is inside google-auth's refresh window: the next request gets a new token
    # although the old one has not expired yet.
    fake_vertex.expires_in = 200
    p = make(fake_vertex, host)
    await p.chat(req("text@1"))
    await p.chat(req("text@1"))
    assert fake_vertex.token_requests == 2
    assert [r["headers"]["Authorization"] for r in fake_vertex.predict_requests()] == [
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-2",
    ]


async def test_wrong_key_is_a_502_naming_the_credentials(
    fake_vertex: Any, host: Host, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    from cryptography.hazmat.primitives import serialization

    other = rsa.generate_private_key(public_exponent=65537, key_size=1024 * 2)
    data = json.loads(fake_vertex.key_file.read_text())
    data["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps(data))
    p = make(fake_vertex, host, credentials_file=str(bad))
    with pytest.raises(UpstreamAuthError) as info:
        await p.chat(req("text@1"))
    assert info.value.status_code == 502
    assert "modelmux-test@test-project.iam.gserviceaccount.com" in info.value.message
    assert "Invalid JWT Signature" in info.value.message and "Fix:" in info.value.message
    assert fake_vertex.predict_requests() == []


async def test_revoked_token_is_a_502_with_the_fix(fake_vertex: Any, host: Host) -> None:
    fake_vertex.reject_tokens = True
    with pytest.raises(UpstreamAuthError) as info:
        await make(fake_vertex, host).chat(req("text@1"))
    assert info.value.status_code == 502
    assert "401" in info.value.message and "gcloud auth application-default login" in info.value.message


async def test_application_default_credentials_from_env(
    fake_vertex: Any, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(fake_vertex.key_file))
    p = make(fake_vertex, host, credentials_file=None, project=None)
    result = await p.chat(req("text@1"))
    assert isinstance(result, Completion)
    assert p.project == "test-project"  # from the credentials
    assert fake_vertex.predict_requests()[-1]["headers"]["Authorization"] == "Bearer ya29.fake-1"


async def test_project_from_environment(
    fake_vertex: Any, host: Host, tmp_path: Path, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(fake_vertex.key_file.read_text())
    del data["project_id"]
    keyless = tmp_path / "noproject.json"
    keyless.write_text(json.dumps(data))
    p = make(fake_vertex, host, credentials_file=str(keyless), project=None)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(UpstreamAuthError, match=r"providers.claude.project: missing. Set it, set GOOGLE_CLOUD_PROJECT"):
        await p.chat(req("text@1"))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    assert isinstance(await p.chat(req("text@1")), Completion)


def test_missing_key_file_is_a_clear_startup_error(fake_vertex: Any, host: Host) -> None:
    from modelmux_provider_vertex.provider import factory

    settings = VertexSettings(**fake_vertex.provider_table(credentials_file="/nonexistent/sa.json"))
    with pytest.raises(ValueError, match=r"providers.claude.credentials_file: /nonexistent/sa.json does not exist"):
        factory("claude", settings, host)


# --- error mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "cls", "status", "words"),
    [
        ("error-400@1", UpstreamRequestError, 400, "image/png media type"),
        ("error-403@1", UpstreamAuthError, 502, "roles/aiplatform.user"),
        ("error-404@1", NotFoundError, 404, "'error-404@1' was not found in project test-project, region us-east5"),
        ("error-429@1", RateLimitError, 429, "Quota exceeded"),
        ("error-529@1", UpstreamUnavailableError, 503, "overloaded"),
        ("error-500@1", UpstreamError, 502, "Internal server error"),
    ],
)
async def test_upstream_errors_are_mapped(
    fake_vertex: Any, host: Host, model: str, cls: type[ModelMuxError], status: int, words: str
) -> None:
    p = make(fake_vertex, host)
    for stream in (False, True):
        with pytest.raises(cls) as info:
            await p.chat(req(model, stream=stream))
        assert info.value.status_code == status
        assert words in info.value.message
        assert b'"type":"error"' not in info.value.to_json()  # always OpenAI-shaped
    if status == 429:
        assert info.value.headers["retry-after"] == ("7" if model.startswith("error-429") else "1")


async def test_stream_error_event_raises_from_the_generator(fake_vertex: Any, host: Host) -> None:
    result = await make(fake_vertex, host).chat(req("error_mid@1", stream=True))
    seen: list[dict[str, Any]] = []
    with pytest.raises(UpstreamUnavailableError, match="Overloaded"):  # overloaded_error: a 503
        assert isinstance(result, EventStream)
        async for chunk in result.events():
            seen.append(chunk)
    await result.aclose()
    assert seen[1]["choices"][0]["delta"] == {"content": "Partial answer"}


async def test_dropped_connection_raises(fake_vertex: Any, host: Host) -> None:
    result = await make(fake_vertex, host).chat(req("cut@1", stream=True))
    with pytest.raises(UpstreamError) as info:
        await collect(result)
    assert info.value.code in ("upstream_disconnected", "upstream_stream_truncated")


async def test_multibyte_characters_split_across_reads(fake_vertex: Any, host: Host) -> None:
    fake_vertex.stream_write_size = 7  # cuts most multi-byte characters in two
    chunks = await collect(await make(fake_vertex, host).chat(req("utf8@1", stream=True)))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Grüße aus Zürich 日本語のテキスト and emoji 🎉🚀 — done"


async def test_http_image_is_fetched_and_sent_as_base64(
    fake_vertex: Any, host: Host, image_server: Any, png_bytes: bytes
) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"{image_server.url}/cat.png"}},
    ]
    await make(fake_vertex, host).chat(
        UpstreamRequest({"model": "m", "messages": [{"role": "user", "content": content}]}, "text@1", "m", False)
    )
    block = fake_vertex.last_body()["messages"][0]["content"][1]
    assert block["source"]["type"] == "base64" and block["source"]["media_type"] == "image/png"
    import base64

    assert base64.b64decode(block["source"]["data"]) == png_bytes


# --- doctor and preset ------------------------------------------------------------------------


async def test_doctor_all_green(fake_vertex: Any, host: Host) -> None:
    checks = await make(fake_vertex, host).doctor()
    assert [(c.name, c.ok) for c in checks] == [
        ("Google credentials found", True),
        ("access token obtainable", True),
        ("project set", True),
        ("Vertex AI endpoint reachable", True),
    ]


async def test_doctor_failures_carry_fixes(fake_vertex: Any, host: Host) -> None:
    fake_vertex.reject_tokens = True
    checks = await make(fake_vertex, host).doctor()
    assert not checks[-1].ok and checks[-1].topic == "auth" and "gcloud auth" in checks[-1].fix
    fake_vertex.reject_tokens = False
    unreachable = await make(fake_vertex, host, base_url="http://127.0.0.1:9").doctor()
    assert not unreachable[-1].ok and "network" in unreachable[-1].fix
    wrong_region = await make(fake_vertex, host, region="mars-north1").doctor()
    assert not wrong_region[-1].ok and "mars-north1" in wrong_region[-1].fix


async def test_doctor_without_credentials(host: Host, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    p = VertexProvider("claude", VertexSettings(type="vertex", project="p"), host)
    checks = await p.doctor()
    assert [c.name for c in checks] == ["Google credentials found"]
    assert not checks[0].ok and "application-default login" in checks[0].fix


def test_preset_detects_gcloud_project_and_adc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gcloud = tmp_path / "gcloud"
    (gcloud / "configurations").mkdir(parents=True)
    (gcloud / "active_config").write_text("work\n")
    (gcloud / "configurations" / "config_work").write_text("[core]\nproject = my-gcloud-project\n")
    (gcloud / "application_default_credentials.json").write_text(json.dumps({"type": "authorized_user"}))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(gcloud))
    for var in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    text = render({"interactive": False})
    import tomllib

    data = tomllib.loads(text)
    assert data["providers"]["claude"] == {
        "type": "vertex",
        "project": "my-gcloud-project",
        "region": "us-east5",
        "timeout_seconds": 120,
        "max_retries": 2,
    }
    assert "Application Default Credentials found" in text
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    assert tomllib.loads(render({}))["providers"]["claude"]["project"] == "env-project"


def test_preset_without_anything_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "empty"))
    for var in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    text = render({"interactive": False})
    import tomllib

    assert "project" not in tomllib.loads(text)["providers"]["claude"]
    assert "gcloud auth application-default login" in text or "metadata server" in text
