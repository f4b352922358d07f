"""The router with a provider plugin that landed (vertex): retries, time bounds and fallbacks
work for it without code of its own. The fake Vertex misbehaves before any Anthropic body
would matter; a real OAuth token endpoint hands out the access token."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from modelmux.testing import run_gateway, serve_aiohttp
from modelmux.testing.faults import Fault, FaultyUpstream

MESSAGES = [{"role": "user", "content": "hello there"}]


async def _token(request: web.Request) -> web.Response:
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
