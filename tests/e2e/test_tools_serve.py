"""Built-in tools end to end: a real ``modelmux serve`` with a tool plugin found through its entry
point, a fake chat upstream on loopback that calls the tool then answers, the official SDK.

The plugin is a module and a ``.dist-info`` (its entry point in the group ``modelmux``) in a
temporary directory on the server's ``PYTHONPATH``: the discovery path of a ``pip install``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from modelmux.testing import LoopbackServer, serve_aiohttp
from modelmux.testing.process import ServeProcess, serve_process

KEY = f"sk-tools-e2e-{uuid.uuid4().hex}"

PLUGIN = textwrap.dedent(
    '''
    """A web_search tool for the end-to-end test: answers from a fixed table."""
    from modelmux.plugin import Check, RegisterTool, Tool, ToolOutput, ToolSettings, hookimpl


    class TableSettings(ToolSettings):
        answer: str = "Paris"


    class TableSearch(Tool):
        """Search the web."""

        type = "web_search"

        async def run(self, call, ctx):
            query = call.arguments.get("query", "")
            if query == "boom":
                raise RuntimeError("backend down at http://search.internal:9999")
            action = {"type": "search", "query": query, "sources": [{"type": "url", "url": "https://example.org/"}]}
            return ToolOutput(item={"action": action}, text=f"{query}: {self.settings.answer}")

        async def doctor(self):
            return [Check("table search answers", True, f"answer: {self.settings.answer}", topic="network")]


    @hookimpl
    def register_tools(register: RegisterTool) -> None:
        register(TableSearch, TableSettings)
    '''
)


def install_plugin(target: Path) -> None:
    (target / "tooltest_plugin.py").write_text(PLUGIN)
    dist = target / "tooltest_plugin-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tooltest-plugin\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[modelmux]\ntooltest = tooltest_plugin\n")


def fake_app() -> web.Application:
    """Calls ``web_search`` with the user's text when offered it; answers from the tool's text after."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        request.app["bodies"].append(body)
        last = body["messages"][-1]
        offered = any(t["function"]["name"] == "web_search" for t in body.get("tools") or [])
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if last["role"] == "tool":
            message["content"] = f"The tool said {last['content']}."
        elif offered and body.get("tool_choice") != "none":
            args = orjson.dumps({"query": last["content"]}).decode()
            message["tool_calls"] = [
                {"id": "call_1", "type": "function", "function": {"name": "web_search", "arguments": args}}
            ]
        else:
            message["content"] = "no tool"
        finish = "tool_calls" if "tool_calls" in message else "stop"
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return web.json_response(
                {
                    "id": "c",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "f",
                    "choices": [choice],
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "f"}
        delta = {"role": "assistant", **{k: v for k, v in message.items() if k != "role"}}
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": 0, **delta["tool_calls"][0]}]
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


def server_config(fake: LoopbackServer) -> dict[str, Any]:
    return {
        "server": {"api_keys": [KEY]},
        "state": {"backend": "memory"},
        "providers": {"up": {"type": "openai_compatible", "base_url": f"{fake.url}/v1", "native_responses": False}},
        "models": {"claude": {"provider": "up", "model": "upstream-model"}},
        "tools": {"max_rounds": 3, "web_search": {"answer": "Paris, since 508"}},
    }


@pytest.fixture(scope="module")
def served(fake: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    site = tmp_path_factory.mktemp("site")
    install_plugin(site)
    config = server_config(fake)
    env = {"PYTHONPATH": str(site), "MODELMUX_LOAD_PLUGINS": "vllm,tooltest"}
    with serve_process(config, tmp_path_factory.mktemp("serve"), env=env) as proc:
        yield proc


@pytest.fixture
def client(served: ServeProcess, fake: LoopbackServer) -> openai.OpenAI:
    fake.app["bodies"].clear()
    return openai.OpenAI(base_url=f"{served.root}/v1", api_key=KEY, max_retries=0)


def test_the_sdk_gets_a_web_search_call_and_the_answer(client: openai.OpenAI, fake: LoopbackServer) -> None:
    resp = client.responses.create(model="claude", input="capital of France", tools=[{"type": "web_search"}])
    assert [item.type for item in resp.output] == ["web_search_call", "message"]
    assert resp.output[0].status == "completed" and resp.output[0].action.query == "capital of France"
    assert resp.output_text == "The tool said capital of France: Paris, since 508."
    first, second = fake.app["bodies"]
    assert first["tools"][0]["function"]["name"] == "web_search" and first["model"] == "upstream-model"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "capital of France: Paris, since 508",
    }
    assert resp.usage is not None and resp.usage.total_tokens == 20


def test_the_sdk_streams_the_tool_events(client: openai.OpenAI) -> None:
    stream = client.responses.create(
        model="claude",
        input="capital of France",
        tools=[{"type": "web_search"}],
        include=["web_search_call.action.sources"],
        stream=True,
    )
    events = list(stream)
    kinds = [e.type for e in events]
    for kind in ("in_progress", "searching", "completed"):
        assert f"response.web_search_call.{kind}" in kinds
    final = events[-1]
    assert final.type == "response.completed"
    call = final.response.output[0]
    assert call.type == "web_search_call" and call.action.sources[0].url == "https://example.org/"
    assert final.response.output_text == "The tool said capital of France: Paris, since 508."


def test_a_failing_tool_is_logged_and_the_answer_still_comes(client: openai.OpenAI, served: ServeProcess) -> None:
    resp = client.responses.create(model="claude", input="boom", tools=[{"type": "web_search"}])
    assert resp.output[0].status == "failed" and resp.output[1].type == "message"
    logs = served.logs()
    assert "tool web_search failed: RuntimeError: backend down at http://search.internal:9999" in logs
    assert KEY not in logs


def test_doctor_runs_the_tools_checks(served: ServeProcess, fake: LoopbackServer, tmp_path: Path) -> None:
    plugin_dir = tmp_path / "site"
    plugin_dir.mkdir()
    install_plugin(plugin_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMUX_")}
    env.update(PYTHONPATH=str(plugin_dir), MODELMUX_LOAD_PLUGINS="vllm,tooltest", HOME=str(tmp_path))
    exe = Path(sys.executable).parent / "modelmux"
    out = subprocess.run(
        [str(exe), "doctor", "--config", str(served.config_path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert "tools.web_search" in out.stdout and "table search answers" in out.stdout, out.stdout + out.stderr
    assert "answer: Paris, since 508" in out.stdout
