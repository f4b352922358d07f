"""End to end: the official openai SDK -> the real gateway -> a fake vLLM, all over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner

from modelmux.testing import LoopbackServer, RunningGateway, cli, run_gateway

API_KEY = "sk-vllm-test"
MESSAGES: Any = [{"role": "user", "content": "hi"}]


def config(url: str, **provider: Any) -> dict[str, Any]:
    return {
        "providers": {
            "vllm": {"type": "vllm", "base_url": url + "/v1", "api_key": API_KEY, "max_retries": 0, **provider}
        },
        "models": {
            "llama": {"provider": "vllm", "model": "meta-llama/Llama-3.1-8B-Instruct"},
            "limited": {"provider": "vllm", "model": "ratelimited"},
            "limited-once": {"provider": "vllm", "model": "ratelimited-once"},
            "broken": {"provider": "vllm", "model": "broken"},
            "bad": {"provider": "vllm", "model": "bad-request"},
            "drops": {"provider": "vllm", "model": "drops"},
            "slow": {"provider": "vllm", "model": "slow"},
        },
    }


@pytest.fixture(scope="module")
def gateway(fake_vllm: LoopbackServer) -> Iterator[RunningGateway]:
    with run_gateway(config(fake_vllm.url)) as gw:
        yield gw


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0, timeout=20)


def test_non_stream(client: openai.OpenAI, fake_vllm: LoopbackServer) -> None:
    raw = client.chat.completions.with_raw_response.create(model="llama", messages=MESSAGES)
    done = raw.parse()
    assert done.choices[0].message.content == "Hello from fake vLLM"
    assert done.usage is not None and done.usage.total_tokens == 11
    assert raw.headers["x-modelmux-provider"] == "vllm"
    seen = fake_vllm.requests[-1]
    assert seen["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert b'"model":"meta-llama/Llama-3.1-8B-Instruct"' in seen["body"]


def test_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="llama", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake vLLM"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_provider_slash_model_names_reach_the_upstream(client: openai.OpenAI, fake_vllm: LoopbackServer) -> None:
    client.chat.completions.create(model="vllm/openai/gpt-oss-120b", messages=MESSAGES)
    assert b'"model":"openai/gpt-oss-120b"' in fake_vllm.requests[-1]["body"]


def test_tools_non_stream_and_stream(client: openai.OpenAI, fake_vllm: LoopbackServer) -> None:
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    done = client.chat.completions.create(model="llama", messages=MESSAGES, tools=tools, tool_choice="auto")
    call = done.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert done.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'  # type: ignore[union-attr]
    assert b'"tool_choice":"auto"' in fake_vllm.requests[-1]["body"]

    args = ""
    finish = None
    for chunk in client.chat.completions.create(model="llama", messages=MESSAGES, tools=tools, stream=True):
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                args += tc.function.arguments or "" if tc.function else ""
            finish = choice.finish_reason or finish
    assert args == '{"city": "Paris"}' and finish == "tool_calls"


def test_upstream_429_keeps_status_and_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="limited", messages=MESSAGES)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "7"
    assert "provider vllm" in info.value.message


def test_upstream_429_is_retried_by_the_router(fake_vllm: LoopbackServer, upstream_state: dict[str, Any]) -> None:
    with run_gateway(config(fake_vllm.url, max_retries=1)) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        done = client.chat.completions.create(model="limited-once", messages=MESSAGES)
    assert done.choices[0].message.content == "Hello from fake vLLM"
    assert upstream_state["calls"]["ratelimited-once"] == 2


def test_upstream_500_is_a_502_naming_the_provider(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="broken", messages=MESSAGES)
    assert info.value.status_code == 502
    assert "provider vllm" in info.value.message and "500" in info.value.message


def test_upstream_400_reaches_the_client_intact(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="bad", messages=MESSAGES)
    assert info.value.code == "context_length_exceeded"
    assert info.value.body["message"] == "This model's maximum context length is 8192 tokens."  # type: ignore[index]
    assert info.value.param == "messages"


def test_upstream_dropping_mid_stream_raises_in_the_sdk(client: openai.OpenAI) -> None:
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="drops", messages=MESSAGES, stream=True):
            got.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(got) == "partial"  # what arrived before the cut was forwarded at once
    assert "closed the connection early" in info.value.message or "before [DONE]" in info.value.message


def test_client_disconnect_closes_the_upstream_request(
    gateway: RunningGateway, upstream_state: dict[str, Any], wait: Any
) -> None:
    body = {"model": "slow", "messages": MESSAGES, "stream": True}
    with httpx.Client(timeout=20) as http, http.stream("POST", gateway.url + "/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        seen = 0
        for line in lines:
            seen += line.startswith("data: ")
            if seen == 3:
                break
    # The client is gone: the gateway must drop the upstream connection, so the fake's
    # writes fail long before it has produced its whole answer.
    assert wait(upstream_state["closed"]), "the upstream request was left running"
    assert upstream_state["sent"][0] < upstream_state["total"]


def test_models_command_lists_the_upstream_models(gateway: RunningGateway) -> None:
    result = CliRunner().invoke(cli(), ["models", "--provider", "vllm", "--config", str(gateway.config_path)])
    assert result.exit_code == 0, result.output
    assert "openai/gpt-oss-120b" in result.output and "meta-llama/Llama-3.1-8B-Instruct" in result.output


def test_doctor_command_reports_the_upstream(gateway: RunningGateway) -> None:
    # The fake lists two models; the fault-triggering ids of this configuration (broken, slow, ...)
    # are not among them, and doctor says so model by model.
    result = CliRunner().invoke(cli(), ["doctor", "--config", str(gateway.config_path)], env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any("ok" in line and "upstream reachable" in line for line in lines), result.output
    failed = {line.split("│")[3].strip() for line in lines if "FAIL" in line}
    assert "model broken exists upstream" in failed and "model slow exists upstream" in failed
    assert not any("Llama-3.1-8B-Instruct" in name for name in failed)  # the one it serves passes
