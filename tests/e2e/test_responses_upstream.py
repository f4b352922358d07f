"""The Responses API over a chat upstream and a native Responses upstream (fake servers on loopback).

The fake upstream speaks OpenAI Chat Completions (and the Responses API for the native
provider) and records what it receives, so these tests check the translation both ways:
what the upstream is sent, and what the client gets (validated against the official spec).
The providers come from a test-only plugin module registered through a throw-away entry
point, exactly as an installed plugin would be found.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from aiohttp import web
from pydantic import BaseModel

from modelmux.sse import SSEParser
from modelmux.testing import LoopbackServer, RunningGateway, run_gateway, serve_aiohttp, validate
from modelmux.testing.openapi import spec

PLUGIN = textwrap.dedent(
    '''
    """Test-only providers: an OpenAI-compatible chat upstream, and one with a native Responses API."""
    from modelmux import hookimpl
    from modelmux.http import error_from_status, timeout_for, upstream_errors
    from modelmux.provider import Completion, Provider, ProviderSettings, RawEventStream


    class FakeSettings(ProviderSettings):
        base_url: str


    class FakeChat(Provider):
        async def _post(self, path, request, kind):
            body = dict(request.body, model=request.model)
            async with upstream_errors(self.name):
                resp = await self.host.http.post(
                    self.settings.base_url + path, json=body, timeout=timeout_for(self.settings, stream=request.stream)
                )
                if resp.status >= 400:
                    data = await resp.read()
                    resp.release()
                    raise error_from_status(self.name, resp.status, data, resp.headers)
                if request.stream:
                    async def close():
                        resp.release()
                    return RawEventStream(resp.content.iter_any(), kind=kind, on_close=close, provider=self.name)
                data = await resp.read()
                resp.release()
                return Completion(raw=data)

        async def chat(self, request):
            return await self._post("/chat/completions", request, "chat")


    class FakeNative(FakeChat):
        native_responses = True

        async def responses(self, request):
            return await self._post("/responses", request, "responses")


    @hookimpl
    def register_providers(register):
        register("fake_chat", FakeChat, FakeSettings)
        register("fake_native", FakeNative, FakeSettings)
    '''
)


# -- the fake upstream -------------------------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return str(content or "")


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    """What the fake model says, decided from what it was sent."""
    messages = body["messages"]
    last = messages[-1]
    said = _text_of(last)
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    if last["role"] == "tool":
        return {"content": f"tool said: {last['content']}", "finish": "stop", "usage": usage}
    if body.get("tools"):
        forced = body.get("tool_choice")
        tool = body["tools"][0]["function"]
        if isinstance(forced, dict):
            tool = next(t["function"] for t in body["tools"] if t["function"]["name"] == forced["function"]["name"])
        props = tool["parameters"].get("properties", {})
        arguments = orjson.dumps({"input": "echo hi"} if "input" in props else {"city": "Paris"}).decode()
        return {"tool": (tool["name"], arguments), "finish": "tool_calls", "usage": usage}
    if body.get("response_format", {}).get("type") == "json_schema":
        return {"content": '{"name": "Ada", "age": 36}', "finish": "stop", "usage": usage}
    if "REASON" in said:
        return {"reasoning": "thinking hard", "content": "answer", "finish": "stop", "usage": usage}
    if "LENGTH" in said:
        return {"content": "cut short", "finish": "length", "usage": usage}
    roles = ",".join(m["role"] for m in messages)
    return {"content": f"roles={roles} said={said}", "finish": "stop", "usage": usage}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    answer = _answer(body)
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": answer.get("content")}
        if "reasoning" in answer:
            message["reasoning_content"] = answer["reasoning"]
        if "tool" in answer:
            name, arguments = answer["tool"]
            message["tool_calls"] = [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
            ]
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": answer["finish"]}],
                "usage": answer["usage"],
            }
        )
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_chunk({"role": "assistant", "content": ""}))
    if "reasoning" in answer:
        for piece in ("thinking ", "hard"):
            await resp.write(_chunk({"reasoning_content": piece}))
    if answer.get("content"):
        text = answer["content"]
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            await resp.write(_chunk({"content": piece}))
    if "tool" in answer:
        name, arguments = answer["tool"]
        first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}}
        await resp.write(_chunk({"tool_calls": [first]}))
        for piece in (arguments[:5], arguments[5:]):
            await resp.write(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    if "FAIL" in _text_of(body["messages"][-1]):
        return resp  # cut off before finish_reason and [DONE]
    await resp.write(_chunk({}, answer["finish"]))
    usage_chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "up"}
    await resp.write(b"data: " + orjson.dumps({**usage_chunk, "choices": [], "usage": answer["usage"]}) + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    return resp


def _native_response(body: dict[str, Any]) -> dict[str, Any]:
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    return {
        "id": f"resp_native{len(items)}",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": body["model"],
        "output": [
            {
                "type": "message",
                "id": f"msg_native{len(items)}",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": f"native saw {len(items)} items", "annotations": [], "logprobs": []}
                ],
            }
        ],
        "parallel_tool_calls": True,
        "metadata": {},
        "tool_choice": "auto",
        "tools": body.get("tools", []),
        "temperature": None,
        "top_p": None,
        "previous_response_id": None,
        "store": body.get("store", True),
    }


async def native_responses(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    if body["model"] == "broken-native":
        return web.json_response({"error": {"message": "overloaded", "type": "server_error"}}, status=503)
    response = _native_response(body)
    if not body.get("stream"):
        return web.json_response(response)
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    events = [
        {"type": "response.created", "response": {**response, "status": "in_progress", "output": []}},
        {"type": "response.completed", "response": response},
    ]
    for seq, event in enumerate(events):
        data = orjson.dumps({**event, "sequence_number": seq})
        await resp.write(b"event: " + event["type"].encode() + b"\ndata: " + data + b"\n\n")
    return resp


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Register the test-only provider module through a throw-away entry point."""
    root = tmp_path_factory.mktemp("fake-plugin")
    (root / "mm_test_fake_providers.py").write_text(PLUGIN)
    dist = root / "mm_test_fake_providers-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mm-test-fake-providers\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[modelmux]\nfake_providers = mm_test_fake_providers\n")
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))


