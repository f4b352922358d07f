"""Fault injection: for each way an upstream misbehaves, what the client sees, how many
upstream attempts were made, and that the gateway's tasks, upstream connections and
in-flight counts return to idle."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import RunningGateway, run_gateway
from modelmux.testing.faults import Fault

MESSAGES = [{"role": "user", "content": "one two three four five six"}]


def gateway_config(
    providers: dict[str, Any], models: dict[str, Any], router: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"providers": providers, "models": models, "router": router or {}, "state": {"backend": "memory"}}


def client(gw: RunningGateway, timeout: float = 20) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0, timeout=timeout)


def stream_text(c: openai.OpenAI, model: str) -> str:
    out = []
    for chunk in c.chat.completions.create(model=model, messages=MESSAGES, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            out.append(chunk.choices[0].delta.content)
    return "".join(out)


@pytest.fixture
def idle_check(load: Callable[..., dict[str, int]], settle: Callable[..., bool]) -> Callable[..., None]:
    """Call with (gateway, baseline) at the end of a test: everything is back to idle."""

    def check(gw: RunningGateway, baseline: dict[str, int], *upstreams: Any) -> None:
        assert settle(lambda: load(gw) == baseline), (load(gw), baseline)
        for up in upstreams:
            assert settle(lambda up=up: up.active == 0), f"upstream still handling {up.active} request(s)"

    return check


def test_429_with_retry_after_is_retried_then_answered(upstreams, table, load, idle_check) -> None:
    up, server = upstreams()
    up.plan(Fault.error(429, retry_after=0.2))
    cfg = gateway_config({"a": table(server.url + "/v1")}, {"m": {"provider": "a", "model": "up-m"}})
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        raw = client(gw).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == "one two three four five six"
        assert raw.headers["x-modelmux-provider"] == "a"
        assert raw.headers["x-modelmux-model"] == "up-m"
        assert up.attempts == 2
        idle_check(gw, baseline, up)


def test_429_that_persists_reaches_the_client_with_retry_after(upstreams, table, load, idle_check) -> None:
    up, server = upstreams()
    up.default = Fault.error(429, retry_after=0.05)
    cfg = gateway_config({"a": table(server.url + "/v1", max_retries=2)}, {"m": {"provider": "a", "model": "x"}})
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        with pytest.raises(openai.RateLimitError) as info:
            client(gw).chat.completions.create(model="m", messages=MESSAGES)
        assert info.value.response.headers["retry-after"] == "1"
        assert up.attempts == 3  # the first try and max_retries = 2
        idle_check(gw, baseline, up)


def test_retry_after_longer_than_the_deadline_is_not_waited_for(upstreams, table, load, idle_check) -> None:
    up, server = upstreams()
    up.default = Fault.error(429, retry_after=60)
    cfg = gateway_config(
        {"a": table(server.url + "/v1", max_retries=3)},
        {"m": {"provider": "a", "model": "x"}},
        {"deadline_seconds": 5},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError):
            client(gw).chat.completions.create(model="m", messages=MESSAGES)
        assert time.monotonic() - started < 5  # bounded by the deadline, not by retry-after
        assert up.attempts == 1
        idle_check(gw, baseline, up)


def test_500_is_retried_max_retries_times_then_a_502(upstreams, table, load, idle_check) -> None:
    up, server = upstreams()
    up.default = Fault.error(500)
    cfg = gateway_config({"a": table(server.url + "/v1", max_retries=2)}, {"m": {"provider": "a", "model": "x"}})
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        with pytest.raises(openai.APIStatusError) as info:
            client(gw).chat.completions.create(model="m", messages=MESSAGES)
        assert info.value.status_code == 502
        assert "upstream error 500" in info.value.message
        assert up.attempts == 3
        idle_check(gw, baseline, up)


def test_400_is_neither_retried_nor_sent_to_a_fallback(upstreams, table, load, idle_check) -> None:
    bad, bad_server = upstreams()
    good, good_server = upstreams()
    bad.default = Fault.error(400)
    cfg = gateway_config(
        {"a": table(bad_server.url + "/v1"), "b": table(good_server.url + "/v1")},
        {"m": {"provider": "a", "model": "x", "fallbacks": ["n"]}, "n": {"provider": "b", "model": "y"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        with pytest.raises(openai.BadRequestError) as info:
            client(gw).chat.completions.create(model="m", messages=MESSAGES)
        assert info.value.message.endswith("injected 400") or "injected 400" in info.value.message
        assert (bad.attempts, good.attempts) == (1, 0)
        idle_check(gw, baseline, bad, good)


def test_refused_connection_falls_back_and_headers_name_who_answered(
    upstreams, table, refused_url, load, idle_check
) -> None:
    good, server = upstreams()
    cfg = gateway_config(
        {"down": table(refused_url, max_retries=1), "b": table(server.url + "/v1")},
        {"m": {"provider": "down", "model": "x", "fallbacks": ["n"]}, "n": {"provider": "b", "model": "y"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        raw = client(gw).chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        assert text == "one two three four five six"
        assert (raw.headers["x-modelmux-provider"], raw.headers["x-modelmux-model"]) == ("b", "y")
        assert good.attempts == 1
        assert good.models == ["y"]
        idle_check(gw, baseline, good)


def test_hang_before_first_byte_is_a_504_and_the_upstream_sees_the_close(
    upstreams, table, load, idle_check, settle
) -> None:
    up, server = upstreams()
    up.default = Fault.hang()
    cfg = gateway_config(
        {"a": table(server.url + "/v1", max_retries=1, first_byte_timeout_seconds=0.3)},
        {"m": {"provider": "a", "model": "x"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        with pytest.raises(openai.APIStatusError) as info:
            client(gw).chat.completions.create(model="m", messages=MESSAGES)
        assert info.value.status_code == 504
        assert info.value.body["code"] == "upstream_timeout"  # type: ignore[index]
        assert up.attempts == 2
        assert settle(lambda: up.closed_early == 2)
        idle_check(gw, baseline, up)


def test_stream_that_hangs_after_its_headers_still_falls_back(upstreams, table, load, idle_check) -> None:
    slow, slow_server = upstreams()
    good, good_server = upstreams()
    slow.default = Fault.hang_after_headers()
    cfg = gateway_config(
        {
            "a": table(slow_server.url + "/v1", max_retries=0, first_byte_timeout_seconds=0.3),
            "b": table(good_server.url + "/v1"),
        },
        {"m": {"provider": "a", "model": "x", "fallbacks": ["n"]}, "n": {"provider": "b", "model": "y"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        assert stream_text(client(gw), "m") == "one two three four five six"
        assert (slow.attempts, good.attempts) == (1, 1)
        idle_check(gw, baseline, slow, good)


def test_idle_gap_in_a_stream_is_an_in_stream_error_never_retried(upstreams, table, load, idle_check, settle) -> None:
    up, server = upstreams()
    up.plan(Fault.ok(delay=0.4))
    cfg = gateway_config(
        {"a": table(server.url + "/v1", max_retries=2, first_byte_timeout_seconds=5, idle_timeout_seconds=0.15)},
        {"m": {"provider": "a", "model": "x"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        got = []
        with pytest.raises(openai.APIError) as info:
            for chunk in client(gw).chat.completions.create(model="m", messages=MESSAGES, stream=True):
                got.append(chunk)
        assert len(got) == 1  # the first chunk came; the second did not come in time
        assert "idle_timeout_seconds" in info.value.message
        assert up.attempts == 1
        assert settle(lambda: up.closed_early == 1)
        idle_check(gw, baseline, up)


def test_total_bound_cuts_a_slow_stream(upstreams, table, load, idle_check) -> None:
    up, server = upstreams()
    up.default = Fault.ok(delay=0.15)
    cfg = gateway_config(
        {"a": table(server.url + "/v1", timeout_seconds=0.6)},
        {"m": {"provider": "a", "model": "x"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        with pytest.raises(openai.APIError) as info:
            stream_text(client(gw), "m")
        assert "timeout_seconds" in info.value.message
        assert up.attempts == 1
        idle_check(gw, baseline, up)


def test_slow_upstream_within_its_bounds_is_answered(upstreams, table, load, idle_check) -> None:
    up, server = upstreams()
    up.default = Fault.ok(delay=0.03)
    cfg = gateway_config(
        {"a": table(server.url + "/v1", first_byte_timeout_seconds=1, idle_timeout_seconds=1)},
        {"m": {"provider": "a", "model": "x"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        assert stream_text(client(gw), "m") == "one two three four five six"
        assert client(gw).chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
        assert up.attempts == 2
        idle_check(gw, baseline, up)


def test_drop_mid_stream_is_an_in_stream_error_and_no_fallback(upstreams, table, load, idle_check) -> None:
    up, server = upstreams()
    other, other_server = upstreams()
    up.default = Fault.drop(after_chunks=3)
    cfg = gateway_config(
        {"a": table(server.url + "/v1", max_retries=2), "b": table(other_server.url + "/v1")},
        {"m": {"provider": "a", "model": "x", "fallbacks": ["n"]}, "n": {"provider": "b", "model": "y"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        got = []
        with pytest.raises(openai.APIError) as info:
            for chunk in client(gw).chat.completions.create(model="m", messages=MESSAGES, stream=True):
                got.append(chunk.choices[0].delta.content)
        assert got == ["", "one", " two"]
        assert "closed the connection early" in info.value.message or "before [DONE]" in info.value.message
        assert (up.attempts, other.attempts) == (1, 0)
        idle_check(gw, baseline, up, other)


def test_client_disconnect_mid_stream_closes_the_upstream_at_once(upstreams, table, load, idle_check, settle) -> None:
    up, server = upstreams()
    up.default = Fault.ok(delay=0.6)  # 9 frames: about 5 s if nobody stops it
    cfg = gateway_config({"a": table(server.url + "/v1")}, {"m": {"provider": "a", "model": "x"}})
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        body = {"model": "m", "messages": MESSAGES, "stream": True}
        with httpx.Client(timeout=10) as http, http.stream("POST", f"{gw.url}/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            next(resp.iter_bytes())
        # The upstream notices the close while it is still streaming (closed_early counts only that).
        assert settle(lambda: up.closed_early == 1, 4)
        idle_check(gw, baseline, up)


def test_client_disconnect_while_waiting_for_a_completion_cancels_the_upstream(
    upstreams, table, load, idle_check, settle
) -> None:
    up, server = upstreams()
    up.default = Fault.hang(seconds=20)
    cfg = gateway_config({"a": table(server.url + "/v1")}, {"m": {"provider": "a", "model": "x"}})
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        with pytest.raises(openai.APITimeoutError):
            client(gw, timeout=0.3).chat.completions.create(model="m", messages=MESSAGES)
        assert settle(lambda: up.closed_early == 1, 2)  # not after the 20 s hang
        assert up.attempts == 1
        idle_check(gw, baseline, up)


def test_overall_deadline_bounds_retries_and_fallbacks(upstreams, table, load, idle_check) -> None:
    a, a_server = upstreams()
    b, b_server = upstreams()
    a.default = b.default = Fault.hang(seconds=20)
    cfg = gateway_config(
        {"a": table(a_server.url + "/v1", max_retries=5), "b": table(b_server.url + "/v1", max_retries=5)},
        {"m": {"provider": "a", "model": "x", "fallbacks": ["n"]}, "n": {"provider": "b", "model": "y"}},
        {"deadline_seconds": 0.5},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        with pytest.raises(openai.APIStatusError) as info:
            client(gw).chat.completions.create(model="m", messages=MESSAGES)
        assert info.value.status_code == 504
        assert (a.attempts, b.attempts) == (1, 0)
        idle_check(gw, baseline, a, b)


def test_stream_bounds_apply_to_a_translating_provider_without_code_of_its_own(load, idle_check) -> None:
    # echo builds its stream from dicts (as Vertex and Bedrock do): the host bounds it all the same.
    cfg = gateway_config(
        {"slow": {"type": "echo", "delay_ms": 400, "idle_timeout_seconds": 0.1}},
        {"m": {"provider": "slow", "model": "echo"}},
    )
    with run_gateway(cfg) as gw:
        baseline = load(gw)
        got = []
        with pytest.raises(openai.APIError) as info:
            for chunk in client(gw).chat.completions.create(model="m", messages=MESSAGES, stream=True):
                got.append(chunk.choices[0].delta.content)
        assert got == [""]  # the role chunk came at once; the first word was 0.4 s away
        assert "idle_timeout_seconds" in info.value.message
        idle_check(gw, baseline)
