"""Every model endpoint goes through the one pipeline, so each reports the same facts: the same
log-line fields, the same bounded metric labels, through a passthrough provider and a
translating one, streamed and not."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from loguru import logger
from prometheus_client.parser import text_string_to_metric_families

from modelmux.logs import setup_logging
from modelmux.testing import LoopbackServer, run_gateway

#: Facts every answered model request's log line carries, whatever its endpoint.
ALWAYS = {"request_id", "method", "endpoint", "status", "latency_ms", "key_id", "model", "provider", "deployment"}
#: Facts of an answer with usage: tokens; and of a stream: its time to first token.
USAGE = {"input_tokens", "output_tokens", "retries"}


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    yield capfd
    logger.remove()
    logger.add(sys.__stderr__, level="INFO")


def _config(upstream: LoopbackServer, h: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [h.CLIENT_KEY], "log_format": "json"},
        "providers": {
            "up": {"type": "fakeoai", "base_url": f"{upstream.url}/v1", "api_key": h.PROVIDER_KEY, "max_retries": 0},
            "echo": {"type": "echo"},
        },
        "models": {"m": {"provider": "up", "model": "upstream-m"}, "e": {"provider": "echo", "model": "echo"}},
        "state": {"backend": "memory"},
    }


def _traffic(client: openai.OpenAI, model: str) -> None:
    tag = f"{model}-"
    msgs = [{"role": "user", "content": "say hello to the world"}]
    client.chat.completions.create(model=model, messages=msgs, extra_headers={"x-request-id": tag + "chat"})
    list(
        client.chat.completions.create(
            model=model,
            messages=msgs,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-request-id": tag + "chat-stream"},
        )
    )
    client.responses.create(model=model, input="say hello to the world", extra_headers={"x-request-id": tag + "resp"})
    list(
        client.responses.create(
            model=model,
            input="say hello to the world",
            stream=True,
            extra_headers={"x-request-id": tag + "resp-stream"},
        )
    )


def _metric_labels(text: str, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def test_chat_and_responses_report_the_same_facts(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str]
) -> None:
    setup_logging("info", "json")
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key=h.CLIENT_KEY, max_retries=0)
        for model in ("m", "e", "up/made-up-by-a-client"):
            _traffic(client, model)
        client.embeddings.create(model="e", input="say hello", extra_headers={"x-request-id": "e-embed"})
        metrics = httpx.get(gw.url.removesuffix("/v1") + "/metrics").text
    lines = [orjson.loads(x) for x in logs.readouterr().err.splitlines() if x.startswith("{")]
    by_id = {line["request_id"]: line for line in lines if str(line.get("endpoint", "")).startswith("/v1/")}
    for model in ("m", "e", "up/made-up-by-a-client"):
        kinds = {kind: by_id[f"{model}-{kind}"] for kind in ("chat", "chat-stream", "resp", "resp-stream")}
        for kind, line in kinds.items():
            assert line["status"] == 200, (model, kind, line)
            missing = (ALWAYS | USAGE | ({"ttft_ms"} if kind.endswith("stream") else set())) - set(line)
            assert not missing, (model, kind, missing)
        # Same keys for the same kind of answer, whatever the endpoint.
        assert set(kinds["chat"]) == set(kinds["resp"]), model
        assert set(kinds["chat-stream"]) == set(kinds["resp-stream"]), model
        assert kinds["chat"]["endpoint"] == "/v1/chat/completions" and kinds["resp"]["endpoint"] == "/v1/responses"

    # Embeddings (echo) log the same facts as chat, output tokens aside (an embedding has none).
    embed = by_id["e-embed"]
    assert embed["status"] == 200 and embed["endpoint"] == "/v1/embeddings"
    missing = (ALWAYS | {"input_tokens", "retries"}) - set(embed)
    assert not missing, missing
    assert set(embed) - {"output_tokens"} == set(by_id["e-chat"]) - {"output_tokens"}

    # Metric labels are bounded alike: a client's made-up model name never becomes a label.
    for name in ("modelmux_tokens_total", "modelmux_time_to_first_token_seconds_count"):
        models = {labels["model"] for labels in _metric_labels(metrics, name)}
        assert "up/made-up-by-a-client" not in models and "up/*" in models and {"m", "e"} <= models, (name, models)
    durations = {
        (labels["endpoint"], labels["provider"])
        for labels in _metric_labels(metrics, "modelmux_request_duration_seconds_count")
    }
    assert {("/v1/chat/completions", "up"), ("/v1/responses", "up"), ("/v1/responses", "echo")} <= durations


def test_a_refused_request_still_names_its_model(
    upstream: LoopbackServer, h: Any, logs: pytest.CaptureFixture[str]
) -> None:
    setup_logging("info", "json")
    headers = {"authorization": f"Bearer {h.CLIENT_KEY}", "x-request-id": "refused"}
    with run_gateway(_config(upstream, h), plugins=h.plugins) as gw:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}
        assert httpx.post(f"{gw.url}/chat/completions", json=body, headers=headers).status_code == 400
    lines = [orjson.loads(x) for x in logs.readouterr().err.splitlines() if x.startswith("{")]
    refused = next(line for line in lines if line.get("request_id") == "refused" and "endpoint" in line)
    assert refused["model"] == "m" and refused["status"] == 400 and "temperature" in refused["error"]
