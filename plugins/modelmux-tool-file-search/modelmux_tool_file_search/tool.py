"""The ``file_search`` tool: the model searches the vector stores the client named."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelmux.plugin import (
    Check,
    Host,
    InvalidRequestError,
    ModelMuxError,
    NotFoundError,
    Tool,
    ToolCall,
    ToolContext,
    ToolOutput,
    ToolRoute,
)
from modelmux_tool_file_search.filters import check_filters
from modelmux_tool_file_search.index import Index
from modelmux_tool_file_search.library import Library, Limits, Result, default_path, owner_of
from modelmux_tool_file_search.settings import FileSearchSettings

#: Characters of chunk text the model reads per result at most (a chunk is about 3,200 with auto chunking).
MAX_RESULT_CHARS = 6000

# One ``query`` string, as the host's in-progress item shows it (``queries: [query]``); a model
# that sends ``queries`` (a list, as OpenAI's own file search does internally) is understood too.
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "What to search the files for."}},
    "required": ["query"],
    "additionalProperties": False,
}


class FileSearch(Tool):
    """Search the files the user uploaded (their vector stores) for passages relevant to the question."""

    type = "file_search"
    settings: FileSearchSettings

    def __init__(self, settings: FileSearchSettings, host: Host) -> None:
        super().__init__(settings, host)
        self.library: Library | None = None

    def make_index(self) -> Index:
        s = self.settings
        if s.index == "redis":
            from modelmux_tool_file_search.redis_index import RedisIndex

            return RedisIndex(s.redis_url, s.key_prefix, s.cache_bytes)
        from modelmux_tool_file_search.sqlite_index import SqliteIndex

        return SqliteIndex(Path(s.path or default_path()).expanduser(), s.cache_bytes)

    async def start(self) -> None:
        s = self.settings
        limits = Limits(
            max_file_bytes=s.max_file_bytes,
            max_files_per_key=s.max_files_per_key,
            max_stores_per_key=s.max_stores_per_key,
            max_chunks_per_store=s.max_chunks_per_store,
            embed_batch_size=s.embed_batch_size,
            ingest_concurrency=s.ingest_concurrency,
            ingest_timeout_seconds=s.ingest_timeout_seconds,
        )
        self.library = Library(self.make_index(), limits)

    async def aclose(self) -> None:
        if self.library is not None:
            await self.library.aclose()

    def _library(self) -> Library:
        if self.library is None:
            raise ModelMuxError("the file_search tool has not started")
        return self.library

    def routes(self) -> Sequence[ToolRoute]:
        from modelmux_tool_file_search.routes import FileRoutes

        return FileRoutes(self._library(), self.settings.embedding_model).routes()

    # -- the tool entry --------------------------------------------------------------------
    def check(self, tool: Mapping[str, Any]) -> None:
        ids = tool.get("vector_store_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise InvalidRequestError(
                "Invalid 'tools': a file_search tool needs 'vector_store_ids', a non-empty list of vector store ids.",
                param="tools",
                code="invalid_value",
            )
        known = {"type", "vector_store_ids", "max_num_results", "ranking_options", "filters"}
        extra = sorted(set(tool) - known)
        if extra:
            raise InvalidRequestError(
                f"Unknown parameter in the file_search tool: '{extra[0]}'.", param="tools", code="unknown_parameter"
            )
        limit = tool.get("max_num_results")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 50):
            raise InvalidRequestError(
                f"Invalid 'max_num_results' of the file_search tool: {limit!r}. Expected an integer from 1 to 50.",
                param="tools",
                code="invalid_value",
            )
        ranking = tool.get("ranking_options")
        if ranking is not None:
            threshold = ranking.get("score_threshold") if isinstance(ranking, dict) else "?"
            if threshold is not None and (
                not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 <= threshold <= 1
            ):
                raise InvalidRequestError(
                    f"Invalid 'ranking_options.score_threshold' of the file_search tool: {threshold!r}. "
                    "Expected a number from 0 to 1.",
                    param="tools",
                    code="invalid_value",
                )
        if tool.get("filters") is not None:
            try:
                check_filters(tool["filters"], "filters")
            except InvalidRequestError as exc:
                raise InvalidRequestError(f"file_search tool: {exc.message}", param="tools", code=exc.code) from exc

    async def prepare(self, tool: Mapping[str, Any], ctx: ToolContext) -> None:
        """Before the first model call: every named store exists for this key and has not expired
        (a 400 naming ``tools``, as no model time was spent yet)."""
        try:
            await self._library().searchable(owner_of(ctx.key_id), list(tool.get("vector_store_ids") or []), "tools")
        except NotFoundError as exc:
            raise InvalidRequestError(exc.message, param="tools", code="invalid_value") from exc

    def function(self, tool: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": "file_search",
            "description": (
                "Search the user's uploaded files for passages relevant to the question. Answer from the "
                "passages and cite each file you use by its file name in brackets, e.g. [report.pdf]."
            ),
            "parameters": PARAMETERS,
        }

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        queries = _queries(call.arguments)
        if not queries:
            return ToolOutput(
                item={"queries": [], "results": None},
                text="file_search needs 'query': what to search the files for.",
                failed=True,
            )
        tool = call.tool
        ranking = tool.get("ranking_options") or {}
        model = self.settings.embedding_model

        async def embed(texts: Sequence[str]) -> list[list[float]]:
            return await ctx.embed(model, list(texts))

        try:
            results = await self._library().search(
                owner_of(ctx.key_id),
                list(tool.get("vector_store_ids") or []),
                queries,
                embed=embed,
                max_results=int(tool.get("max_num_results") or self.settings.max_num_results),
                threshold=float(ranking.get("score_threshold") or 0.0),
                filters=tool.get("filters"),
                param="tools",
            )
        except ModelMuxError as exc:
            return ToolOutput(
                item={"queries": queries, "results": None}, text=f"file_search failed: {exc.message}", failed=True
            )
        return ToolOutput(
            item={"queries": queries, "results": [_result_item(r) for r in results]},
            text=_for_model(queries, results),
            sources=[{"file_id": r.file_id, "filename": r.filename} for r in results],
        )

    def annotate(self, text: str, outputs: Sequence[ToolOutput]) -> list[dict[str, Any]]:
        return file_citations(text, [s for out in outputs for s in out.sources])

    async def doctor(self) -> list[Check]:
        try:
            index = self._library().index
            ok = await index.ping()
            return [Check("file_search index", ok, index.describe, "" if ok else "check tools.file_search.index")]
        except ModelMuxError as exc:
            return [Check("file_search index", False, exc.message, "check tools.file_search.index", topic="config")]


def _queries(arguments: Mapping[str, Any]) -> list[str]:
    """The model's queries: ``query`` (a string), or ``queries`` (a list, or one string)."""
    raw = arguments.get("query", arguments.get("queries"))
    items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return [q.strip() for q in items if isinstance(q, str) and q.strip()][:5]


