"""What the model reads (the token budget) and what the client gets back (citations, checks of
the client's tool entry), without a backend."""

from __future__ import annotations

from typing import Any

import pytest
from modelmux_tool_web_search import SearchResult, WebSearch, WebSearchSettings
from modelmux_tool_web_search.results import CHARS_PER_TOKEN, citations, normalize_domain, render, select

from modelmux.plugin import Host, InvalidRequestError, ToolOutput
from modelmux.testing import validate


def results(n: int, words: int = 40) -> list[SearchResult]:
    return [
        SearchResult(f"https://site{i}.example/page", f"Title {i}", " ".join(f"word{i}-{w}" for w in range(words)))
        for i in range(1, n + 1)
    ]


def test_whole_results_while_they_fit() -> None:
    out = render("q", results(3, 5), budget_tokens=1000)
    assert [s["number"] for s in out.sources] == [1, 2, 3]
    assert out.text.count("…") == 0
    assert "[2] Title 2 — https://site2.example/page\nword2-0 word2-1 word2-2 word2-3 word2-4\n" in out.text


@pytest.mark.parametrize("budget", [100, 150, 200, 300, 500, 800])
def test_the_text_stays_within_the_budget(budget: int) -> None:
    out = render("a query", results(10), budget_tokens=budget)
    assert len(out.text) <= budget * CHARS_PER_TOKEN
    assert 1 <= len(out.sources) < 10
    numbers = [s["number"] for s in out.sources]
    assert numbers == list(range(1, len(numbers) + 1))
    for s in out.sources:
        assert f"[{s['number']}] {s['title']} — {s['url']}" in out.text
    assert f"[{len(numbers) + 1}]" not in out.text, "a result left out is not shown at all"


def test_the_last_result_that_fits_in_part_is_cut_at_a_word() -> None:
    out = render("q", results(4, 60), budget_tokens=300)
    last = out.text.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.endswith("…")
    assert last[:-1].split(" ")[-1].startswith(f"word{len(out.sources)}-"), "a whole word before the ellipsis"


def test_the_first_result_is_kept_even_when_the_budget_is_tiny() -> None:
    out = render("q", results(3, 500), budget_tokens=10)
    assert [s["number"] for s in out.sources] == [1]
    assert "[1] Title 1 — https://site1.example/page" in out.text


def test_long_titles_and_whitespace_are_tidied() -> None:
    messy = SearchResult("https://a.example/", "  A\n\ttitle " + "t" * 500, "line one\n\n   line two")
    out = render("q", [messy, SearchResult("https://b.example/", "", "")], budget_tokens=2000)
    assert "line one line two" in out.text
    assert out.sources[0]["title"].startswith("A title t") and len(out.sources[0]["title"]) <= 200
    assert out.sources[1]["title"] == "https://b.example/", "an untitled result is named by its URL"


def test_numbering_can_start_later() -> None:
    out = render("q", results(2), budget_tokens=1000, first=7)
    assert [s["number"] for s in out.sources] == [7, 8]
    assert "e.g. [7]" in out.text and "[7] Title 1" in out.text


def test_select_filters_domains_with_subdomains_and_drops_repeats() -> None:
    found = [
        SearchResult("https://docs.python.org/3/", "a", ""),
        SearchResult("https://python.org.evil.example/", "b", ""),
        SearchResult("https://notpython.org/", "c", ""),
        SearchResult("https://PYTHON.ORG/x", "d", ""),
        SearchResult("https://docs.python.org/3/", "a again", ""),
    ]
    assert [r.title for r in select(found, ["python.org"], 10)] == ["a", "d"]
    assert [r.title for r in select(found, [], 2)] == ["a", "b"]
    assert normalize_domain(" HTTPS://Docs.Python.org/3/ ") == "docs.python.org"


SOURCES = [
    {"number": 1, "url": "https://a.example/", "title": "A"},
    {"number": 2, "url": "https://b.example/", "title": "B"},
    {"number": 3, "url": "https://c.example/", "title": "C"},
]


def test_each_marker_gets_a_url_citation_over_its_own_span() -> None:
    text = "Python 3.13 is out [1]. It has a new REPL [2, 3]; see also [9] and [x]."
    got = citations(text, SOURCES)
    assert [(a["url"], text[a["start_index"] : a["end_index"]]) for a in got] == [
        ("https://a.example/", "[1]"),
        ("https://b.example/", "[2, 3]"),
        ("https://c.example/", "[2, 3]"),
    ]
    for annotation in got:
        validate("UrlCitationBody", annotation)
    assert got[0] == {
        "type": "url_citation",
        "start_index": 19,
        "end_index": 22,
        "url": "https://a.example/",
        "title": "A",
    }


