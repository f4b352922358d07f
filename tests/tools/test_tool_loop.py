"""The tool loop of ``POST /v1/responses`` with a gateway tool, over a fake chat upstream on loopback.

The fake upstream (OpenAI Chat Completions, plain and streamed) calls the ``web_search`` function
it is offered, then answers from the tool's text; it records every body it receives, so these tests
see what the model was sent in each round. The tool is a test plugin registered in-process. Client:
the official ``openai`` SDK, raw HTTP where every event is checked against the OpenAPI spec.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import openai
import orjson
import pytest
from aiohttp import web

from modelmux.plugin import (
    Completion,
    InvalidRequestError,
    Provider,
    ProviderSettings,
    RawEventStream,
    RegisterProvider,
    RegisterTool,
    Tool,
    ToolCall,
    ToolContext,
    ToolOutput,
    ToolSettings,
    UpstreamRequest,
    hookimpl,
    request_body,
)
from modelmux.sse import SSEParser
from modelmux.testing import LoopbackServer, RunningGateway, run_gateway, serve_aiohttp, validate
from modelmux.testing.openapi import spec

KEY = f"sk-loop-{uuid.uuid4().hex}"
SOURCE = "https://example.com/cats"

# -- the fake model --------------------------------------------------------------------------


def _last_user(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m["role"] == "user":
            return str(m["content"])
    return ""


def _decide(body: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
    """(text, [(function, arguments)]) the fake model answers ``body`` with."""
    messages = body["messages"]
    user = _last_user(messages)
    names = {t["function"]["name"] for t in body.get("tools") or []}
    can_call = "web_search" in names and body.get("tool_choice") != "none"
    last = messages[-1]
    if last["role"] == "tool" and "forever" not in user:
        answers = [m["content"] for m in messages if m["role"] == "tool"]
        return f"From the search: {' | '.join(answers)}. Source: {SOURCE}", []
    if not can_call:
        return ("gave up" if "forever" in user else f"plain answer to {user}"), []
    if "twice" in user:
        return None, [("web_search", '{"query": "cats"}'), ("web_search", '{"query": "dogs"}')]
    if "client too" in user:
        return "Checking.", [("web_search", '{"query": "weather"}'), ("get_weather", '{"city": "Oslo"}')]
    if "bad args" in user:
        return None, [("web_search", "this is not json")]
    query = user.split(":", 1)[1].strip() if ":" in user else user
    return None, [("web_search", orjson.dumps({"query": query}).decode())]


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def _completion(text: str | None, calls: list[tuple[str, str]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{i}_{uuid.uuid4().hex[:6]}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": USAGE,
    }


def _chunks(text: str | None, calls: list[tuple[str, str]]) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    for piece in (text or "").split(" "):
        if piece:
            out.append(chunk({"content": piece + " "}))
    for i, (name, args) in enumerate(calls):
        head = {"index": i, "id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args[:5]}}
        out.append(chunk({"tool_calls": [head]}))
        out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": args[5:]}}]}))
    out.append(chunk({}, "tool_calls" if calls else "stop"))
    out.append({**base, "choices": [], "usage": USAGE})
    return out


def fake_model_app() -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        request.app["bodies"].append(body)
        text, calls = _decide(body)
        if not body.get("stream"):
            return web.json_response(_completion(text, calls))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for c in _chunks(text, calls):
            await resp.write(b"data: " + orjson.dumps(c) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def native(request: web.Request) -> web.Response:
        request.app["native"].append(await request.json())
        return web.json_response({"error": {"message": "the native path must not be taken"}}, status=500)

    app = web.Application()
    app["bodies"] = []
    app["native"] = []
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/responses", native)
    return app


# -- the test tool and a native provider ----------------------------------------------------------


class SearchSettings(ToolSettings):
    delay_seconds: float = 0.0


class FakeSearch(Tool):
    """Search the web."""

    type = "web_search"
    aliases = ("web_search_preview",)
    settings: SearchSettings
    calls: list[tuple[str, str | None, frozenset[str]]] = []

    def check(self, tool: Mapping[str, Any]) -> None:
        if tool.get("search_context_size") not in (None, "low", "medium", "high"):
            raise InvalidRequestError("search_context_size must be low, medium or high", param="tools")

    async def prepare(self, tool: Mapping[str, Any], ctx: ToolContext) -> None:
        if tool.get("filters", {}).get("allowed_domains") == ["only-for-other-keys.example"]:
            raise InvalidRequestError(f"tools: this domain list is not allowed for {ctx.key_id}", param="tools")

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        query = str(call.arguments.get("query"))
        FakeSearch.calls.append((query, ctx.key_id, call.include))
        if query == "boom":
            raise RuntimeError("the search backend exploded")
        await asyncio.sleep(self.settings.delay_seconds)
        action = {"type": "search", "query": query, "sources": [{"type": "url", "url": SOURCE}]}
        return ToolOutput(item={"action": action}, text=f"RESULT[{query}]", sources=[{"url": SOURCE, "title": "Cats"}])

    def annotate(self, text: str, outputs: Sequence[ToolOutput]) -> list[dict[str, Any]]:
        out = []
        for source in {s["url"]: s for o in outputs for s in o.sources}.values():
            start = text.find(source["url"])
            if start >= 0:
                end = start + len(source["url"])
                out.append(
                    {
                        "type": "url_citation",
                        "url": source["url"],
                        "title": source["title"],
                        "start_index": start,
                        "end_index": end,
                    }
                )
        return out


class NativeFake(Provider):
    """A provider with its own Responses API (it must not be asked when a gateway tool is in the request)."""

    native_responses = True

    async def chat(self, request: UpstreamRequest) -> Completion | RawEventStream:
        url = f"{self.settings.base_url}/chat/completions"  # type: ignore[attr-defined]
        resp = await self.host.http.post(url, data=request_body(request), headers={"content-type": "application/json"})
        if request.stream:
            return RawEventStream(resp.content.iter_any(), provider=self.name)
        return Completion(raw=await resp.read())

    async def responses(self, request: UpstreamRequest) -> Completion:
        url = f"{self.settings.base_url}/responses"  # type: ignore[attr-defined]
        async with self.host.http.post(url, data=request_body(request)) as resp:
            return Completion(raw=await resp.read())


class NativeSettings(ProviderSettings):
    base_url: str


class LoopPlugin:
    __name__ = "loop-test-plugin"

    @hookimpl
    def register_tools(self, register: RegisterTool) -> None:
        register(FakeSearch, SearchSettings)

    @hookimpl
    def register_providers(self, register: RegisterProvider) -> None:
        register("native_fake", NativeFake, NativeSettings)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[LoopbackServer]:
    with serve_aiohttp(fake_model_app()) as server:
        yield server


def config(fake: LoopbackServer, **extra: Any) -> dict[str, Any]:
    base = f"{fake.url}/v1"
    return {
        "server": {"api_keys": [KEY]},
        "state": {"backend": "memory"},
        "providers": {
            "up": {"type": "openai_compatible", "base_url": base, "max_retries": 0, "native_responses": False},
            "native": {"type": "native_fake", "base_url": base, "max_retries": 0},
        },
        "models": {"m": {"provider": "up", "model": "fake"}, "n": {"provider": "native", "model": "fake"}},
        "tools": {"max_rounds": 2, "web_search": {}},
        **extra,
    }


@pytest.fixture(scope="module")
def gw(fake: LoopbackServer) -> Iterator[RunningGateway]:
    with run_gateway(config(fake), plugins=[LoopPlugin()]) as running:
        yield running


@pytest.fixture
def bodies(fake: LoopbackServer) -> list[dict[str, Any]]:
    fake.app["bodies"].clear()
    fake.app["native"].clear()
    FakeSearch.calls.clear()
    received: list[dict[str, Any]] = fake.app["bodies"]
    return received


@pytest.fixture
def sdk(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key=KEY, max_retries=0)


def post(gw: RunningGateway, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gw.url}/responses", json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=30)


def _event_schemas() -> dict[str, str]:
    schemas = spec()["components"]["schemas"]
    out = {}
    for ref in schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        out[schemas[name]["properties"]["type"]["enum"][0]] = name
    return out


EVENT_SCHEMAS = _event_schemas()


def stream_events(gw: RunningGateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    parser = SSEParser()
    with httpx.stream(
        "POST", f"{gw.url}/responses", json={**body, "stream": True}, headers={"authorization": f"Bearer {KEY}"}
    ) as r:
        assert r.status_code == 200, r.read()
        for chunk in r.iter_bytes():
            for ev in parser.feed(chunk):
                payload = orjson.loads(ev.data)
                validate(EVENT_SCHEMAS[payload["type"]], payload)
                events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


# -- non-stream --------------------------------------------------------------------------------


def test_the_model_calls_the_tool_and_answers_from_its_text(
    sdk: openai.OpenAI, bodies: list[dict[str, Any]], gw: RunningGateway
) -> None:
    resp = sdk.responses.create(model="m", input="search: cats", tools=[{"type": "web_search"}])
    # the upstream was offered the tool as a function, then got the call and the tool's text
    first, second = bodies
    assert [t["function"]["name"] for t in first["tools"]] == ["web_search"]
    assert first["tools"][0]["function"]["description"] == "Search the web."
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "web_search"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": second["messages"][-2]["tool_calls"][0]["id"],
        "content": "RESULT[cats]",
    }
    # the client: a web_search_call item, then the answer with its citation; usage of both calls
    call, message = resp.output
    assert call.type == "web_search_call" and call.status == "completed" and call.id.startswith("ws_")
    assert call.action.type == "search" and call.action.query == "cats"
    assert not getattr(call.action, "sources", None)  # only with include
    assert message.type == "message" and "RESULT[cats]" in resp.output_text
    (citation,) = message.content[0].annotations
    assert citation.type == "url_citation" and citation.url == SOURCE
    assert resp.output_text[citation.start_index : citation.end_index] == SOURCE
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (20, 10)
    stored = httpx.get(f"{gw.url}/responses/{resp.id}", headers={"authorization": f"Bearer {KEY}"}).json()
    validate("Response", stored)
    assert stored["output"][0]["id"] == call.id
    assert FakeSearch.calls[0][1] is not None and FakeSearch.calls[0][1].startswith("key-")


def test_include_gives_the_sources_and_an_alias_works(bodies: list[dict[str, Any]], gw: RunningGateway) -> None:
    r = post(
        gw,
        {
            "model": "m",
            "input": "search: cats",
            "tools": [{"type": "web_search_preview"}],
            "include": ["web_search_call.action.sources"],
        },
    )
    assert r.status_code == 200, r.text
    validate("Response", r.json())
    action = r.json()["output"][0]["action"]
    assert action["sources"] == [{"type": "url", "url": SOURCE}]
    assert FakeSearch.calls[0][2] == frozenset({"web_search_call.action.sources"})


def test_calls_of_one_round_run_concurrently_in_order(fake: LoopbackServer, bodies: list[dict[str, Any]]) -> None:
    cfg = config(fake)
    cfg["tools"]["web_search"] = {"delay_seconds": 0.5}
    with run_gateway(cfg, plugins=[LoopPlugin()]) as running:
        started = time.monotonic()
        r = post(running, {"model": "m", "input": "twice please", "tools": [{"type": "web_search"}]})
        elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert [i["type"] for i in out] == ["web_search_call", "web_search_call", "message"]
    assert [i["action"]["query"] for i in out[:2]] == ["cats", "dogs"]
    assert elapsed < 0.95, f"two 0.5 s calls took {elapsed:.2f} s: not concurrent"
    assert "RESULT[cats] | RESULT[dogs]" in out[2]["content"][0]["text"]


def test_rounds_are_bounded_and_the_last_call_has_tool_choice_none(
    gw: RunningGateway, bodies: list[dict[str, Any]]
) -> None:
    r = post(gw, {"model": "m", "input": "search forever: cats", "tools": [{"type": "web_search"}]})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert [i["type"] for i in out] == ["web_search_call", "web_search_call", "message"]  # max_rounds = 2
    assert out[-1]["content"][0]["text"] == "gave up"
    assert [b.get("tool_choice") for b in bodies] == [None, None, "none"]
    assert r.json()["usage"]["input_tokens"] == 30


def test_a_tool_that_fails_is_a_failed_item_and_the_model_is_told(
    gw: RunningGateway, bodies: list[dict[str, Any]]
) -> None:
    r = post(gw, {"model": "m", "input": "search: boom", "tools": [{"type": "web_search"}]})
    assert r.status_code == 200, r.text
    validate("Response", r.json())
    call, message = r.json()["output"]
    assert call["status"] == "failed" and call["action"]["query"] == "boom"
    told = bodies[1]["messages"][-1]["content"]
    assert "web_search tool failed" in told and "exploded" not in told  # the reason goes to the log only
    assert message["type"] == "message"
    scrape = httpx.get(f"{gw.root}/metrics").text
    assert 'modelmux_tool_calls_total{status="failed",tool="web_search"}' in scrape
    assert 'modelmux_tool_call_duration_seconds_count{tool="web_search"}' in scrape


def test_arguments_that_are_not_an_object_are_not_run(gw: RunningGateway, bodies: list[dict[str, Any]]) -> None:
    r = post(gw, {"model": "m", "input": "bad args", "tools": [{"type": "web_search"}]})
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["status"] == "failed" and not FakeSearch.calls
    assert "not a JSON object" in bodies[1]["messages"][-1]["content"]


def test_a_client_function_in_the_same_round_comes_back_to_the_client(
    sdk: openai.OpenAI, bodies: list[dict[str, Any]]
) -> None:
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    resp = sdk.responses.create(model="m", input="weather, client too", tools=[{"type": "web_search"}, weather])
    assert [i.type for i in resp.output] == ["message", "web_search_call", "function_call"]
    assert resp.output[2].name == "get_weather" and len(bodies) == 1
    # the client answers its function: the next turn shows the model both calls and both answers
    call_id = resp.output[2].call_id
    follow = sdk.responses.create(
        model="m",
        previous_response_id=resp.id,
        input=[{"type": "function_call_output", "call_id": call_id, "output": "sunny"}],
        tools=[{"type": "web_search"}, weather],
    )
    sent = bodies[1]["messages"]
    roles = [m["role"] for m in sent]
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]
    assert sent[1]["content"] == "Checking." and sent[1]["tool_calls"][0]["function"]["name"] == "web_search"
    assert sent[2]["content"] == "RESULT[weather]" and sent[4]["content"] == "sunny"
    assert "RESULT[weather]" in follow.output_text


def test_a_later_turn_replays_the_stored_tool_call_to_the_model(
    sdk: openai.OpenAI, bodies: list[dict[str, Any]]
) -> None:
    first = sdk.responses.create(model="m", input="search: cats", tools=[{"type": "web_search"}])
    sdk.responses.create(model="m", previous_response_id=first.id, input="thanks, and now?")
    sent = bodies[2]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "web_search"
    assert sent[2]["content"] == "RESULT[cats]"  # the tool's text, not only the item the client saw


def test_an_item_the_client_sends_itself_is_summarised_for_the_model(
    gw: RunningGateway, bodies: list[dict[str, Any]]
) -> None:
    item = {
        "type": "web_search_call",
        "id": "ws_client",
        "status": "completed",
        "action": {"type": "search", "query": "cats", "sources": [{"type": "url", "url": SOURCE}]},
    }
    r = post(gw, {"model": "m", "input": [item, {"role": "user", "content": "so?"}], "store": False})
    assert r.status_code == 200, r.text
    sent = bodies[0]["messages"]
    assert sent[0]["tool_calls"][0]["function"]["name"] == "web_search"
    assert sent[1]["content"] == f"Searched the web for 'cats'. Sources: {SOURCE}"


def test_a_native_responses_provider_takes_the_chat_path_with_a_gateway_tool(
    sdk: openai.OpenAI, bodies: list[dict[str, Any]], fake: LoopbackServer
) -> None:
    resp = sdk.responses.create(model="n", input="search: cats", tools=[{"type": "web_search"}])
    assert [i.type for i in resp.output] == ["web_search_call", "message"]
    assert len(bodies) == 2 and not fake.app["native"]


def test_bad_tool_entries_and_name_clashes_are_400s(gw: RunningGateway, bodies: list[dict[str, Any]]) -> None:
    bad = post(gw, {"model": "m", "input": "x", "tools": [{"type": "web_search", "search_context_size": "huge"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tools[0]"
    clash = {"type": "function", "name": "web_search", "parameters": {"type": "object", "properties": {}}}
    both = post(gw, {"model": "m", "input": "x", "tools": [{"type": "web_search"}, clash]})
    assert both.status_code == 400 and "two tools are named 'web_search'" in both.json()["error"]["message"]
    assert not bodies
    entry = {"type": "web_search", "filters": {"allowed_domains": ["only-for-other-keys.example"]}}
    refused = post(gw, {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}, entry]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tools[1]"
    assert "not allowed for key-" in refused.json()["error"]["message"] and not bodies


def test_without_a_configured_tool_it_is_dropped_as_before(fake: LoopbackServer, bodies: list[dict[str, Any]]) -> None:
    cfg = config(fake)
    cfg["tools"] = {}
    with run_gateway(cfg, plugins=[LoopPlugin()]) as running:
        r = post(running, {"model": "m", "input": "search: cats", "tools": [{"type": "web_search"}]})
    assert r.status_code == 200 and r.headers["x-modelmux-dropped-tools"] == "web_search"
    assert "tools" not in bodies[0] and [i["type"] for i in r.json()["output"]] == ["message"]


def test_tool_time_counts_in_the_request_deadline(fake: LoopbackServer, bodies: list[dict[str, Any]]) -> None:
    cfg = config(fake, router={"deadline_seconds": 0.6})
    cfg["tools"]["web_search"] = {"delay_seconds": 5}
    with run_gateway(cfg, plugins=[LoopPlugin()]) as running:
        started = time.monotonic()
        r = post(running, {"model": "m", "input": "search: cats", "tools": [{"type": "web_search"}]})
        elapsed = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert "deadline" in r.json()["error"]["message"] and elapsed < 2.5
    assert len(bodies) == 1


# -- streams -------------------------------------------------------------------------------------


def test_a_stream_has_the_tool_events_and_one_response(gw: RunningGateway, bodies: list[dict[str, Any]]) -> None:
    events = stream_events(gw, {"model": "m", "input": "search: cats", "tools": [{"type": "web_search"}]})
    kinds = [e["type"] for e in events]
    assert kinds.count("response.created") == 1 and kinds[-1] == "response.completed"
    tool_part = [k for k in kinds if "web_search_call" in k or k.startswith("response.output_item")]
    assert tool_part[:5] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["type"]) for e in added] == [(0, "web_search_call"), (1, "message")]
    assert added[0]["item"]["status"] == "in_progress"
    (annotation,) = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert annotation["annotation"]["url"] == SOURCE
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["web_search_call", "message"]
    assert final["output"][1]["content"][0]["annotations"] == [annotation["annotation"]]
    assert final["usage"]["input_tokens"] == 20 and len(bodies) == 2
    assert bodies[1]["stream"] is True
    stored = httpx.get(f"{gw.url}/responses/{final['id']}", headers={"authorization": f"Bearer {KEY}"}).json()
    assert stored["output"] == final["output"]


def test_the_sdk_streams_a_tool_round(sdk: openai.OpenAI, bodies: list[dict[str, Any]]) -> None:
    with sdk.responses.stream(model="m", input="search: cats", tools=[{"type": "web_search"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.web_search_call.searching" in kinds
    assert [i.type for i in final.output] == ["web_search_call", "message"]
    assert "RESULT[cats]" in final.output_text


def test_a_failed_tool_in_a_stream_is_a_failed_item(gw: RunningGateway, bodies: list[dict[str, Any]]) -> None:
    events = stream_events(gw, {"model": "m", "input": "search: boom", "tools": [{"type": "web_search"}]})
    kinds = [e["type"] for e in events]
    assert "response.web_search_call.completed" not in kinds
    done = next(e for e in events if e["type"] == "response.output_item.done")
    assert done["item"]["status"] == "failed"
    assert events[-1]["type"] == "response.completed"


def test_max_tool_calls_caps_the_calls_run(gw: RunningGateway, bodies: list[dict[str, Any]]) -> None:
    r = post(gw, {"model": "m", "input": "twice please", "tools": [{"type": "web_search"}], "max_tool_calls": 1})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert [i["status"] for i in out[:2]] == ["completed", "failed"] and len(FakeSearch.calls) == 1
    assert "max_tool_calls (1) was reached" in bodies[1]["messages"][-1]["content"]


def test_a_stream_with_a_client_function_ends_with_its_call(gw: RunningGateway, bodies: list[dict[str, Any]]) -> None:
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    events = stream_events(
        gw, {"model": "m", "input": "weather, client too", "tools": [{"type": "web_search"}, weather]}
    )
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed" and len(bodies) == 1
    # the client's call streams as it comes, the gateway's item once its tool ran
    assert [i["type"] for i in final["output"]] == ["message", "function_call", "web_search_call"]
    indexes = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    assert indexes == list(range(len(final["output"])))
    # continuing: the model sees one answer with both calls, then both outputs
    call_id = final["output"][1]["call_id"]
    follow = post(
        gw,
        {
            "model": "m",
            "previous_response_id": final["id"],
            "input": [{"type": "function_call_output", "call_id": call_id, "output": "sunny"}],
        },
    )
    assert follow.status_code == 200, follow.text
    sent = bodies[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [c["function"]["name"] for c in sent[1]["tool_calls"]] == ["get_weather", "web_search"]
    assert {sent[2]["content"], sent[3]["content"]} == {"RESULT[weather]", "sunny"}


def test_a_stream_stops_after_max_rounds(gw: RunningGateway, bodies: list[dict[str, Any]]) -> None:
    events = stream_events(gw, {"model": "m", "input": "search forever: cats", "tools": [{"type": "web_search"}]})
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["web_search_call", "web_search_call", "message"]
    assert [b.get("tool_choice") for b in bodies] == [None, None, "none"]
    assert final["usage"]["input_tokens"] == 30