@pytest.fixture(scope="module")
def upstream() -> Iterator[LoopbackServer]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/responses", native_responses)
    with serve_aiohttp(app) as server:
        yield server


@pytest.fixture(scope="module")
def gw(fake_plugin: None, upstream: LoopbackServer) -> Iterator[RunningGateway]:
    config = {
        "providers": {
            "up": {"type": "fake_chat", "base_url": f"{upstream.url}/v1", "max_retries": 0},
            "nat": {"type": "fake_native", "base_url": f"{upstream.url}/v1", "max_retries": 0},
        },
        "models": {
            "fake": {"provider": "up", "model": "up-model"},
            "native": {"provider": "nat", "model": "native-model"},
            "native-or-chat": {"provider": "nat", "model": "broken-native", "fallbacks": ["fake"]},
        },
    }
    with run_gateway(config) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)


def sent(upstream: LoopbackServer, path: str = "/v1/chat/completions") -> dict[str, Any]:
    """The body of the upstream's latest request to ``path``."""
    body: dict[str, Any] = orjson.loads(next(r for r in reversed(upstream.requests) if r["path"] == path)["body"])
    return body


EVENT_SCHEMAS = {}
for _ref in spec()["components"]["schemas"]["ResponseStreamEvent"]["anyOf"]:
    _name = _ref["$ref"].rsplit("/", 1)[-1]
    EVENT_SCHEMAS[spec()["components"]["schemas"][_name]["properties"]["type"]["enum"][0]] = _name


