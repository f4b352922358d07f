"""Client API keys, the body size limit, and open health/metrics paths."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from modelmux.testing import RunningGateway, run_gateway

API_KEY = "sk-test-client-key-0123456789"
BODY = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def keyed() -> Iterator[RunningGateway]:
    with run_gateway({"server": {"api_keys": [API_KEY, "sk-second-key-abcdef"], "max_request_bytes": 4096}}) as gw:
        yield gw


def test_a_valid_bearer_key_is_served(keyed: RunningGateway) -> None:
    client = openai.OpenAI(base_url=keyed.url, api_key=API_KEY, max_retries=0)
    assert client.chat.completions.create(**BODY).choices[0].message.content == "hi"  # type: ignore[call-overload]


def test_the_api_key_header_is_accepted(keyed: RunningGateway) -> None:
    resp = httpx.post(f"{keyed.url}/chat/completions", json=BODY, headers={"api-key": "sk-second-key-abcdef"})
    assert resp.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic abc"}])
def test_missing_or_bad_key_is_401(keyed: RunningGateway, headers: dict[str, str]) -> None:
    resp = httpx.post(f"{keyed.url}/chat/completions", json=BODY, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_api_key"
    assert resp.headers["x-request-id"]


def test_sdk_sees_authentication_error(keyed: RunningGateway) -> None:
    client = openai.OpenAI(base_url=keyed.url, api_key="sk-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_health_and_metrics_stay_open(keyed: RunningGateway) -> None:
    for path in ("/health", "/health/live", "/health/ready", "/metrics"):
        assert httpx.get(keyed.root + path).status_code == 200, path


def test_oversized_body_is_413_by_header(keyed: RunningGateway) -> None:
    big = {"model": "echo", "messages": [{"role": "user", "content": "x" * 5000}]}
    resp = httpx.post(f"{keyed.url}/chat/completions", json=big, headers={"authorization": f"Bearer {API_KEY}"})
    assert resp.status_code == 413
    assert "4096" in resp.json()["error"]["message"]


def test_oversized_chunked_body_is_413(keyed: RunningGateway) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "echo", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    resp = httpx.post(
        f"{keyed.url}/chat/completions",
        content=chunks(),
        headers={"authorization": f"Bearer {API_KEY}", "content-type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["type"] == "invalid_request_error"