def test_indices_count_characters_not_bytes() -> None:
    text = "Émile Zola était là [2]."
    (a,) = citations(text, SOURCES)
    assert text[a["start_index"] : a["end_index"]] == "[2]"


def test_annotate_uses_the_sources_of_every_search(host: Host) -> None:
    tool = WebSearch(WebSearchSettings(url="http://127.0.0.1:9"), host)
    first = ToolOutput(item={}, text="", sources=SOURCES[:2])
    second = ToolOutput(item={}, text="", sources=[{"number": 3, "url": "https://c.example/", "title": "C"}])
    failed = ToolOutput(item={}, text="failed", failed=True)
    got = tool.annotate("A [1], C [3].", [first, failed, second])
    assert [a["url"] for a in got] == ["https://a.example/", "https://c.example/"]
    assert tool.annotate("no markers", [first]) == []


def test_the_function_offered_to_the_model(host: Host) -> None:
    tool = WebSearch(WebSearchSettings(url="http://127.0.0.1:9"), host)
    fn = tool.function({"type": "web_search"})
    assert fn["name"] == "web_search"
    assert fn["parameters"]["required"] == ["query"] and fn["parameters"]["properties"]["query"]["type"] == "string"
    assert "[n]" in fn["description"]
    narrowed = tool.function({"type": "web_search", "filters": {"allowed_domains": ["python.org", "pypi.org"]}})
    assert "python.org, pypi.org" in narrowed["description"]
    assert WebSearch.type == "web_search" and WebSearch.item_type == "web_search_call"
    assert set(WebSearch.aliases) == {"web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}


def test_every_web_search_tool_type_of_the_spec_is_served() -> None:
    from modelmux.testing import spec

    schemas = spec()["components"]["schemas"]
    tools = (schemas["WebSearchTool"], schemas["WebSearchPreviewTool"])
    types = {t for tool in tools for t in tool["properties"]["type"]["enum"]}
    assert types == {WebSearch.type, *WebSearch.aliases}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"filters": "python.org"}, "filters must be an object"),
        ({"filters": {"allowed_domains": "python.org"}}, "allowed_domains must be a list"),
        ({"filters": {"allowed_domains": [1]}}, "allowed_domains must be a list"),
        ({"filters": {"allowed_domains": ["a b"]}}, "invalid domain 'a b'"),
        ({"filters": {"allowed_domains": [""]}}, "invalid domain ''"),
        ({"filters": {"allowed_domains": [f"d{i}.example" for i in range(101)]}}, "has 101 entries; at most 100"),
        ({"search_context_size": "huge"}, "search_context_size must be low, medium or high"),
        ({"user_location": "London"}, "user_location must be an object"),
        ({"user_location": {"type": "approximate", "country": "Britain"}}, "two-letter ISO country code"),
    ],
)
def test_a_malformed_tool_entry_is_a_400_naming_it(host: Host, entry: dict[str, Any], message: str) -> None:
    tool = WebSearch(WebSearchSettings(url="http://127.0.0.1:9"), host)
    with pytest.raises(InvalidRequestError) as caught:
        tool.check({"type": "web_search", **entry})
    assert caught.value.param == "tools" and message in caught.value.message
    assert caught.value.status_code == 400


def test_well_formed_tool_entries_pass(host: Host) -> None:
    tool = WebSearch(WebSearchSettings(url="http://127.0.0.1:9"), host)
    for entry in (
        {"type": "web_search"},
        {"type": "web_search", "filters": None, "user_location": None, "search_context_size": None},
        {"type": "web_search", "filters": {"allowed_domains": None}},
        {"type": "web_search_preview", "search_context_size": "high", "search_content_types": ["text"], "domains": []},
        {"type": "web_search", "user_location": {"type": "approximate", "country": "US", "city": None}},
        {"type": "web_search", "external_web_access": False},
    ):
        tool.check(entry)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "url"),
        ({"url": "127.0.0.1:8888"}, "must start with http:// or https://"),
        ({"url": "http://x", "backend": "google"}, "unknown search backend 'google'; this package has: searxng"),
        ({"url": "http://x", "max_results": 0}, "max_results"),
        ({"url": "http://x", "time_range": "decade"}, "time_range"),
        ({"url": "http://x", "language": "en; DROP"}, "a language code"),
        ({"url": "http://x", "colour": "blue"}, "colour"),
        ({"url": "http://u:p@x", "api_key": "k"}, "two Authorization headers"),
        ({"url": "http://x", "api_key": "k", "headers": {"authorization": "Basic x"}}, "two Authorization headers"),
    ],
)
def test_settings_refuse_what_cannot_work(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WebSearchSettings.model_validate(table)