def stream_events(gw: RunningGateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    parser = SSEParser()
    with httpx.stream("POST", f"{gw.url}/responses", json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        for chunk in r.iter_bytes():
            for ev in parser.feed(chunk):
                payload = orjson.loads(ev.data)
                validate(EVENT_SCHEMAS[payload["type"]], payload)
                events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def retrieve_raw(gw: RunningGateway, response_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{gw.url}/responses/{response_id}").json()
    validate("Response", body)
    return body


TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
    {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records",
        "tools": [
            {
                "type": "function",
                "name": "lookup",
                "description": "Find a customer",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": None,
            }
        ],
    },
    {"type": "web_search"},
]


# -- tests ---------------------------------------------------------------------------------------


def test_request_translation_and_namespace_calls_mapped_back(
    gw: RunningGateway, upstream: LoopbackServer, client: openai.OpenAI
) -> None:
    r = client.responses.create(
        model="fake",
        instructions="SYSTEM ONE",
        input="who lives in Paris?",
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "name": "lookup"},
        parallel_tool_calls=False,
        max_output_tokens=50,
        temperature=0.2,
        top_p=0.9,
        user="u1",
        reasoning={"effort": "low"},
        metadata={"k": "v"},
    )
    body = sent(upstream)
    assert body["model"] == "up-model"
    assert body["messages"] == [
        {"role": "system", "content": "SYSTEM ONE"},
        {"role": "user", "content": "who lives in Paris?"},
    ]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "crm__lookup"]
    assert body["tools"][0]["function"]["strict"] is True and "strict" not in body["tools"][1]["function"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "crm__lookup"}}
    assert body["parallel_tool_calls"] is False and body["max_completion_tokens"] == 50
    assert (body["temperature"], body["top_p"], body["user"], body["reasoning_effort"]) == (0.2, 0.9, "u1", "low")
    assert "metadata" not in body and "store" not in body
    call = r.output[0]
    assert call.type == "function_call" and call.name == "lookup" and call.namespace == "crm"
    assert call.call_id == "call_1" and call.arguments == '{"city":"Paris"}'
    stored = retrieve_raw(gw, r.id)
    assert stored["output"][0]["namespace"] == "crm"

    # the tool result continues the conversation; instructions are not carried over
    r2 = client.responses.create(
        model="fake",
        previous_response_id=r.id,
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "Ada"}],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    body = sent(upstream)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool"]
    assert body["messages"][1]["tool_calls"][0]["function"] == {"name": "crm__lookup", "arguments": '{"city":"Paris"}'}
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "Ada"}
    assert r2.output_text == "tool said: Ada"
    retrieve_raw(gw, r2.id)


def test_streamed_function_call_events(gw: RunningGateway, upstream: LoopbackServer) -> None:
    events = stream_events(gw, {"model": "fake", "input": "weather?", "tools": TOOLS})
    types = [e["type"] for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"]["name"] == "get_weather" and events[2]["item"]["status"] == "in_progress"
    assert "".join(e["delta"] for e in events[3:5]) == events[5]["arguments"] == '{"city":"Paris"}'
    final = events[-1]["response"]
    assert final["output"][0]["arguments"] == '{"city":"Paris"}' and final["usage"]["total_tokens"] == 10
    assert sent(upstream)["stream_options"] == {"include_usage": True}
    assert retrieve_raw(gw, final["id"]) == final


def test_custom_tools_become_custom_tool_calls(gw: RunningGateway, client: openai.OpenAI) -> None:
    tools = [{"type": "custom", "name": "shell", "description": "run a command"}]
    r = client.responses.create(model="fake", input="run it", tools=tools)  # type: ignore[arg-type]
    assert r.output[0].type == "custom_tool_call" and r.output[0].input == "echo hi"
    retrieve_raw(gw, r.id)
    events = stream_events(gw, {"model": "fake", "input": "run it", "tools": tools})
    assert [e["input"] for e in events if e["type"] == "response.custom_tool_call_input.done"] == ["echo hi"]
    r2 = client.responses.create(
        model="fake",
        previous_response_id=r.id,
        input=[{"type": "custom_tool_call_output", "call_id": r.output[0].call_id, "output": "hi"}],
    )
    assert r2.output_text == "tool said: hi"


def test_reasoning_becomes_a_reasoning_item(gw: RunningGateway, client: openai.OpenAI) -> None:
    r = client.responses.create(model="fake", input="REASON please")
    assert [i.type for i in r.output] == ["reasoning", "message"] and r.output_text == "answer"
    assert r.output[0].content[0].text == "thinking hard"  # type: ignore[union-attr,index]
    retrieve_raw(gw, r.id)
    events = stream_events(gw, {"model": "fake", "input": "REASON please"})
    assert "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta") == "thinking hard"
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert final["output"][1]["content"][0]["text"] == "answer"


def test_length_finish_is_incomplete(gw: RunningGateway, client: openai.OpenAI) -> None:
    r = client.responses.create(model="fake", input="LENGTH", max_output_tokens=16)
    assert r.status == "incomplete" and r.incomplete_details and r.incomplete_details.reason == "max_output_tokens"
    retrieve_raw(gw, r.id)
    events = stream_events(gw, {"model": "fake", "input": "LENGTH"})
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_upstream_failure_mid_stream_is_response_failed_then_error(gw: RunningGateway, client: openai.OpenAI) -> None:
    events = stream_events(gw, {"model": "fake", "input": "FAIL now"})
    assert [e["type"] for e in events[-2:]] == ["response.failed", "error"]
    failed = events[-2]["response"]
    assert failed["status"] == "failed" and "before [DONE]" in failed["error"]["message"]
    assert retrieve_raw(gw, failed["id"])["status"] == "failed"
    with pytest.raises(openai.APIError), client.responses.stream(model="fake", input="FAIL again") as stream:
        for _ in stream:
            pass


