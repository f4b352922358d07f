"""An ``openai-agents`` agent with ``WebSearchTool`` and ``FileSearchTool`` through the gateway.

The agent framework sends the hosted tools as it would to OpenAI; the gateway runs them (test
tool plugins standing in for web and file search) with a chat upstream that has no such tools (a
fake on loopback: it calls both functions it is offered, then answers from their texts). The
framework parses every item and event, so this checks their shapes from a real client's side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from agents import Agent, FileSearchTool, OpenAIResponsesModel, Runner, WebSearchTool, set_tracing_disabled
from aiohttp import web
from openai import AsyncOpenAI

from modelmux.plugin import RegisterTool, Tool, ToolCall, ToolContext, ToolOutput, ToolSettings, hookimpl
from modelmux.testing import LoopbackServer, RunningGateway, run_gateway, serve_aiohttp

KEY = "sk-agents-test"


class Web(Tool):
    """Search the web."""

    type = "web_search"

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        query = str(call.arguments.get("query"))
        action = {"type": "search", "query": query, "sources": [{"type": "url", "url": "https://example.org/tour"}]}
        return ToolOutput(item={"action": action}, text=f"web says: Pogacar won ({query})")


class Files(Tool):
    """Search the uploaded files."""

    type = "file_search"

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        query = str(call.arguments.get("query"))
        stores = list(call.tool.get("vector_store_ids") or [])
        result = {"file_id": "file-1", "filename": "notes.txt", "text": "team notes: 4 wins", "score": 0.9}
        return ToolOutput(
            item={"queries": [query], "results": [{**result, "attributes": {}}]},
            text=f"files in {stores} say: team notes: 4 wins",
        )


class Plugin:
    __name__ = "agents-tools"

    @hookimpl
    def register_tools(self, register: RegisterTool) -> None:
        register(Web, ToolSettings)
        register(Files, ToolSettings)


def fake_app() -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        request.app["bodies"].append(body)
        messages = body["messages"]
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if messages[-1]["role"] == "tool":
            said = " / ".join(m["content"] for m in messages if m["role"] == "tool")
            message["content"] = f"Answer: {said}"
        else:
            names = [t["function"]["name"] for t in body.get("tools") or []]
            args = orjson.dumps({"query": "tour de france 2024"}).decode()
            message["tool_calls"] = [
                {"id": f"call_{n}", "type": "function", "function": {"name": n, "arguments": args}} for n in names
            ]
        finish = "tool_calls" if "tool_calls" in message else "stop"
        usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
        base = {"id": "c", "created": 0, "model": "fake"}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return web.json_response({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        base["object"] = "chat.completion.chunk"
        delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
        if "tool_calls" in message:
            delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
        for chunk in (
            {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
            {**base, "choices": [], "usage": usage},
        ):
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app["bodies"] = []
    app.router.add_post("/v1/chat/completions", chat)
    return app


@pytest.fixture(scope="module")
def fake() -> Iterator[LoopbackServer]:
    with serve_aiohttp(fake_app()) as server:
        yield server


@pytest.fixture(scope="module")
def gw(fake: LoopbackServer) -> Iterator[RunningGateway]:
    config = {
        "server": {"api_keys": [KEY]},
        "state": {"backend": "memory"},
        "providers": {"up": {"type": "openai_compatible", "base_url": f"{fake.url}/v1", "native_responses": False}},
        "models": {"claude": {"provider": "up", "model": "claude-upstream"}},
        "tools": {"web_search": {}, "file_search": {}},
    }
    with run_gateway(config, plugins=[Plugin()]) as running:
        yield running


def agent(gw: RunningGateway) -> Agent:
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=gw.url, api_key=KEY, max_retries=0)
    return Agent(
        name="researcher",
        instructions="Answer with what the tools found.",
        model=OpenAIResponsesModel(model="claude", openai_client=client),
        tools=[WebSearchTool(), FileSearchTool(vector_store_ids=["vs_team"], include_search_results=True)],
    )


async def test_an_agent_uses_web_and_file_search_through_the_gateway(gw: RunningGateway, fake: LoopbackServer) -> None:
    fake.app["bodies"].clear()
    result = await Runner.run(agent(gw), "Who won the 2024 Tour de France, and what do our notes say?")
    assert result.final_output == (
        "Answer: web says: Pogacar won (tour de france 2024) / files in ['vs_team'] say: team notes: 4 wins"
    )
    raw = [item.raw_item for item in result.new_items]
    kinds = [getattr(r, "type", None) for r in raw]
    assert kinds == ["web_search_call", "file_search_call", "message"]
    assert raw[1].results is not None and raw[1].results[0].filename == "notes.txt"  # include_search_results
    first = fake.app["bodies"][0]
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["file_search", "web_search"]


async def test_an_agent_streams_through_the_gateway(gw: RunningGateway) -> None:
    run = Runner.run_streamed(agent(gw), "Who won the 2024 Tour de France?")
    kinds = [event.data.type async for event in run.stream_events() if event.type == "raw_response_event"]
    assert "response.web_search_call.searching" in kinds and "response.file_search_call.completed" in kinds
    assert str(run.final_output).startswith("Answer: web says: Pogacar won")
