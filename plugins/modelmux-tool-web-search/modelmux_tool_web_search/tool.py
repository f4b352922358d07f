"""The ``web_search`` tool: the model searches, the gateway asks the configured backend.

The client writes ``{"type": "web_search"}`` (or a preview/dated alias) in a Responses request's
``tools``; the model is offered a ``web_search(query)`` function; each call becomes a
``web_search_call`` output item (``action``: the search, its query and sources) and the model
reads the numbered results, which it cites as ``[n]``; the answer gets a ``url_citation``
annotation per marker.

Numbers run on across the searches of one request (the second search's results start after
the first's), so a ``[n]`` in the answer names one source even after several searches.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from modelmux.plugin import Check, Host, InvalidRequestError, Tool, ToolCall, ToolContext, ToolOutput
from modelmux_tool_web_search.backends import SearchError, SearchQuery, make_backend
from modelmux_tool_web_search.results import citations, normalize_domain, render, select
from modelmux_tool_web_search.settings import WebSearchSettings

log = logging.getLogger("modelmux.tools.web_search")

#: ``search_context_size`` -> the share of ``result_tokens`` a search's results may take.
CONTEXT_SIZES = {"low": 0.5, "medium": 1.0, "high": 2.0}
#: Longest query sent to the backend, in characters (the rest is dropped).
MAX_QUERY_CHARS = 500
#: Most entries of ``filters.allowed_domains`` (OpenAI's own limit).
MAX_ALLOWED_DOMAINS = 100
#: Requests whose next citation number is remembered (the oldest is forgotten first).
NUMBERING_MEMORY = 4096

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What to search the web for."}},
    "required": ["query"],
    "additionalProperties": False,
}


class WebSearch(Tool):
    """Search the web for current information. Returns numbered results; cite them in the answer as [n]."""

    type: ClassVar[str] = "web_search"
    aliases: ClassVar[tuple[str, ...]] = (
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
    )
    item_type: ClassVar[str] = "web_search_call"

    settings: WebSearchSettings

    def __init__(self, settings: WebSearchSettings, host: Host) -> None:
        super().__init__(settings, host)
        self.backend = make_backend(settings)
        self._next_number: OrderedDict[str, int] = OrderedDict()

    def check(self, tool: Mapping[str, Any]) -> None:
        _allowed_domains(tool)
        size = tool.get("search_context_size")
        if size is not None and size not in CONTEXT_SIZES:
            raise InvalidRequestError(
                f"tools: search_context_size must be low, medium or high (got {size!r})", param="tools"
            )
        location = tool.get("user_location")
        if location is not None:
            if not isinstance(location, Mapping):
                raise InvalidRequestError("tools: user_location must be an object or null", param="tools")
            country = location.get("country")
            if country is not None and not (isinstance(country, str) and len(country) == 2 and country.isalpha()):
                raise InvalidRequestError(
                    f"tools: user_location.country must be a two-letter ISO country code (got {country!r})",
                    param="tools",
                )

    def function(self, tool: Mapping[str, Any]) -> dict[str, Any]:
        description = "Search the web for current information. Returns numbered results; cite them as [n]."
        domains = _allowed_domains(tool)
        if domains:
            description += f" Only these sites are searched: {', '.join(domains)}."
        return {"name": "web_search", "description": description, "parameters": PARAMETERS}

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        raw = call.arguments.get("query")
        query = " ".join(raw.split())[:MAX_QUERY_CHARS] if isinstance(raw, str) else ""
        if not query:
            return ToolOutput(
                item=_item(query, []),
                text='web_search needs a "query" argument: the text to search the web for.',
                failed=True,
            )
        domains = _allowed_domains(call.tool)
        location = call.tool.get("user_location")
        country = location.get("country") if isinstance(location, Mapping) else None
        search = SearchQuery(query, tuple(domains), country if isinstance(country, str) else None)
        try:
            found = await self.backend.search(ctx.http, search)
        except SearchError as exc:
            return self._failed(query, str(exc), ctx)
        except Exception as exc:  # a backend's bug must not fail the client's request
            return self._failed(query, f"{self.backend.name} failed ({type(exc).__name__})", ctx)
        chosen = select(found, domains, self.settings.max_results)
        size = call.tool.get("search_context_size")
        budget = int(self.settings.result_tokens * CONTEXT_SIZES.get(size if isinstance(size, str) else "", 1.0))
        # No await from here on: concurrent calls of one request cannot take the same numbers.
        first = self._next_number.get(ctx.request_id, 1)
        rendered = render(query, chosen, budget, first)
        self._remember(ctx.request_id, first + len(rendered.sources))
        sources = [{"type": "url", "url": s["url"]} for s in rendered.sources]
        return ToolOutput(item=_item(query, sources), text=rendered.text, sources=rendered.sources)

    def annotate(self, text: str, outputs: Sequence[ToolOutput]) -> list[dict[str, Any]]:
        return citations(text, (source for output in outputs for source in output.sources))

    async def doctor(self) -> list[Check]:
        name = "search backend answers"
        try:
            detail = await self.backend.check(self.host.http)
        except SearchError as exc:
            return [
                Check(
                    name,
                    False,
                    str(exc),
                    fix=f"start the backend or fix tools.web_search.url (now {self.backend.shown_url})",
                )
            ]
        return [Check(name, True, detail)]

    def _remember(self, request_id: str, next_number: int) -> None:
        """The first citation number of this request's next search (the oldest request forgotten first)."""
        if not request_id:
            return
        self._next_number.pop(request_id, None)
        self._next_number[request_id] = next_number
        while len(self._next_number) > NUMBERING_MEMORY:
            self._next_number.popitem(last=False)

    def _failed(self, query: str, reason: str, ctx: ToolContext) -> ToolOutput:
        log.warning("web_search failed (request %s): %s", ctx.request_id, reason)
        return ToolOutput(
            item=_item(query, []),
            text=f"The web search failed: {reason}. Answer without search results, and say the search failed.",
            failed=True,
        )


def _item(query: str, sources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"action": {"type": "search", "query": query, "queries": [query] if query else [], "sources": sources}}


def _allowed_domains(tool: Mapping[str, Any]) -> list[str]:
    """The client's ``filters.allowed_domains``, normalized; a 400 for a malformed one."""
    filters = tool.get("filters")
    if filters is None:
        return []
    if not isinstance(filters, Mapping):
        raise InvalidRequestError("tools: filters must be an object or null", param="tools")
    domains = filters.get("allowed_domains")
    if domains is None:
        return []
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise InvalidRequestError("tools: filters.allowed_domains must be a list of domain names", param="tools")
    if len(domains) > MAX_ALLOWED_DOMAINS:
        raise InvalidRequestError(
            f"tools: filters.allowed_domains has {len(domains)} entries; at most {MAX_ALLOWED_DOMAINS}",
            param="tools",
        )
    out = []
    for domain in domains:
        name = normalize_domain(domain)
        if not name or " " in name:
            raise InvalidRequestError(f"tools: filters.allowed_domains has an invalid domain {domain!r}", param="tools")
        out.append(name)
    return out