class Person(BaseModel):
    name: str
    age: int


def test_parse_with_a_pydantic_model(upstream: LoopbackServer, client: openai.OpenAI) -> None:
    r = client.responses.parse(model="fake", input="who?", text_format=Person)
    assert r.output_parsed == Person(name="Ada", age=36)
    fmt = sent(upstream)["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Person"
    assert fmt["json_schema"]["strict"] is True and fmt["json_schema"]["schema"]["required"] == ["name", "age"]


def test_images_and_developer_messages_are_translated(upstream: LoopbackServer, client: openai.OpenAI) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    client.responses.create(
        model="fake",
        input=[
            {"role": "developer", "content": "be terse"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                ],
            },
        ],
        text={"format": {"type": "json_object"}},
    )
    body = sent(upstream)
    assert body["messages"] == [
        {"role": "system", "content": "be terse"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
            ],
        },
    ]
    assert body["response_format"] == {"type": "json_object"}


def test_openai_agents_runs_a_tool_over_several_turns(gw: RunningGateway, upstream: LoopbackServer) -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    async def run() -> tuple[Any, Any]:
        client = openai.AsyncOpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        agent = Agent(
            name="weather",
            instructions="Answer about the weather.",
            tools=[get_weather],
            model=OpenAIResponsesModel(model="fake", openai_client=client),
        )
        first = await Runner.run(agent, "Weather in Paris?")
        second = await Runner.run(agent, "And tomorrow?", previous_response_id=first.last_response_id)
        await client.close()
        return first, second

    first, second = asyncio.run(run())
    assert first.final_output == "tool said: sunny in Paris"
    assert second.final_output == "tool said: sunny in Paris"
    assert calls == ["Paris", "Paris"]
    # the last upstream call saw the whole conversation, kept by ModelMux
    roles = [m["role"] for m in sent(upstream)["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user", "assistant", "tool"]
    retrieve_raw(gw, second.last_response_id)


def test_native_responses_provider_is_forwarded_and_stored(
    gw: RunningGateway, upstream: LoopbackServer, client: openai.OpenAI
) -> None:
    r = client.responses.create(model="native", input="hi", tools=[{"type": "web_search"}])  # type: ignore[list-item]
    assert r.output_text == "native saw 1 items"
    body = sent(upstream, "/v1/responses")
    assert body["input"] == "hi" and body["tools"] == [{"type": "web_search"}]  # built-in tools go through
    r2 = client.responses.create(model="native", input="again", previous_response_id=r.id)
    body = sent(upstream, "/v1/responses")
    assert "previous_response_id" not in body and len(body["input"]) == 3  # the stored items, then the new one
    assert r2.previous_response_id == r.id and r2.output_text == "native saw 3 items"
    assert retrieve_raw(gw, r2.id)["previous_response_id"] == r.id
    # streamed: the upstream's events pass through, and the final Response is stored
    with httpx.stream(
        "POST",
        f"{gw.url}/responses",
        json={"model": "native", "input": "s", "stream": True, "previous_response_id": r2.id},
    ) as resp:
        raw = resp.read()
    assert raw.count(b"event: ") == 2 and b"native saw 5 items" in raw
    final = orjson.loads(raw.rsplit(b"data: ", 1)[1])["response"]
    assert retrieve_raw(gw, final["id"])["output"][0]["content"][0]["text"] == "native saw 5 items"


def test_fallback_from_a_native_provider_to_a_translated_one(gw: RunningGateway, client: openai.OpenAI) -> None:
    first = client.responses.create(model="fake", input="one")
    r = httpx.post(
        f"{gw.url}/responses",
        json={"model": "native-or-chat", "input": "two", "previous_response_id": first.id},
    )
    assert r.status_code == 200 and r.headers["x-modelmux-provider"] == "up"
    body = r.json()
    validate("Response", body)
    # the chat deployment got the translated conversation, and the result is stored as usual
    assert body["output"][0]["content"][0]["text"] == "roles=user,assistant,user said=two"
    assert retrieve_raw(gw, body["id"])["previous_response_id"] == first.id
