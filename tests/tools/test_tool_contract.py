"""The tool contract suite (``modelmux.testing.ToolContract``) on test tools: one that keeps the
contract passes, and each way of breaking it is caught by the check meant for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from modelmux.plugin import Host, InvalidRequestError, Tool, ToolCall, ToolContext, ToolOutput, ToolRoute, ToolSettings
from modelmux.testing import ToolContract, fake_embed

SOURCE = "https://example.com/docs"


class Lookup(Tool):
    """Search the notes by meaning."""

    type = "web_search"

    def check(self, tool: Mapping[str, Any]) -> None:
        if "search_context_size" in tool and tool["search_context_size"] not in ("low", "medium", "high"):
            raise InvalidRequestError("tools: search_context_size must be low, medium or high", param="tools")

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        query = call.arguments.get("query")
        if not isinstance(query, str) or not query:
            return ToolOutput(item={"action": {"type": "search", "query": ""}}, text="No query was given.", failed=True)
        (vector,) = await ctx.embed("embed", [query])
        sources = [{"type": "url", "url": SOURCE}] if "web_search_call.action.sources" in call.include else []
        action = {"type": "search", "query": query, **({"sources": sources} if sources else {})}
        return ToolOutput(
            item={"action": action}, text=f"{query}: see {SOURCE} ({len(vector)})", sources=[{"url": SOURCE}]
        )

    def annotate(self, text: str, outputs: Sequence[ToolOutput]) -> list[dict[str, Any]]:
        start = text.find(SOURCE)
        if start < 0 or not outputs:
            return []
        return [
            {
                "type": "url_citation",
                "url": SOURCE,
                "title": "Docs",
                "start_index": start,
                "end_index": start + len(SOURCE),
            }
        ]

    def routes(self) -> list[ToolRoute]:
        return [ToolRoute("/v1/lookup", {"GET": self.listing})]

    async def listing(self, request: Any, ctx: ToolContext) -> Any:
        raise NotImplementedError


@pytest.fixture
async def lookup(host: Host) -> AsyncIterator[Tool]:
    tool = Lookup(ToolSettings(), host)
    await tool.start()
    yield tool
    await tool.aclose()


class TestLookupKeepsTheContract(ToolContract):
    @pytest.fixture
    def tool(self, lookup: Tool) -> Tool:
        return lookup

    @pytest.fixture
    def bad_entries(self) -> list[dict[str, Any]]:
        return [{"type": "web_search", "search_context_size": "huge"}]


async def test_fake_embed_is_deterministic_and_close_for_shared_words() -> None:
    a, b, c, again = await fake_embed(
        "m", ["cats purr softly", "cats purr loudly", "stock prices fell", "cats purr softly"]
    )

    def cos(x: list[float], y: list[float]) -> float:
        return sum(i * j for i, j in zip(x, y, strict=True))

    assert a == again and len(a) == 64 and abs(cos(a, a) - 1) < 1e-9
    assert cos(a, b) > cos(a, c)
    assert (await fake_embed("m", [""]))[0][0] == 1.0


# -- each break is caught ---------------------------------------------------------------------


class Broken(Lookup):
    """Broken on purpose."""


async def _contract_fails(tool: Tool, check: str, **fixtures: Any) -> str:
    """The failure message of ``ToolContract.check`` on ``tool``."""
    suite = ToolContract()
    method = getattr(suite, check)
    args = {"tool": tool, **fixtures}
    with pytest.raises(AssertionError) as failed:
        result = method(**{k: v for k, v in args.items() if k in method.__code__.co_varnames})
        if hasattr(result, "__await__"):
            await result
    return str(failed.value)


async def test_the_suite_catches_a_bad_function_an_item_with_an_id_and_an_empty_text(
    host: Host, tool_context: ToolContext
) -> None:
    class BadName(Broken):
        def function(self, tool: Mapping[str, Any]) -> dict[str, Any]:
            return {"name": "web search!", "description": "x", "parameters": {"type": "object", "properties": {}}}

    class SetsId(Broken):
        async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
            return ToolOutput(item={"id": "mine", "action": {"type": "search"}}, text="x")

    class Silent(Broken):
        async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
            return ToolOutput(item={"action": {"type": "search"}}, text="")

    class NotAnItem(Broken):
        async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
            return ToolOutput(item={"action": {"type": "lookup"}}, text="x")

    entry, args = {"type": "web_search"}, {"query": "q"}
    common = {"tool_entry": entry, "tool_arguments": args, "tool_context": tool_context}
    assert "web search!" in await _contract_fails(
        BadName(ToolSettings(), host), "test_function_is_a_valid_json_schema_function", **common
    )
    assert "host's to set" in await _contract_fails(
        SetsId(ToolSettings(), host), "test_run_gives_text_and_a_serialisable_item", **common
    )
    assert "needs a text" in await _contract_fails(
        Silent(ToolSettings(), host), "test_run_gives_text_and_a_serialisable_item", **common
    )
    assert "WebSearchToolCall" in await _contract_fails(
        NotAnItem(ToolSettings(), host), "test_run_gives_text_and_a_serialisable_item", **common
    )
