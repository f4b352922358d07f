"""The tools contract suite of ``modelmux.testing``, run against the file_search tool with a
store holding one indexed file (the suite's fake embeddings)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from modelmux_tool_file_search.documents import Chunking
from modelmux_tool_file_search.tool import FileSearch

from modelmux.plugin import InvalidRequestError, ToolContext
from modelmux.testing import ToolContract


class TestFileSearchContract(ToolContract):
    @pytest.fixture
    def tool_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"type": "file_search", "embedding_model": "embed", "path": str(tmp_path / "contract.sqlite3")}

    @pytest.fixture
    async def tool_entry(self, tool: FileSearch, tool_context: ToolContext) -> dict[str, Any]:
        library = tool.library
        assert library is not None
        owner = tool_context.key_id or "anonymous"

        async def embed(texts: Any) -> list[list[float]]:
            return await tool_context.embed("embed", list(texts))

        file = await library.create_file(owner, "guide.md", b"The contract test reads this guide.", "assistants", None)
        store = await library.create_store(
            owner,
            name="contract",
            description=None,
            metadata=None,
            expires_days=None,
            file_ids=[file["id"]],
            chunking=Chunking(),
            embed=embed,
        )
        for _ in range(200):
            if (await library.get_store(owner, store["id"]))["status"] == "completed":
                break
            await asyncio.sleep(0.01)
        return {"type": "file_search", "vector_store_ids": [store["id"]], "max_num_results": 3}

    @pytest.fixture
    def tool_arguments(self) -> dict[str, Any]:
        return {"query": "contract test"}

    @pytest.fixture
    def bad_entries(self) -> list[dict[str, Any]]:
        return [
            {"type": "file_search"},
            {"type": "file_search", "vector_store_ids": []},
            {"type": "file_search", "vector_store_ids": "vs_1"},
            {"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 0},
            {"type": "file_search", "vector_store_ids": ["vs_1"], "ranking_options": {"score_threshold": 2}},
            {"type": "file_search", "vector_store_ids": ["vs_1"], "filters": {"type": "like", "key": "a", "value": 1}},
            {"type": "file_search", "vector_store_ids": ["vs_1"], "unknown": True},
        ]

    async def test_the_store_is_found_and_cited(
        self, tool: FileSearch, tool_entry: dict[str, Any], tool_context: ToolContext
    ) -> None:
        output = await self._run(tool, tool_entry, {"query": "contract guide"}, tool_context, frozenset())
        assert not output.failed and output.item["queries"] == ["contract guide"]
        assert [r["filename"] for r in output.item["results"]] == ["guide.md"]
        assert "guide.md" in output.text and "contract test reads this guide" in output.text
        answer = "It is in the guide [guide.md]."
        assert tool.annotate(answer, [output]) == [
            {
                "type": "file_citation",
                "file_id": output.sources[0]["file_id"],
                "filename": "guide.md",
                "index": len(answer) - 1,
            }
        ]

    async def test_a_store_of_another_key_is_a_failed_call(
        self, tool: FileSearch, tool_entry: dict[str, Any], tool_context: ToolContext, tool_embed: Any
    ) -> None:
        stranger = ToolContext("key-stranger", "req-2", tool_context.http, tool_embed)
        output = await self._run(tool, tool_entry, {"query": "guide"}, stranger, frozenset())
        assert output.failed and "No such vector store" in output.text and output.item["results"] is None

    async def test_a_list_of_queries_is_understood_too(
        self, tool: FileSearch, tool_entry: dict[str, Any], tool_context: ToolContext
    ) -> None:
        output = await self._run(tool, tool_entry, {"queries": ["contract", " ", "guide"]}, tool_context, frozenset())
        assert not output.failed and output.item["queries"] == ["contract", "guide"]

    async def test_prepare_refuses_a_store_this_key_does_not_have(
        self, tool: FileSearch, tool_entry: dict[str, Any], tool_context: ToolContext, tool_embed: Any
    ) -> None:
        await tool.prepare(tool_entry, tool_context)  # the key's own store: fine
        stranger = ToolContext("key-stranger", "req-3", tool_context.http, tool_embed)
        with pytest.raises(InvalidRequestError) as err:
            await tool.prepare(tool_entry, stranger)
        assert err.value.param == "tools" and "No such vector store" in err.value.message
