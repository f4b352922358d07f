"""A fake SearXNG and a fake chat model on loopback, and ``modelmux serve`` using both, for the
web_search plugin's tests.

``GET /search`` answers SearXNG's JSON (``results[]`` with ``url``, ``title``, ``content`` and
the fields a real instance adds) and records every query it receives. Some queries are
scenarios: ``boom`` answers 500, ``forbidden`` 403 (the json format disabled), ``notjson`` an
HTML page, ``nolist`` JSON without a results list, ``slow`` nothing until the client gives up, ``empty`` no results.
Otherwise the results are ``RESULTS`` (a test may replace ``app[RESULTS]``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from modelmux.plugin import Host, ToolContext
from modelmux.testing import LoopbackServer, ServeProcess, serve_process, upstream_fixture

RESULTS_KEY = web.AppKey("results", list)
QUERIES_KEY = web.AppKey("queries", list)


def row(url: str, title: str, content: str, engine: str = "duckduckgo") -> dict[str, Any]:
    """One result as SearXNG's JSON has it."""
    return {
        "url": url,
        "title": title,
        "content": content,
        "engine": engine,
        "engines": [engine],
        "parsed_url": list(urlsplit(url)),
        "template": "default.html",
        "positions": [1],
        "score": 1.0,
        "category": "general",
        "publishedDate": None,
    }


RESULTS = [
    row("https://www.python.org/", "Welcome to Python.org", "The official home of the Python Programming Language."),
    row(
        "https://docs.python.org/3/whatsnew/3.13.html",
        "What's New In Python 3.13",
        "This article explains the new features in Python 3.13, compared to 3.12.",
    ),
    row(
        "https://en.wikipedia.org/wiki/Python_(programming_language)",
        "Python (programming language) - Wikipedia",
        "Python is a high-level, general-purpose programming language.",
    ),
    # SearXNG merges duplicates, but a second engine's copy can slip through; and some engines
    # give non-web links (torrents, apps) that are no citable page.
    row("https://www.python.org/", "Python.org (again)", "duplicate"),
    row("magnet:?xt=urn:btih:abc", "not a web page", "a torrent"),
]


