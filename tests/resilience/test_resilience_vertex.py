"""The router with a provider plugin that landed (vertex): retries, time bounds and fallbacks
work for it without code of its own. The fake Vertex misbehaves before any Anthropic body
would matter; a real OAuth token endpoint hands out the access token."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from modelmux.testing import run_gateway, serve_aiohttp
from modelmux.testing.faults import Fault, FaultyUpstream

MESSAGES = [{"role": "user", "content": "hello there"}]


#: Token requests still to fail with a 503 (google-auth tries 3 times per refresh), and how many came.
TOKEN = {"fail": 0, "calls": 0}


async def _token(request: web.Request) -> web.Response:
    TOKEN["calls"] += 1
    if TOKEN["fail"] > 0:
        TOKEN["fail"] -= 1
        return web.json_response({"error": "temporarily_unavailable"}, status=503)
    return web.json_response({"access_token": "fake-access-token", "expires_in": 3600, "token_type": "Bearer"})


@pytest.fixture
def vertex(tmp_path: Any) -> Any:
    """(fake upstream, its server, a service-account key file whose token_uri is the fake)."""
    up = FaultyUpstream()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with serve_aiohttp(up.app([web.post("/token", _token)], any_path=True)) as server:
        key_file = tmp_path / "sa.json"
        key_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "p",
                    "private_key_id": "k1",
                    "private_key": pem,
                    "client_email": "gw@p.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{server.url}/token",
                }
            )
        )
        yield up, server, key_file


def vertex_config(url: str, key_file: Any, **extra: Any) -> dict[str, Any]:
    return {
        "state": {"backend": "memory"},
        "providers": {
            "claude": {
                "type": "vertex",
                "project": "p",
                "region": "us-east5",
                "base_url": url,
                "credentials_file": str(key_file),
                **extra,
            },
            "echo": {"type": "echo"},
        },
        "models": {
            "sonnet": {"provider": "claude", "model": "claude-sonnet-4-5@20250929", "fallbacks": ["echo"]},
            "echo": {"provider": "echo", "model": "echo"},
        },
    }


def test_vertex_429_then_503_is_retried_then_falls_back(vertex: Any) -> None:
    up, server, key_file = vertex
    up.plan(Fault.error(429, retry_after=0.05), Fault.error(503))
    with run_gateway(vertex_config(server.url, key_file, max_retries=1)) as gw:
        c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
        raw = c.chat.completions.with_raw_response.create(model="sonnet", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == "hello there"
        assert raw.headers["x-modelmux-provider"] == "echo"
        assert up.attempts == 2  # the first try and max_retries = 1
        assert all(r["headers"].get("Authorization") == "Bearer fake-access-token" for r in server.requests[1:])
        assert server.requests[-1]["path"].endswith("claude-sonnet-4-5@20250929:rawPredict")


def test_vertex_stream_that_hangs_before_its_first_byte_falls_back(vertex: Any, settle: Any) -> None:
    up, server, key_file = vertex
    up.default = Fault.hang()
    with run_gateway(vertex_config(server.url, key_file, max_retries=0, first_byte_timeout_seconds=0.3)) as gw:
        c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
        raw = c.chat.completions.with_raw_response.create(model="sonnet", messages=MESSAGES, stream=True)
        text = "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices)
        assert (text, raw.headers["x-modelmux-provider"]) == ("hello there", "echo")
        assert up.attempts == 1
        assert server.requests[-1]["path"].endswith(":streamRawPredict")
        assert settle(lambda: up.closed_early == 1)  # the hung upstream call was closed


def test_a_failing_token_endpoint_counts_against_the_provider_and_never_becomes_a_breaker_503(vertex: Any) -> None:
    """The Google token endpoint answers 503: a model with a fallback moves to it, a model with only
    this deployment gets the token error (not a gateway 503), and both go back to Vertex once
    tokens come again; /health shows the token failure against the provider."""
    up, server, key_file = vertex
    config = vertex_config(server.url, key_file, max_retries=0)
    config["models"]["solo"] = {"provider": "claude", "model": "claude-sonnet-4-5@20250929"}
    config["router"] = {"circuit_breaker": {"failures": 1, "min_requests": 1, "cooldown_seconds": 60}}
    TOKEN.update(fail=6, calls=0)  # two refreshes of three tries each
    try:
        with run_gateway(config) as gw:
            c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
            raw = c.chat.completions.with_raw_response.create(model="sonnet", messages=MESSAGES)
            assert raw.headers["x-modelmux-provider"] == "echo"
            with pytest.raises(openai.APIStatusError) as failed:
                c.chat.completions.create(model="solo", messages=MESSAGES)
            assert failed.value.status_code == 502 and failed.value.code == "upstream_token_error"
            assert "Google token endpoint failed to issue an access token" in failed.value.message
            assert "Vertex AI itself was not called" in failed.value.message
            assert up.attempts == 0 and TOKEN["calls"] == 6
            claude = httpx.get(f"{gw.root}/health").json()["providers"]["claude"]
            assert claude["status"] == "down" and claude["circuit"] == "open"
            assert "token endpoint" in claude["last_error_message"]
            # Tokens come again: the only deployment of solo is tried although its breaker is open
            # (this fake then answers in OpenAI's shape, which Vertex's translator refuses).
            with pytest.raises(openai.APIStatusError) as reached:
                c.chat.completions.create(model="solo", messages=MESSAGES)
            assert up.attempts == 1 and reached.value.code != "upstream_token_error"
            assert "not a Messages answer" in reached.value.message
    finally:
        TOKEN.update(fail=0, calls=0)
