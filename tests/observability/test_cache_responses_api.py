"""The response cache on ``POST /v1/responses``, through the real gateway and the official openai SDK.

A hit must not reach the upstream, must still be a new response (new ids, stored, so a
client can continue from it), and must never answer a conversation it was not stored for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import LoopbackServer, RunningGateway, run_gateway


def _config(upstream: LoopbackServer, **cache: Any) -> dict[str, Any]:
    base = f"{upstream.url}/v1"
    return {
        "providers": {
            "up": {"type": "fakeoai", "base_url": base, "max_retries": 0},
            "native": {"type": "fakeoai", "base_url": base, "max_retries": 0, "native_responses": True},
            "echo": {"type": "echo"},
        },
        "models": {
            "cached": {"provider": "up", "model": "upstream-m", "cache": True},
            "plain": {"provider": "up", "model": "upstream-m"},
            "native": {"provider": "native", "model": "native-m", "cache": True},
            "echo": {"provider": "echo", "model": "echo", "cache": True},
        },
        "state": {"backend": "memory"},
        "cache": {"backend": "memory", **cache},
    }


@pytest.fixture
def gw(upstream: LoopbackServer, h: Any) -> Iterator[RunningGateway]:
    with run_gateway(_config(upstream), plugins=h.plugins) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)


def _create(client: openai.OpenAI, **body: Any) -> tuple[str, Any]:
    raw = client.responses.with_raw_response.create(**body)
    return raw.headers.get("x-modelmux-cache", "-"), raw.parse()


def _echo_upstream_calls(gw: RunningGateway, h: Any) -> float:
    samples = h.read_metrics(gw.root)
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "modelmux_provider_requests_total" and ("provider", "echo") in labels
    )


def test_echo_a_second_identical_request_is_a_hit_with_a_new_id(
    gw: RunningGateway, client: openai.OpenAI, h: Any
) -> None:
    before = _echo_upstream_calls(gw, h)
    first_cache, first = _create(client, model="echo", input="cache me", temperature=0)
    second_cache, second = _create(client, model="echo", input="cache me", temperature=0)
    assert (first_cache, second_cache) == ("miss", "hit")
    assert _echo_upstream_calls(gw, h) - before == 1  # the hit did not reach the provider
    assert second.output_text == first.output_text == "cache me"
    assert second.id != first.id and second.output[0].id != first.output[0].id
    assert second.status == "completed"

    # The hit is a stored response of its own: retrievable, with its input, and continuable.
    assert client.responses.retrieve(second.id).output_text == "cache me"
    items = client.responses.input_items.list(second.id)
    assert [i.content[0].text for i in items.data] == ["cache me"]  # type: ignore[union-attr]
    nxt = client.responses.create(model="echo", input="and then", previous_response_id=second.id)
    assert nxt.output_text == "and then" and nxt.previous_response_id == second.id
    # The original is untouched by the hit.
    assert client.responses.retrieve(first.id).id == first.id


def test_translated_provider_non_stream_and_stream(
    gw: RunningGateway, client: openai.OpenAI, upstream: LoopbackServer, h: Any
) -> None:
    assert _create(client, model="cached", input="the answer")[0] == "miss"
    cache, hit = _create(client, model="cached", input="the answer")
    assert cache == "hit" and hit.output_text == "the answer"
    assert h.chat_calls(upstream) == 1
    assert _create(client, model="cached", input="the answer", temperature=0.3)[0] == "miss"  # a changed field
    assert h.chat_calls(upstream) == 2

    runs = []
    for _ in range(2):
        with client.responses.with_streaming_response.create(model="cached", input="stream it", stream=True) as raw:
            events = list(raw.parse())
            runs.append((raw.headers["x-modelmux-cache"], events))
    assert [c for c, _ in runs] == ["miss", "hit"]
    assert h.chat_calls(upstream) == 3
    (_, miss), (_, hit_events) = runs
    assert [e.type for e in hit_events] == [e.type for e in miss]
    created, completed = hit_events[0].response, hit_events[-1].response  # type: ignore[union-attr]
    assert created.id == completed.id != miss[-1].response.id  # type: ignore[union-attr]
    assert completed.output_text == "stream it"
    item_ids = {getattr(e, "item_id", None) for e in hit_events} - {None}
    assert item_ids == {completed.output[0].id}  # deltas name the renamed item
    assert completed.output[0].id != miss[-1].response.output[0].id  # type: ignore[union-attr]
    # Stored before the terminal event: continuing from a streamed hit works.
    assert client.responses.retrieve(completed.id).output_text == "stream it"
    follow = client.responses.create(model="cached", input="next", previous_response_id=completed.id)
    assert follow.output_text == "next"


def test_previous_response_id_hits_only_the_same_conversation(
    gw: RunningGateway, client: openai.OpenAI, upstream: LoopbackServer, h: Any
) -> None:
    _, a = _create(client, model="cached", input="hello")
    assert _create(client, model="cached", input="more", previous_response_id=a.id)[0] == "miss"
    cache, b2 = _create(client, model="cached", input="more", previous_response_id=a.id)
    assert cache == "hit" and b2.previous_response_id == a.id
    assert h.chat_calls(upstream) == 2

    # Another conversation with the same content (its first turn a hit, with new item ids) hits too:
    # the key holds the resolved history without item ids, not the response id.
    cache, a2 = _create(client, model="cached", input="hello")
    assert cache == "hit" and a2.id != a.id
    cache, b3 = _create(client, model="cached", input="more", previous_response_id=a2.id)
    assert cache == "hit" and b3.previous_response_id == a2.id
    assert h.chat_calls(upstream) == 2

    # The same input over a different history is a different entry.
    assert _create(client, model="cached", input="more", previous_response_id=b2.id)[0] == "miss"
    assert h.chat_calls(upstream) == 3
    # The upstream saw the whole conversation: hits are stored with their history.
    _, deep = _create(client, model="cached", input="deeper", previous_response_id=b3.id)
    sent = [r for r in upstream.requests if r["path"].endswith("/chat/completions")][-1]["body"]
    assert b"hello" in sent and b"more" in sent and b"deeper" in sent and deep.output_text == "deeper"


def test_store_false_hits_but_is_not_stored(
    gw: RunningGateway, client: openai.OpenAI, upstream: LoopbackServer, h: Any
) -> None:
    _, stored = _create(client, model="cached", input="private")
    cache, unstored = _create(client, model="cached", input="private", store=False)
    assert cache == "hit" and unstored.store is False and stored.store is True
    assert h.chat_calls(upstream) == 1
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_native_provider_hits_are_renamed(
    gw: RunningGateway, client: openai.OpenAI, upstream: LoopbackServer, h: Any
) -> None:
    _, first = _create(client, model="native", input="native one")
    cache, second = _create(client, model="native", input="native one")
    assert cache == "hit" and h.responses_calls(upstream) == 1
    assert first.id == "resp_up1" and second.id.startswith("resp_") and second.id != first.id
    assert second.output[0].id.startswith("msg_") and second.output[0].id != first.output[0].id
    assert client.responses.retrieve(first.id).id == first.id  # a hit never overwrites the original

    streams = []
    for _ in range(2):
        with client.responses.with_streaming_response.create(model="native", input="streamed", stream=True) as raw:
            streams.append((raw.headers["x-modelmux-cache"], list(raw.parse())))
    assert [c for c, _ in streams] == ["miss", "hit"]
    assert h.responses_calls(upstream) == 2
    done = streams[1][1][-1].response  # type: ignore[union-attr]
    assert done.id != streams[0][1][-1].response.id and done.output_text == "streamed"  # type: ignore[union-attr]
    assert client.responses.retrieve(done.id).id == done.id


def test_the_header_and_the_model_setting_apply(
    gw: RunningGateway, client: openai.OpenAI, upstream: LoopbackServer, h: Any
) -> None:
    plain = client.responses.with_raw_response.create(model="plain", input="q")
    assert "x-modelmux-cache" not in plain.headers  # no cache = true on this model
    use = {"x-modelmux-cache": "use"}
    assert (
        client.responses.with_raw_response.create(model="plain", input="q", extra_headers=use).headers[
            "x-modelmux-cache"
        ]
        == "miss"
    )
    assert (
        client.responses.with_raw_response.create(model="plain", input="q", extra_headers=use).headers[
            "x-modelmux-cache"
        ]
        == "hit"
    )
    skip = client.responses.with_raw_response.create(
        model="cached", input="q", extra_headers={"x-modelmux-cache": "skip"}
    )
    assert "x-modelmux-cache" not in skip.headers
    refresh = {"x-modelmux-cache": "refresh"}
    calls = h.chat_calls(upstream)
    assert (
        client.responses.with_raw_response.create(model="cached", input="q", extra_headers=refresh).headers[
            "x-modelmux-cache"
        ]
        == "miss"
    )
    assert h.chat_calls(upstream) == calls + 1
    bad = httpx.post(f"{gw.url}/responses", json={"model": "cached", "input": "q"}, headers={"x-modelmux-cache": "x"})
    assert bad.status_code == 400


def test_a_failed_answer_is_not_stored(
    gw: RunningGateway, client: openai.OpenAI, upstream: LoopbackServer, h: Any
) -> None:
    upstream.app["fail"].append(500)  # type: ignore[index]
    with pytest.raises(openai.APIStatusError):
        client.responses.create(model="cached", input="flaky")
    assert _create(client, model="cached", input="flaky")[0] == "miss"
    assert _create(client, model="cached", input="flaky")[0] == "hit"
    assert h.chat_calls(upstream) == 2


def test_a_hit_repeats_the_dropped_tools_header(gw: RunningGateway, upstream: LoopbackServer, h: Any) -> None:
    body = {"model": "echo", "input": "search please", "tools": [{"type": "web_search"}]}
    first = httpx.post(f"{gw.url}/responses", json=body)
    second = httpx.post(f"{gw.url}/responses", json=body)
    assert (first.headers["x-modelmux-cache"], second.headers["x-modelmux-cache"]) == ("miss", "hit")
    assert first.headers["x-modelmux-dropped-tools"] == second.headers["x-modelmux-dropped-tools"] == "web_search"
