"""One log line per request, with its facts; secrets and message contents never in a line."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import openai
import orjson
import pytest
from loguru import logger

from modelmux.logs import setup_logging
from modelmux.testing import LoopbackServer, run_gateway

SECRET_TEXT = "my-private-message-purple-elephant"


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    yield capfd
    logger.remove()
    logger.add(sys.__stderr__, level="INFO")


def _config(upstream: LoopbackServer, h: Any, **server: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [h.CLIENT_KEY], **server},
        "providers": {
            "up": {"type": "fakeoai", "base_url": f"{upstream.url}/v1", "api_key": h.PROVIDER_KEY, "max_retries": 0},
            "echo": {"type": "echo"},
        },
        "models": {"m": {"provider": "up", "model": "upstream-m"}, "echo": {"provider": "echo", "model": "echo"}},
        "state": {"backend": "memory"},
    }


def _traffic(gw: Any, upstream: LoopbackServer, h: Any) -> None:
    client = openai.OpenAI(base_url=gw.url, api_key=h.CLIENT_KEY, max_retries=0)
    msgs = [{"role": "user", "content": f"{SECRET_TEXT} key {h.CLIENT_KEY}"}]
    client.chat.completions.create(model="m", messages=msgs, extra_headers={"x-request-id": "req-plain"})
    stream = client.chat.completions.create(
        model="m",
        messages=msgs,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-request-id": "req-stream"},
    )
    list(stream)
    upstream.app["fail"].append(500)  # its error body quotes the provider key it received
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="m", messages=msgs, extra_headers={"x-request-id": "req-fail"})
    assert h.PROVIDER_KEY not in failed.value.response.text  # nor in what the client sees
    # A wrong client key is refused and never written down either.
    r = httpx.post(f"{gw.url}/chat/completions", headers={"authorization": "Bearer sk-wrong-guess-0000"}, json={})
    assert r.status_code == 401


def test_json_request_lines_carry_the_facts_and_no_secrets(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str]
) -> None:
    setup_logging("info", "json")
    with run_gateway(_config(upstream, h, log_format="json"), plugins=h.plugins) as gw:
        _traffic(gw, upstream, h)
    err = logs.readouterr().err
    for secret in (h.CLIENT_KEY, h.PROVIDER_KEY, SECRET_TEXT, "sk-wrong-guess-0000"):
        assert secret not in err
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    by_id = {line["request_id"]: line for line in lines if line.get("endpoint") == "/v1/chat/completions"}

    plain = by_id["req-plain"]
    assert plain["key_id"].startswith("key-") and plain["status"] == 200
    assert (plain["model"], plain["provider"], plain["deployment"]) == ("m", "up", "upstream-m")
    assert plain["input_tokens"] == 3 and plain["output_tokens"] == 3
    assert plain["retries"] == 0 and plain["latency_ms"] > 0 and plain["method"] == "POST"
    assert "request_body" not in plain and "cache" not in plain

    streamed = by_id["req-stream"]
    assert streamed["ttft_ms"] > 0 and streamed["output_tokens"] == 3 and streamed["status"] == 200

    failed = by_id["req-fail"]
    assert failed["status"] == 502 and failed["level"] == "ERROR"
    assert "upstream error 500" in failed["error"] and "***" in failed["error"]  # the cause, key scrubbed
    refused = [line for line in lines if line.get("status") == 401]
    assert refused and "AuthenticationError" in refused[0]["error"]


def test_pretty_lines_carry_the_facts_and_no_secrets(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str]
) -> None:
    setup_logging("info", "pretty")
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        _traffic(gw, upstream, h)
    err = logs.readouterr().err
    for secret in (h.CLIENT_KEY, h.PROVIDER_KEY, SECRET_TEXT, "sk-wrong-guess-0000"):
        assert secret not in err
    plain = next(line for line in err.splitlines() if "req-plain" in line and "/v1/chat/completions" in line)
    for fact in (
        "status=200",
        "provider=up",
        "deployment=upstream-m",
        "input_tokens=3",
        "output_tokens=3",
        "key_id=key-",
    ):
        assert fact in plain
    failed = next(line for line in err.splitlines() if "req-fail" in line and "-> 502" in line)
    assert "error=UpstreamError" in failed


def test_log_bodies_logs_bodies_redacted(upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", "json")
    with run_gateway(_config(upstream, h, log_bodies=True), plugins=h.plugins) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key=h.CLIENT_KEY, max_retries=0)
        client.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": f"{SECRET_TEXT} {h.PROVIDER_KEY}"}],
            extra_body={"api_key": "sk-body-field-9999"},
            extra_headers={"x-request-id": "req-bodies"},
        )
    err = logs.readouterr().err
    line = next(orjson.loads(x) for x in err.splitlines() if '"req-bodies"' in x and '"endpoint"' in x)
    request_body = orjson.loads(line["request_body"])
    assert request_body["messages"][0]["content"] == f"{SECRET_TEXT} ***"
    assert request_body["api_key"] == "***"
    assert orjson.loads(line["response_body"])["choices"][0]["message"]["content"] == f"{SECRET_TEXT} ***"
    for secret in (h.CLIENT_KEY, h.PROVIDER_KEY, "sk-body-field-9999"):
        assert secret not in err


def test_request_lines_have_the_sink_format_exactly(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str]
) -> None:
    # The request line is written straight to setup_logging's sink (not through loguru's record
    # machinery): it must look exactly like every other line of that sink.
    client_headers = {"authorization": f"Bearer {h.CLIENT_KEY}", "x-request-id": "req-shape"}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    for fmt in ("pretty", "json"):
        setup_logging("info", fmt)
        with run_gateway(_config(upstream, h, log_format=fmt), plugins=h.plugins) as gw:
            assert httpx.post(f"{gw.url}/chat/completions", json=body, headers=client_headers).status_code == 200
        lines = [line for line in logs.readouterr().err.splitlines() if "req-shape" in line]
        assert len(lines) == 1, lines
        if fmt == "pretty":
            assert re.fullmatch(
                r"\d\d:\d\d:\d\d\.\d{3} INFO    req-shape POST /v1/chat/completions -> 200 in \d+\.\d ms "
                r"method=POST endpoint=/v1/chat/completions status=200 latency_ms=[\d.]+ key_id=key-\w{12} "
                r"model=m provider=up deployment=upstream-m input_tokens=\d+ output_tokens=\d+ retries=0",
                lines[0],
            ), lines[0]
        else:
            line = orjson.loads(lines[0])
            assert list(line)[:6] == ["time", "level", "message", "method", "endpoint", "status"]
            assert list(line)[-1] == "request_id" and line["request_id"] == "req-shape"
            assert datetime.fromisoformat(line["time"]).tzinfo is not None
            assert line["level"] == "INFO" and line["message"].startswith("POST /v1/chat/completions -> 200 in ")


def test_a_sink_the_application_adds_gets_the_request_lines_too(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str]
) -> None:
    setup_logging("info", "pretty")
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level="INFO")
    try:
        with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
            client = openai.OpenAI(base_url=gw.url, api_key=h.CLIENT_KEY, max_retries=0)
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], extra_headers={"x-request-id": "req-sink"}
            )
    finally:
        logger.remove(sink)
    mine = [r for r in records if r["extra"].get("request_id") == "req-sink" and "endpoint" in r["extra"]]
    assert len(mine) == 1 and mine[0]["extra"]["status"] == 200 and mine[0]["level"].name == "INFO"
    assert "req-sink" in logs.readouterr().err  # and the configured sink still has it
