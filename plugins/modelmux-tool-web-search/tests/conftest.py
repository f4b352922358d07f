"""A fake SearXNG on loopback for the web_search plugin's tests.

``GET /search`` answers SearXNG's JSON (``results[]`` with ``url``, ``title``, ``content`` and
the fields a real instance adds) and records every query it receives. Some queries are
scenarios: ``boom`` answers 500, ``forbidden`` 403 (the json format disabled), ``notjson`` an
HTML page, ``nolist`` JSON without a results list, ``slow`` nothing until the client gives up, ``empty`` no results.
Otherwise the results are ``RESULTS`` (a test may replace ``app[RESULTS]``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from modelmux_tool_web_search import WebSearch, WebSearchSettings

from modelmux.plugin import Host, ToolContext
from modelmux.testing import LoopbackServer, upstream_fixture

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
def settings(searxng: LoopbackServer) -> dict[str, Any]:
    """The ``[tools.web_search]`` table the ``tool`` fixture is made from (tests add keys)."""
    return {"url": searxng.url}


@pytest.fixture
async def tool(settings: dict[str, Any], host: Host) -> AsyncIterator[WebSearch]:
    made = WebSearch(WebSearchSettings.model_validate(settings), host)
    await made.start()
    yield made
    await made.aclose()


@pytest.fixture
def ctx(host: Host) -> ToolContext:
    return ToolContext(None, "req-test", host.http)
