"""Client rate limits per API key: requests and tokens per minute, per-key overrides, 429 with
retry-after, and two replicas sharing their counters through Redis."""

from __future__ import annotations

import uuid

import openai
import pytest

from modelmux.config import ConfigError, validate_config
from modelmux.limits import room_in
from modelmux.testing import run_gateway

MESSAGES = [{"role": "user", "content": "a b c d e"}]  # echo usage: 5 prompt + 5 completion tokens


def limited_config(keys: list[str], limits: dict[str, object]) -> dict[str, object]:
    return {
        "server": {"api_keys": keys, "limits": limits},
        "state": {"backend": "memory"},
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo"}},
    }


def sdk(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def test_requests_per_minute_per_key_with_an_override() -> None:
    k1, k2 = f"k1-{uuid.uuid4().hex}", f"k2-{uuid.uuid4().hex}"
    cfg = limited_config(
        [k1, k2], {"requests_per_minute": 3, "keys": {"big": {"api_key": k2, "requests_per_minute": 5}}}
    )
    with run_gateway(cfg) as gw:
        a, b = sdk(gw.url, k1), sdk(gw.url, k2)
        for _ in range(3):
            a.chat.completions.create(model="echo", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError) as info:
            a.chat.completions.create(model="echo", messages=MESSAGES, stream=True)
        retry_after = int(info.value.response.headers["retry-after"])
        assert 1 <= retry_after <= 120  # the 60 s window slides: a burst of 3 at once frees up after 60-80 s
        assert "requests per minute (3)" in info.value.message
        assert info.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        for _ in range(5):  # the other key has its own, larger budget
            b.chat.completions.create(model="echo", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            b.chat.completions.create(model="echo", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):  # refused requests did not reset anything
            a.chat.completions.create(model="echo", messages=MESSAGES)


def test_tokens_per_minute_counts_reported_usage_of_answers_and_streams() -> None:
    key = f"k-{uuid.uuid4().hex}"
    with run_gateway(limited_config([key], {"tokens_per_minute": 15})) as gw:
        c = sdk(gw.url, key)
        assert c.chat.completions.create(model="echo", messages=MESSAGES).usage.total_tokens == 10  # type: ignore[union-attr]
        chunks = list(
            c.chat.completions.create(
                model="echo", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        assert chunks[-1].usage is not None  # 20 tokens used now: over 15
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model="echo", messages=MESSAGES)
        assert "tokens per minute (15)" in info.value.message
        assert int(info.value.response.headers["retry-after"]) >= 1


def test_without_limits_nothing_is_refused() -> None:
    key = f"k-{uuid.uuid4().hex}"
    with run_gateway(limited_config([key], {})) as gw:
        c = sdk(gw.url, key)
        for _ in range(30):
            c.chat.completions.create(model="echo", messages=MESSAGES)


def test_an_override_for_an_unknown_key_is_a_config_error() -> None:
    data = limited_config(["known"], {"keys": {"team": {"api_key": "other", "requests_per_minute": 1}}})
    with pytest.raises(ConfigError) as info:
        validate_config(data, None)
    assert "server.limits.keys.team.api_key: not one of server.api_keys" in str(info.value)


@pytest.mark.parametrize(
    ("previous", "current", "limit", "into", "expected"),
    [
        (0, 0, 5, 0.3, 0.0),  # room now
        (0, 5, 5, 0.5, 0.5 + 0.2),  # full this minute: next minute, once 1/5 of it has slid by
        (10, 0, 5, 0.0, 0.6),  # last minute's 10 must slide until 4 of them count
        (10, 0, 5, 0.7, 0.0),  # ...which already happened
    ],
)
def test_retry_after_is_when_the_sliding_window_has_room(
    previous: int, current: int, limit: int, into: float, expected: float
) -> None:
    assert room_in(previous, current, limit, into) == pytest.approx(expected)


def test_two_replicas_share_limits_through_redis(serve) -> None:
    key = f"k-{uuid.uuid4().hex}"
    text = f"""
[server]
api_keys = ["{key}"]

[server.limits]
requests_per_minute = 4

[state]
backend = "redis"
url = "redis://127.0.0.1:6379/0"
key_prefix = "modelmux-test-{uuid.uuid4().hex}:"

[providers.echo]
type = "echo"

[models.echo]
provider = "echo"
model = "echo"
"""
    one, two = serve(text, "one"), serve(text, "two")
    clients = [sdk(f"{one.root}/v1", key), sdk(f"{two.root}/v1", key)]
    for i in range(4):
        clients[i % 2].chat.completions.create(model="echo", messages=MESSAGES)
    for c in clients:  # the budget of 4 is spent across both replicas
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model="echo", messages=MESSAGES)


def test_the_responses_api_is_limited_too() -> None:
    key = f"k-{uuid.uuid4().hex}"
    with run_gateway(limited_config([key], {"requests_per_minute": 10, "tokens_per_minute": 15})) as gw:
        c = sdk(gw.url, key)
        first = c.responses.create(model="echo", input="a b c d e")
        assert first.usage is not None and first.usage.total_tokens == 10
        events = list(c.responses.create(model="echo", input="a b c d e", stream=True))
        assert events[-1].type == "response.completed"  # its usage is charged when the stream ends
        with pytest.raises(openai.RateLimitError) as info:
            c.responses.create(model="echo", input="a b c d e")
        assert "tokens per minute (15)" in info.value.message
