"""Credentials and signing against the fake Bedrock: botocore's chain, profiles, refresh, API keys, doctor."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from modelmux_provider_bedrock.auth import MissingRegionError
from modelmux_provider_bedrock.provider import BedrockProvider
from modelmux_provider_bedrock.settings import BedrockSettings

from modelmux.plugin import Completion, Host, UpstreamAuthError, UpstreamRequest
from modelmux.testing import LoopbackServer, free_port

BODY = {"model": "nova", "messages": [{"role": "user", "content": "who signs?"}]}


@pytest.fixture
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS environment with nothing in it: no keys, empty config files, no instance metadata."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def make(host: Host, fake: LoopbackServer, region: str | None = "us-west-2", **kw: Any) -> BedrockProvider:
    return BedrockProvider("bedrock", BedrockSettings(type="bedrock", region=region, endpoint_url=fake.url, **kw), host)


async def ask(provider: BedrockProvider, model: str = "amazon.nova-lite-v1:0") -> Completion:
    result = await provider.chat(UpstreamRequest(BODY, model, "nova", False, uuid.uuid4().hex))
    assert isinstance(result, Completion)
    return result


def signed_with(fake: LoopbackServer) -> str:
    auth = fake.requests[-1]["headers"]["Authorization"]
    return str(auth.split("Credential=")[1].split("/")[0])


async def test_keys_from_the_environment(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: Any
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bedrock_wire.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bedrock_wire.secret_key)
    provider = make(host, fake_bedrock)
    assert (await ask(provider)).json()["choices"][0]["message"]["content"] == "You said: who signs?"
    assert signed_with(fake_bedrock) == bedrock_wire.access_key
    checks = {c.name: c for c in await provider.doctor()}
    assert checks["credentials found"].ok and "env" in checks["credentials found"].detail
    assert bedrock_wire.secret_key not in checks["credentials found"].detail


async def test_named_profile_with_session_token_and_its_region(
    aws_env: Path, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: Any
) -> None:
    (aws_env / "credentials").write_text(
        f"[team]\naws_access_key_id = {bedrock_wire.access_key_2}\n"
        f"aws_secret_access_key = {bedrock_wire.secret_key_2}\naws_session_token = {bedrock_wire.session_token_2}\n"
    )
    (aws_env / "config").write_text(f"[profile team]\nregion = {bedrock_wire.region}\n")
    provider = make(host, fake_bedrock, region=None, profile="team")
    assert provider.region == bedrock_wire.region  # from the profile, no network
    await ask(provider)
    assert signed_with(fake_bedrock) == bedrock_wire.access_key_2
    assert fake_bedrock.requests[-1]["headers"]["X-Amz-Security-Token"] == bedrock_wire.session_token_2


async def test_expiring_credentials_are_refreshed_by_botocore(
    aws_env: Path, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: Any
) -> None:
    """A credential_process that hands out short-lived keys: botocore's refreshable credentials
    fetch new ones before each request once they are inside the refresh window."""
    script = aws_env / "creds.py"
    counter = aws_env / "calls"
    script.write_text(
        "import datetime, json, pathlib\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        "exp = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)).strftime('%Y-%m-%dT%H:%M:%SZ')\n"
        f"keys = [({bedrock_wire.access_key!r}, {bedrock_wire.secret_key!r}, None), "
        f"({bedrock_wire.access_key_2!r}, {bedrock_wire.secret_key_2!r}, {bedrock_wire.session_token_2!r})]\n"
        "key, secret, token = keys[n % 2]\n"
        "out = {'Version': 1, 'AccessKeyId': key, 'SecretAccessKey': secret, 'Expiration': exp}\n"
        "if token: out['SessionToken'] = token\n"
        "print(json.dumps(out))\n"
    )
    (aws_env / "config").write_text(f"[profile rotating]\ncredential_process = {sys.executable} {script}\n")
    provider = make(host, fake_bedrock, profile="rotating")
    seen = []
    for _ in range(3):
        await ask(provider)
        seen.append(signed_with(fake_bedrock))
    assert len(set(seen)) == 2, seen  # the keys changed between requests: refreshed, each accepted
    assert int(counter.read_text()) >= 3


async def test_no_credentials_is_an_auth_error_with_the_fix(
    aws_env: Path, host: Host, fake_bedrock: LoopbackServer
) -> None:
    provider = make(host, fake_bedrock)
    with pytest.raises(UpstreamAuthError) as info:
        await ask(provider)
    assert info.value.status_code == 502 and not info.value.retryable
    assert "no AWS credentials found" in info.value.message and "AWS_PROFILE" in info.value.message
    checks = {c.name: c for c in await provider.doctor()}
    assert not checks["credentials found"].ok and "AWS_ACCESS_KEY_ID" in checks["credentials found"].fix
    assert checks["credentials found"].topic == "auth"


async def test_wrong_secret_is_rejected_by_the_signature_check(
    aws_env: Path, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: Any
) -> None:
    provider = make(host, fake_bedrock, aws_access_key_id=bedrock_wire.access_key, aws_secret_access_key="wrong")
    with pytest.raises(UpstreamAuthError) as info:
        await ask(provider)
    assert "InvalidSignatureException" in info.value.message and "wrong" not in info.value.message


async def test_unknown_access_key_is_rejected(
    aws_env: Path, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: Any
) -> None:
    provider = make(host, fake_bedrock, aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key=bedrock_wire.secret_key)
    with pytest.raises(UpstreamAuthError) as info:
        await ask(provider)
    assert "UnrecognizedClientException" in info.value.message


async def test_api_key_from_the_environment(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: Any
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", bedrock_wire.api_key)
    provider = make(host, fake_bedrock)
    await ask(provider)
    assert fake_bedrock.requests[-1]["headers"]["Authorization"] == f"Bearer {bedrock_wire.api_key}"
    checks = {c.name: c for c in await provider.doctor()}
    assert checks["credentials found"].ok and bedrock_wire.api_key not in checks["credentials found"].detail


async def test_arn_model_ids_are_quoted_and_signed(
    aws_env: Path, host: Host, fake_bedrock: LoopbackServer, bedrock_wire: Any
) -> None:
    provider = make(
        host, fake_bedrock, aws_access_key_id=bedrock_wire.access_key, aws_secret_access_key=bedrock_wire.secret_key
    )
    arn = "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/abc123"
    await ask(provider, arn)
    assert fake_bedrock.requests[-1]["path"] == (
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse"
    )


def test_missing_region_names_the_key_and_the_fix(aws_env: Path, host: Host) -> None:
    with pytest.raises(MissingRegionError) as info:
        BedrockProvider("aws", BedrockSettings(type="bedrock"), host)
    assert str(info.value) == (
        "providers.aws.region: missing. Set it, set AWS_REGION, or run: modelmux config init --preset bedrock"
    )


def test_region_from_the_environment(aws_env: Path, monkeypatch: pytest.MonkeyPatch, host: Host) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    provider = BedrockProvider("aws", BedrockSettings(type="bedrock"), host)
    assert provider.endpoint == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    provider = BedrockProvider("aws", BedrockSettings(type="bedrock"), host)
    assert provider.endpoint == "https://bedrock-runtime.cn-north-1.amazonaws.com.cn"


def test_keys_must_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="go together"):
        BedrockSettings(type="bedrock", aws_access_key_id="AKIA")


@pytest.fixture
def dead_endpoint() -> Iterator[SimpleNamespace]:
    yield SimpleNamespace(url=f"http://127.0.0.1:{free_port()}")


async def test_doctor_reports_an_unreachable_endpoint_with_the_fix(
    aws_env: Path, host: Host, dead_endpoint: Any, bedrock_wire: Any, fake_bedrock: LoopbackServer
) -> None:
    keys = {"aws_access_key_id": bedrock_wire.access_key, "aws_secret_access_key": bedrock_wire.secret_key}
    ok = {c.name: c for c in await make(host, fake_bedrock, **keys).doctor()}
    assert all(c.ok for c in ok.values()) and set(ok) == {"region set", "credentials found", "endpoint reachable"}
    checks = {c.name: c for c in await make(host, dead_endpoint, **keys).doctor()}
    reach = checks["endpoint reachable"]
    assert not reach.ok and reach.topic == "network"
    assert "cannot connect" in reach.detail and "endpoint_url" in reach.fix
