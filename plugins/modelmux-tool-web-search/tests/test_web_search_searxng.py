"""The tool against a fake SearXNG over real HTTP: what it sends, what the model reads, and
every way the backend can fail (a failed search item, never an exception)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from modelmux_tool_web_search import WebSearch, WebSearchSettings
from modelmux_tool_web_search import tool as tool_module

from modelmux.plugin import Host, ToolCall, ToolContext
from modelmux.testing import LoopbackServer, ToolContract, free_port, validate

WEB_SEARCH = {"type": "web_search"}


def call(query: Any, tool: dict[str, Any] | None = None, call_id: str = "call_1") -> ToolCall:
    return ToolCall(call_id=call_id, arguments={"query": query}, tool=tool or WEB_SEARCH, include=frozenset())


async def test_a_search_sends_the_query_as_json_and_numbers_the_results(
    tool: WebSearch, ctx: ToolContext, queries: list[dict[str, Any]]
) -> None:
    out = await tool.run(call("python 3.13 release"), ctx)

    assert [q["params"] for q in queries] == [{"q": "python 3.13 release", "format": "json"}]
    assert not out.failed
    urls = [
        "https://www.python.org/",
        "https://docs.python.org/3/whatsnew/3.13.html",
        "https://en.wikipedia.org/wiki/Python_(programming_language)",
    ]
    assert out.item == {
        "action": {
            "type": "search",
            "query": "python 3.13 release",
            "queries": ["python 3.13 release"],
            "sources": [{"type": "url", "url": u} for u in urls],
        }
    }
    validate("WebSearchToolCall", {"id": "ws_1", "type": "web_search_call", "status": "completed", **out.item})
    assert [(s["number"], s["url"]) for s in out.sources] == list(enumerate(urls, 1))
    assert out.sources[0]["title"] == "Welcome to Python.org"
    assert "[1] Welcome to Python.org — https://www.python.org/\nThe official home of the Python" in out.text
    assert "[3] Python (programming language) - Wikipedia — https://en.wikipedia.org/" in out.text
    assert "e.g. [1]" in out.text, "the model is told how to cite"
    assert "again" not in out.text and "magnet:" not in out.text, "duplicates and non-web links are dropped"


async def test_configured_searxng_options_and_credentials_reach_it(
    searxng: LoopbackServer, host: Host, ctx: ToolContext, queries: list[dict[str, Any]]
) -> None:
    settings = WebSearchSettings(
        url=searxng.url + "/",
        api_key="sk-search-secret",
        headers={"X-Proxy-Auth": "proxy-secret"},
        language="en",
        categories=["general", "news"],
        engines=["duckduckgo", "wikipedia"],
        time_range="month",
        safesearch=1,
    )
    tool = WebSearch(settings, host)
    location = {"type": "approximate", "country": "GB", "city": "London", "region": None, "timezone": None}
    await tool.run(call("weather", {"type": "web_search", "user_location": location}), ctx)

    (seen,) = queries
    assert seen["params"] == {
        "q": "weather",
        "format": "json",
        "language": "en-GB",
        "categories": "general,news",
        "engines": "duckduckgo,wikipedia",
        "time_range": "month",
        "safesearch": "1",
    }
    assert seen["headers"]["Authorization"] == "Bearer sk-search-secret"
    assert seen["headers"]["X-Proxy-Auth"] == "proxy-secret"

    raw = WebSearch(WebSearchSettings(url=searxng.url, api_key="k-raw-1", api_key_header="X-Api-Key"), host)
    await raw.run(call("x"), ctx)
    assert queries[-1]["headers"]["X-Api-Key"] == "k-raw-1" and "Authorization" not in queries[-1]["headers"]


async def test_credentials_in_the_url_are_sent_as_basic_auth(
    searxng: LoopbackServer, host: Host, ctx: ToolContext, queries: list[dict[str, Any]]
) -> None:
    url = searxng.url.replace("http://", "http://searx:p%40ss@")
    out = await WebSearch(WebSearchSettings(url=url), host).run(call("q"), ctx)
    assert not out.failed
    assert queries[0]["headers"]["Authorization"] == "Basic c2Vhcng6cEBzcw=="  # searx:p@ss


async def test_a_full_language_is_kept_and_no_language_sends_none(
    searxng: LoopbackServer, host: Host, ctx: ToolContext, queries: list[dict[str, Any]]
) -> None:
    located = {"type": "web_search", "user_location": {"type": "approximate", "country": "US"}}
    await WebSearch(WebSearchSettings(url=searxng.url, language="de-CH"), host).run(call("q", located), ctx)
    await WebSearch(WebSearchSettings(url=searxng.url), host).run(call("q", located), ctx)
    assert queries[0]["params"]["language"] == "de-CH"
    assert "language" not in queries[1]["params"], "a country alone says nothing of the language"


async def test_allowed_domains_narrow_the_query_and_the_results(
    tool: WebSearch, ctx: ToolContext, queries: list[dict[str, Any]]
) -> None:
    one = {"type": "web_search", "filters": {"allowed_domains": ["python.org"]}}
    out = await tool.run(call("release notes", one), ctx)
    assert queries[-1]["params"]["q"] == "release notes site:python.org"
    assert [s["url"] for s in out.sources] == [
        "https://www.python.org/",
        "https://docs.python.org/3/whatsnew/3.13.html",
    ]

    two = {"type": "web_search", "filters": {"allowed_domains": ["https://en.wikipedia.org/", "docs.python.org"]}}
    out = await tool.run(call("release notes", two), ctx)
    assert queries[-1]["params"]["q"] == "release notes (site:en.wikipedia.org OR site:docs.python.org)"
    assert [s["url"] for s in out.sources] == [
        "https://docs.python.org/3/whatsnew/3.13.html",
        "https://en.wikipedia.org/wiki/Python_(programming_language)",
    ]

    none_match = {"type": "web_search", "filters": {"allowed_domains": ["example.org"]}}
    out = await tool.run(call("release notes", none_match), ctx)
    assert not out.failed and out.sources == [] and "found no results" in out.text


async def test_max_results_and_an_empty_answer(
    searxng: LoopbackServer, host: Host, ctx: ToolContext, queries: list[dict[str, Any]]
) -> None:
    tool = WebSearch(WebSearchSettings(url=searxng.url, max_results=2), host)
    out = await tool.run(call("python"), ctx)
    assert [s["number"] for s in out.sources] == [1, 2]
    assert "[3]" not in out.text

    empty = await tool.run(call("empty"), ToolContext(None, "req-other", host.http))
    assert not empty.failed
    assert empty.text == 'The web search for "empty" found no results.'
    assert empty.item["action"]["sources"] == [] and empty.sources == []


async def test_search_context_size_scales_the_token_budget(
    searxng: LoopbackServer, host: Host, set_results: Callable[[list[tuple[str, str, str]]], None]
) -> None:
    set_results([(f"https://s{i}.example/", f"T{i}", "word " * 150) for i in range(10)])
    tool = WebSearch(WebSearchSettings(url=searxng.url, result_tokens=400, max_results=10), host)
    sizes = {}
    for size in ("low", "medium", "high"):
        entry = {"type": "web_search", "search_context_size": size}
        out = await tool.run(call("q", entry), ToolContext(None, size, host.http))
        sizes[size] = len(out.text)
    assert sizes["low"] <= 200 * 4 < sizes["medium"] <= 400 * 4 < sizes["high"] <= 800 * 4


async def test_numbers_run_on_across_the_searches_of_one_request(tool: WebSearch, host: Host) -> None:
    first_request = ToolContext(None, "req-a", host.http)
    first = await tool.run(call("one"), first_request)
    second = await tool.run(call("two", call_id="call_2"), first_request)
    assert [s["number"] for s in first.sources] == [1, 2, 3]
    assert [s["number"] for s in second.sources] == [4, 5, 6]
    assert "[4] Welcome to Python.org" in second.text and "e.g. [4]" in second.text
    other = await tool.run(call("one"), ToolContext(None, "req-b", host.http))
    assert [s["number"] for s in other.sources] == [1, 2, 3], "another request starts again at 1"


async def test_only_the_latest_requests_numbering_is_remembered(
    tool: WebSearch, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tool_module, "NUMBERING_MEMORY", 2)
    for request_id in ("req-1", "req-2", "req-3"):
        await tool.run(call("q"), ToolContext(None, request_id, host.http))
    again = await tool.run(call("q"), ToolContext(None, "req-1", host.http))
    latest = await tool.run(call("q"), ToolContext(None, "req-3", host.http))
    assert again.sources[0]["number"] == 1, "the oldest request was forgotten"
    assert latest.sources[0]["number"] == 4


async def test_the_query_is_trimmed_and_a_missing_one_is_a_failed_call(
    tool: WebSearch, ctx: ToolContext, queries: list[dict[str, Any]]
) -> None:
    for bad in ("", "   ", None, 42, ["x"]):
        out = await tool.run(call(bad), ctx)
        assert out.failed and '"query"' in out.text
    assert queries == [], "nothing is sent without a query"
    await tool.run(call("  two\n words  " + "x" * 2000), ctx)
    assert queries[0]["params"]["q"] == ("two words " + "x" * 2000)[:500]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("boom", "answered HTTP 500"),
        ("forbidden", "answered HTTP 403 (is the json format enabled? add json to search.formats"),
        ("notjson", "answered something that is not JSON"),
        ("nolist", "answered JSON without a results list"),
        ("slow", "did not answer within 0.3 s"),
    ],
)
async def test_a_backend_failure_is_a_failed_item_and_a_log_line(
    searxng: LoopbackServer, host: Host, ctx: ToolContext, caplog: pytest.LogCaptureFixture, query: str, reason: str
) -> None:
    tool = WebSearch(WebSearchSettings(url=searxng.url, timeout_seconds=0.3, api_key="sk-never-logged"), host)
    with caplog.at_level(logging.WARNING, logger="modelmux.tools.web_search"):
        out = await tool.run(call(query), ctx)
    assert out.failed
    assert out.text.startswith(f"The web search failed: searxng at {searxng.url} ") and reason in out.text
    assert "say the search failed" in out.text
    assert out.item["action"] == {"type": "search", "query": query, "queries": [query], "sources": []}
    assert out.sources == []
    (line,) = [r.getMessage() for r in caplog.records]
    assert "req-test" in line and reason in line
    assert "sk-never-logged" not in line + out.text


async def test_an_unreachable_backend_fails_without_showing_its_credentials(
    host: Host, ctx: ToolContext, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    settings = WebSearchSettings(url=f"http://searx:pw-in-url@127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="modelmux.tools.web_search"):
        out = await WebSearch(settings, host).run(call("x"), ctx)
    assert out.failed
    assert f"cannot reach searxng at http://127.0.0.1:{port}" in out.text
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "cannot reach searxng" in logged
    assert "pw-in-url" not in out.text + logged


async def test_doctor_says_whether_the_backend_answers(searxng: LoopbackServer, host: Host) -> None:
    (ok,) = await WebSearch(WebSearchSettings(url=searxng.url), host).doctor()
    assert ok.ok and ok.name == "search backend answers"
    assert ok.detail == f"searxng at {searxng.url} answered a test search with 4 results"

    port = free_port()
    (down,) = await WebSearch(WebSearchSettings(url=f"http://127.0.0.1:{port}"), host).doctor()
    assert not down.ok and "cannot reach searxng" in down.detail
    assert f"tools.web_search.url (now http://127.0.0.1:{port})" in down.fix


class TestWebSearchContract(ToolContract):
    """modelmux.testing's suite for every gateway tool, against the fake SearXNG (``tool_config``)."""

    @pytest.fixture
    def bad_entries(self) -> list[dict[str, Any]]:
        return [
            {"type": "web_search", "search_context_size": "huge"},
            {"type": "web_search", "filters": {"allowed_domains": "python.org"}},
            {"type": "web_search_preview", "user_location": "London"},
        ]
