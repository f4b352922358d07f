"""One log line per request, with its facts; secrets and message contents never in a line."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

import httpx
import openai
import orjson
import pytest
from loguru import logger

from modelmux.logs import setup_logging, snapshot_logging
from modelmux.testing import LoopbackServer, run_gateway

SECRET_TEXT = "my-private-message-purple-elephant"


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    # The test's setup_logging is undone after it (tests/conftest.py restores the set-up).
    return capfd


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
    assert "-> 200 in " in plain
    for fact in (
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


def test_request_lines_say_each_fact_once_in_the_configured_format(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretty: the message says method, path, status and latency; the fields do not repeat them.
    # JSON: every fact a field of its own, for machines.
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    client_headers = {"authorization": f"Bearer {h.CLIENT_KEY}", "x-request-id": "req-shape"}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    for fmt in ("pretty", "json"):
        setup_logging("info", fmt)
        with run_gateway(_config(upstream, h, log_format=fmt), plugins=h.plugins) as gw:
            assert httpx.post(f"{gw.url}/chat/completions", json=body, headers=client_headers).status_code == 200
            models = httpx.get(f"{gw.url}/models/echo", headers={**client_headers, "x-request-id": "req-template"})
            assert models.status_code == 200
        err = logs.readouterr().err
        lines = [line for line in err.splitlines() if "req-shape" in line]
        assert len(lines) == 1, lines
        template = next(line for line in err.splitlines() if "req-template" in line)
        if fmt == "pretty":
            assert re.fullmatch(
                r"\d\d:\d\d:\d\d\.\d{3} INFO    req-shape POST /v1/chat/completions -> 200 in \d+\.\d ms "
                r"key_id=key-\w{12} model=m provider=up deployment=upstream-m input_tokens=\d+ output_tokens=\d+ "
                r"retries=0",
                lines[0],
            ), lines[0]
            # The route template differs from the path here: then it is said.
            assert "GET /v1/models/echo -> 200 in " in template and "endpoint=/v1/models/{model:path}" in template
            assert "\x1b[" not in err  # not a terminal: no colours
        else:
            line = orjson.loads(lines[0])
            assert list(line)[:7] == ["time", "level", "message", "method", "endpoint", "status", "latency_ms"]
            assert list(line)[-1] == "request_id" and line["request_id"] == "req-shape"
            assert datetime.fromisoformat(line["time"]).tzinfo is not None
            assert line["level"] == "INFO" and line["message"].startswith("POST /v1/chat/completions -> 200 in ")
            assert "worker_pid" not in line  # one worker: no pid (see test_obs_serve_workers.py)
            assert orjson.loads(template)["endpoint"] == "/v1/models/{model:path}"


def test_force_color_colours_both_writers(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    setup_logging("info", "pretty")
    logger.info("a diagnostic line")
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        r = httpx.get(f"{gw.url}/models", headers={"authorization": f"Bearer {h.CLIENT_KEY}", "x-request-id": "req-c"})
        assert r.status_code == 200
    err = logs.readouterr().err
    request = next(line for line in err.splitlines() if "req-c" in line)
    assert "\x1b[36mreq-c\x1b[0m GET /v1/models -> 200 in " in request
    diagnostic = next(line for line in err.splitlines() if "a diagnostic line" in line)
    assert diagnostic.startswith("\x1b[32m")  # loguru's green clock, as the request line's


def test_request_lines_do_not_go_through_loguru(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str]
) -> None:
    # The request line has its own writer: loguru's sinks (an application's, none at all) do
    # not change it, and loguru keeps the diagnostics.
    setup_logging("info", "json")
    records: list[dict[str, Any]] = []
    logger.remove()
    sink = logger.add(lambda message: records.append(message.record), level="INFO")
    try:
        with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
            client = openai.OpenAI(base_url=gw.url, api_key=h.CLIENT_KEY, max_retries=0)
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], extra_headers={"x-request-id": "req-sink"}
            )
            logger.bind(request_id="req-sink").info("a diagnostic line")
    finally:
        logger.remove(sink)
    assert [r["message"] for r in records if r["extra"].get("request_id") == "req-sink"] == ["a diagnostic line"]
    line = next(orjson.loads(x) for x in logs.readouterr().err.splitlines() if "req-sink" in x)
    assert line["status"] == 200 and line["endpoint"] == "/v1/chat/completions"


def test_log_set_up_is_undone_by_restore(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    # The leak this prevents: after one test set logging up, every later test's stdlib records
    # (aiohttp's "Error handling request" tracebacks from the fakes) went through loguru to the
    # terminal instead of pytest's capture.
    access = logging.getLogger("uvicorn.access")
    access.propagate = True  # as a fresh process has it (an earlier test may have set logging up)
    saved = snapshot_logging()
    setup_logging("debug", "json")
    saved.restore()
    capfd.readouterr()
    with caplog.at_level(logging.ERROR, logger="aiohttp.server"):
        logging.getLogger("aiohttp.server").error("Error handling request from 127.0.0.1")
    assert [r.getMessage() for r in caplog.records] == ["Error handling request from 127.0.0.1"]
    assert "Error handling request" not in capfd.readouterr().err  # not also through loguru
    assert access.propagate is True  # setup_logging had turned it off


def test_a_gateways_secrets_are_scrubbed_while_it_runs_and_not_after() -> None:
    """One process, two configurations one after the other (as tests run them): the first's
    provider key is scrubbed while it serves, and is plain text again for the second, which
    does not hold it (a model name equal to it is named back, not hidden as ***)."""
    key = "nope-scoped-secret"
    first = {"providers": {"up": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1", "api_key": key}}}
    for config, shown in ((first, "***"), ({}, key)):
        with run_gateway(config) as gw:
            resp = httpx.post(
                f"{gw.url}/chat/completions", json={"model": key, "messages": [{"role": "user", "content": "x"}]}
            )
        assert resp.status_code == 404
        assert f"The model '{shown}' does not exist" in resp.json()["error"]["message"]