def _result_item(result: Result) -> dict[str, Any]:
    return {
        "file_id": result.file_id,
        "filename": result.filename,
        "score": result.score,
        "text": result.text,
        "attributes": result.attributes or {},
    }


def _for_model(queries: list[str], results: list[Result]) -> str:
    asked = ", ".join(f'"{q}"' for q in queries)
    if not results:
        return f"No passages of the user's files matched {asked}."
    parts = [f"{len(results)} passages of the user's files for {asked}, best first. Cite a file as [file name]."]
    for i, r in enumerate(results, 1):
        text = r.text if len(r.text) <= MAX_RESULT_CHARS else r.text[:MAX_RESULT_CHARS] + " ..."
        parts.append(f"[{i}] file: {r.filename} (score {r.score:.2f})\n{text}")
    return "\n\n".join(parts)


def file_citations(text: str, sources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A ``file_citation`` for each place the answer names a file it was given (``[name]`` or the
    bare name), at the character just after the mention, in text order."""
    files: dict[str, str] = {}
    for source in sources:
        name, file_id = source.get("filename"), source.get("file_id")
        if isinstance(name, str) and name and isinstance(file_id, str):
            files.setdefault(name, file_id)
    found: list[dict[str, Any]] = []
    taken: set[int] = set()
    for name in sorted(files, key=len, reverse=True):  # "a.md" inside "data.md" goes to the longer name
        for match in re.finditer(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-]|\.\w)", text):
            span = set(range(match.start(), match.end()))
            if span & taken:
                continue
            taken |= span
            end = match.end() + (1 if match.end() < len(text) and text[match.end()] == "]" else 0)
            found.append({"type": "file_citation", "file_id": files[name], "filename": name, "index": end})
    found.sort(key=lambda a: a["index"])
    return found
