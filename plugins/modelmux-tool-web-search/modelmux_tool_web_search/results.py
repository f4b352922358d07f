"""What the model reads of a search, and the citations found in its answer.

Pure functions, the same for every backend:

- ``select``: keep http(s) results in the allowed domains, once per URL, at most ``max_results``.
- ``render``: the numbered text the model reads, cut to a token budget. Tokens are estimated
  at about four characters each (no tokenizer: the budget bounds cost, it need not be exact).
- ``citations``: a ``url_citation`` annotation for each ``[n]`` marker of the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from modelmux_tool_web_search.backends import SearchResult

#: Characters per token of the budget's estimate.
CHARS_PER_TOKEN = 4
#: Longest title and snippet kept of one result, in characters, before any budget.
MAX_TITLE_CHARS = 200
MAX_SNIPPET_CHARS = 1200
#: A result cut to fit the budget keeps at least this much of its snippet, or is left out.
MIN_SNIPPET_CHARS = 60
#: A citation marker: [3] or [3, 4] (the numbers of the results, as the model was told to write them).
CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


def normalize_domain(domain: str) -> str:
    """``https://Example.com/x`` -> ``example.com``: what ``filters.allowed_domains`` entries mean."""
    value = domain.strip().lower()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    return value.split("/", 1)[0].strip(".")


def in_domains(url: str, domains: Sequence[str]) -> bool:
    """The URL's host is one of ``domains`` or a subdomain of one (an empty list allows any)."""
    if not domains:
        return True
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def select(results: Iterable[SearchResult], domains: Sequence[str], max_results: int) -> list[SearchResult]:
    out: list[SearchResult] = []
    seen: set[str] = set()
    for result in results:
        if result.url in seen or not in_domains(result.url, domains):
            continue
        seen.add(result.url)
        out.append(result)
        if len(out) >= max_results:
            break
    return out


def _clean(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending at a word boundary with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    if " " in head[limit // 2 :]:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    #: The results the text shows, with their numbers: ``{"number", "url", "title"}``.
    sources: list[dict[str, Any]]


def header(query: str, first: int) -> str:
    return (
        f'Web search results for "{query}". Cite a result by writing its number in square brackets, '
        f"e.g. [{first}], right after the sentence it supports.\n"
    )


def render(query: str, results: Sequence[SearchResult], budget_tokens: int, first: int = 1) -> Rendered:
    """Numbered results (``[first]``, ``[first + 1]``, ...) within ``budget_tokens``.

    Results come whole while they fit; the first that does not is kept with its snippet cut to
    what is left (if at least ``MIN_SNIPPET_CHARS`` of it fits), and the rest are left out. The
    first result is always kept (its snippet possibly cut to nothing), so a search that found
    something always gives the model a source.
    """
    top = header(query, first)
    budget = budget_tokens * CHARS_PER_TOKEN - len(top)
    blocks: list[str] = []
    sources: list[dict[str, Any]] = []
    for result in results:
        number = first + len(sources)
        title = _clean(result.title, MAX_TITLE_CHARS) or result.url
        head = f"\n[{number}] {title} — {result.url}\n"
        snippet = _clean(result.snippet, MAX_SNIPPET_CHARS)
        room = budget - len(head)
        if len(snippet) > room:
            if sources and room < MIN_SNIPPET_CHARS:
                break
            snippet = _cut(snippet, max(0, room))
        block = head + (snippet + "\n" if snippet else "")
        blocks.append(block)
        sources.append({"number": number, "url": result.url, "title": title})
        budget -= len(block)
        if budget <= 0:
            break
    if not sources:
        return Rendered(f'The web search for "{query}" found no results.', [])
    return Rendered(top + "".join(blocks), sources)


def citations(text: str, sources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``url_citation`` annotations for the ``[n]`` markers in ``text`` whose number is a source's.

    Each covers its marker: ``text[start_index:end_index]`` is ``[n]`` (or ``[n, m]``, one
    annotation per number). Numbers that name no source are left alone.
    """
    by_number: dict[int, dict[str, Any]] = {}
    for source in sources:
        number = source.get("number")
        if isinstance(number, int):
            by_number.setdefault(number, source)
    annotations: list[dict[str, Any]] = []
    for match in CITATION.finditer(text):
        for part in match.group(1).split(","):
            cited = by_number.get(int(part))
            if cited is not None:
                annotations.append(
                    {
                        "type": "url_citation",
                        "start_index": match.start(),
                        "end_index": match.end(),
                        "url": cited["url"],
                        "title": cited["title"],
                    }
                )
    return annotations