def make_searxng() -> web.Application:
    app = web.Application()
    app[RESULTS_KEY] = list(RESULTS)
    app[QUERIES_KEY] = []

    async def search(request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        request.app[QUERIES_KEY].append({"params": params, "headers": dict(request.headers)})
        q = params.get("q", "")
        if params.get("format") != "json" or "forbidden" in q:
            return web.Response(status=403, text="Forbidden")
        if "boom" in q:
            return web.Response(status=500, text="Internal Server Error")
        if "notjson" in q:
            return web.Response(text="<html><body>results</body></html>", content_type="text/html")
        if "nolist" in q:
            return web.json_response({"query": q, "results": "none"})
        if "slow" in q:
            for _ in range(100):  # until the client gives up (or 5 s)
                if request.transport is None or request.transport.is_closing():
                    return web.Response(status=499)
                await asyncio.sleep(0.05)
        results = [] if "empty" in q else request.app[RESULTS_KEY]
        return web.json_response(
            {
                "query": q,
                "number_of_results": 0,
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )

    app.router.add_get("/search", search)
    return app


searxng = upstream_fixture(make_searxng)


@pytest.fixture(autouse=True)
def queries(searxng: LoopbackServer) -> list[dict[str, Any]]:
    """What the fake SearXNG received during this test, in order (each ``{"params", "headers"}``);
    every test starts with none and the default ``RESULTS``."""
    assert searxng.app is not None
    seen: list[dict[str, Any]] = searxng.app[QUERIES_KEY]
    seen.clear()
    searxng.app[RESULTS_KEY] = list(RESULTS)
    return seen


@pytest.fixture
def set_results(searxng: LoopbackServer, queries: list[dict[str, Any]]) -> Callable[[list[tuple[str, str, str]]], None]:
    """``set_results([(url, title, content), ...])``: what the fake SearXNG answers for this test."""

    def set_to(rows: list[tuple[str, str, str]]) -> None:
        assert searxng.app is not None
        searxng.app[RESULTS_KEY] = [row(*r) for r in rows]

    return set_to


@pytest.fixture
def tool_config(searxng: LoopbackServer) -> dict[str, Any]:
    """The ``[tools.web_search]`` table of ``modelmux.testing``'s ``tool`` fixture (made as the gateway makes it)."""
    return {"type": "web_search", "url": searxng.url}


@pytest.fixture
def ctx(host: Host) -> ToolContext:
    return ToolContext(None, "req-test", host.http)


# --- A fake chat model that searches, for the end-to-end tests ----------------------------------

CHAT_KEY = web.AppKey("chat_requests", list)


def chat_turn(body: dict[str, Any]) -> dict[str, Any]:
    """What the fake model does next: call ``web_search`` until it has read a tool answer, then
    answer citing ``[1]`` (and the first result of the second search when it searched twice).

    The last user text steers it: ``twice`` makes two calls in one round; any other text is the
    query it searches for."""
    messages = body.get("messages") or []
    answers = [m for m in messages if m.get("role") == "tool"]
    user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = user.get("content")
    text = content if isinstance(content, str) else json.dumps(content)
    offered = [t["function"]["name"] for t in body.get("tools") or [] if t.get("type") == "function"]
    if not answers and "web_search" in offered and body.get("tool_choice") != "none":
        queries = ["python 3.13 release", "python 3.13 free threading"] if "twice" in text else [text]
        return {
            "tool_calls": [
                {
                    "id": f"call_ws{i}",
                    "type": "function",
                    "function": {"name": "web_search", "arguments": json.dumps({"query": q})},
                }
                for i, q in enumerate(queries, 1)
            ]
        }
    if any("The web search failed" in str(m.get("content")) for m in answers):
        return {"content": "I could not search the web: the search failed."}
    if len(answers) > 1:
        return {"content": "Python 3.13 is out [1], with free threading [4]."}
    return {"content": "Python 3.13 is out [1]; see what is new [2, 3]."}


def make_chat_upstream() -> web.Application:
    app = web.Application()
    app[CHAT_KEY] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        request.app[CHAT_KEY].append(body)
        turn = chat_turn(body)
        finish = "tool_calls" if "tool_calls" in turn else "stop"
        usage = {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}
        base = {"id": "chatcmpl-ws", "created": 1700000000, "model": body.get("model", "fake")}
        if not body.get("stream"):
            message = {"role": "assistant", "content": turn.get("content"), **turn}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            return web.json_response({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)

        async def send(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> None:
            choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
            chunk = {**base, "object": "chat.completion.chunk", "choices": choices, **extra}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        await send({"role": "assistant", "content": ""})
        for index, tool_call in enumerate(turn.get("tool_calls", [])):
            function = tool_call["function"]
            await send({"tool_calls": [{"index": index, **tool_call, "function": {**function, "arguments": ""}}]})
            await send({"tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]})
        if turn.get("content"):
            for word in turn["content"].split(" "):
                await send({"content": word + " "})
        await send({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(
                b"data: "
                + json.dumps({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}).encode()
                + b"\n\n"
            )
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app.router.add_post("/v1/chat/completions", chat)
    return app


chat_upstream = upstream_fixture(make_chat_upstream)


@pytest.fixture
def chat_requests(chat_upstream: LoopbackServer) -> list[dict[str, Any]]:
    """The chat requests the fake model received during this test, in order."""
    assert chat_upstream.app is not None
    seen: list[dict[str, Any]] = chat_upstream.app[CHAT_KEY]
    seen.clear()
    return seen


SEARX_KEY = "sk-searx-never-logged"


@pytest.fixture(scope="module")
def served(
    searxng: LoopbackServer, chat_upstream: LoopbackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """The real ``modelmux serve`` command (what users run), with ``[tools.web_search]`` pointing
    at the fake SearXNG and one model, ``fake``, served by the fake chat upstream."""
    config = {
        "state": {"backend": "memory"},
        "cache": {"backend": "memory"},
        "providers": {"fake": {"type": "openai_compatible", "base_url": chat_upstream.url + "/v1", "max_retries": 0}},
        "models": {"fake": {"provider": "fake", "model": "fake-model"}},
        "tools": {"web_search": {"url": searxng.url, "api_key": SEARX_KEY}},
    }
    with serve_process(config, tmp_path_factory.mktemp("serve")) as process:
        yield process
