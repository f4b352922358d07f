"""The Files and Vector Stores endpoints, as ``ToolRoute``s the host serves (auth, body limits and
error bodies are the host's; every handler acts for ``ctx.key_id``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import quote

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from modelmux.plugin import InvalidRequestError, ToolContext, ToolRoute
from modelmux_tool_file_search.documents import supported, supported_types
from modelmux_tool_file_search.library import Embed, Library, owner_of
from modelmux_tool_file_search.requests import (
    SUPPORTED_PURPOSES,
    AddFile,
    CreateBatch,
    CreateStore,
    ModifyStore,
    Search,
    UpdateAttributes,
    choice_param,
    chunking_of,
    int_param,
    json_body,
    queries_of,
)

#: How soon the SDK's ``*_and_poll`` helpers ask again about a file still being indexed (header
#: ``openai-poll-after-ms``, which the official SDKs read; their default is a second).
POLL_AFTER_MS = 250

Handler = Callable[[Request, ToolContext], Awaitable[Response]]


def json_response(body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


class FileRoutes:
    def __init__(self, library: Library, embedding_model: str) -> None:
        self.library = library
        self.embedding_model = embedding_model

    def embed(self, ctx: ToolContext) -> Embed:
        async def embed(texts: Sequence[str]) -> list[list[float]]:
            return await ctx.embed(self.embedding_model, list(texts))

        return embed

    def routes(self) -> list[ToolRoute]:
        return [
            ToolRoute("/v1/files", {"GET": self.list_files, "POST": self.create_file}),
            ToolRoute("/v1/files/{file_id}", {"GET": self.get_file, "DELETE": self.delete_file}),
            ToolRoute("/v1/files/{file_id}/content", {"GET": self.file_content}),
            ToolRoute("/v1/vector_stores", {"GET": self.list_stores, "POST": self.create_store}),
            ToolRoute(
                "/v1/vector_stores/{vector_store_id}",
                {"GET": self.get_store, "POST": self.modify_store, "DELETE": self.delete_store},
            ),
            ToolRoute(
                "/v1/vector_stores/{vector_store_id}/files", {"GET": self.list_store_files, "POST": self.add_file}
            ),
            ToolRoute(
                "/v1/vector_stores/{vector_store_id}/files/{file_id}",
                {"GET": self.get_store_file, "POST": self.update_store_file, "DELETE": self.remove_store_file},
            ),
            ToolRoute("/v1/vector_stores/{vector_store_id}/files/{file_id}/content", {"GET": self.store_file_content}),
            ToolRoute("/v1/vector_stores/{vector_store_id}/search", {"POST": self.search}),
            ToolRoute("/v1/vector_stores/{vector_store_id}/file_batches", {"POST": self.create_batch}),
            ToolRoute("/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}", {"GET": self.get_batch}),
            ToolRoute(
                "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", {"POST": self.cancel_batch}
            ),
            ToolRoute(
                "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", {"GET": self.list_batch_files}
            ),
        ]

    # -- files -----------------------------------------------------------------------------
    async def create_file(self, request: Request, ctx: ToolContext) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise InvalidRequestError(
                "POST /v1/files takes multipart/form-data with 'file' and 'purpose'.", code="invalid_content_type"
            )
        limit = self.library.limits.max_file_bytes
        try:
            form = await request.form(max_files=1, max_fields=8)
        except Exception as exc:  # Starlette's MultiPartException and parser errors: the body is malformed
            raise InvalidRequestError(f"Could not read the multipart body: {exc}.", code="invalid_body") from exc
        try:
            unknown = sorted(set(form.keys()) - {"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"})
            if unknown:
                raise InvalidRequestError(
                    f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter"
                )
            purpose = form.get("purpose")
            if not isinstance(purpose, str) or not purpose:
                raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose")
            if purpose not in SUPPORTED_PURPOSES:
                raise InvalidRequestError(
                    f"Invalid 'purpose': {purpose!r}. This gateway stores files for file_search only: "
                    f"use one of {', '.join(SUPPORTED_PURPOSES)}.",
                    param="purpose",
                    code="invalid_value",
                )
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidRequestError("Missing required parameter: 'file' (a file part).", param="file")
            filename = (upload.filename or "").strip()
            if not filename:
                raise InvalidRequestError("The 'file' part has no filename.", param="file")
            if not supported(filename):
                raise InvalidRequestError(
                    f"File type of {filename!r} is not supported for file_search. Supported: {supported_types()}.",
                    param="file",
                    code="unsupported_file",
                )
            data = await upload.read(limit + 1)
            expires = _expires_seconds(form.get("expires_after[anchor]"), form.get("expires_after[seconds]"))
        finally:
            await form.close()
        created = await self.library.create_file(owner_of(ctx.key_id), filename, data, purpose, expires)
        return json_response(created)

    async def list_files(self, request: Request, ctx: ToolContext) -> Response:
        purpose = request.query_params.get("purpose")
        listed = await self.library.list_files(
            owner_of(ctx.key_id),
            purpose=purpose,
            limit=int_param(request, "limit", 10000, 1, 10000),
            order=choice_param(request, "order", ("asc", "desc"), "desc") or "desc",
            after=request.query_params.get("after"),
        )
        return json_response(listed)

    async def get_file(self, request: Request, ctx: ToolContext) -> Response:
        return json_response(await self.library.get_file(owner_of(ctx.key_id), request.path_params["file_id"]))

    async def delete_file(self, request: Request, ctx: ToolContext) -> Response:
        return json_response(await self.library.delete_file(owner_of(ctx.key_id), request.path_params["file_id"]))

    async def file_content(self, request: Request, ctx: ToolContext) -> Response:
        doc, data = await self.library.file_content(owner_of(ctx.key_id), request.path_params["file_id"])
        disposition = f"attachment; filename*=UTF-8''{quote(doc['filename'])}"
        return Response(data, media_type="application/octet-stream", headers={"content-disposition": disposition})

    # -- vector stores ---------------------------------------------------------------------
    async def create_store(self, request: Request, ctx: ToolContext) -> Response:
        body = await json_body(request, CreateStore)
        created = await self.library.create_store(
            owner_of(ctx.key_id),
            name=body.name,
            description=body.description,
            metadata=body.metadata,
            expires_days=body.expires_after.days if body.expires_after else None,
            file_ids=body.file_ids,
            chunking=chunking_of(body.chunking_strategy),
            embed=self.embed(ctx),
        )
        return json_response(created)

    async def list_stores(self, request: Request, ctx: ToolContext) -> Response:
        listed = await self.library.list_stores(owner_of(ctx.key_id), **_paging(request))
        return json_response(listed)

    async def get_store(self, request: Request, ctx: ToolContext) -> Response:
        store = await self.library.get_store(owner_of(ctx.key_id), request.path_params["vector_store_id"])
        return json_response(store)

    async def modify_store(self, request: Request, ctx: ToolContext) -> Response:
        body = await json_body(request, ModifyStore)
        changes: dict[str, Any] = {}
        for field in body.model_fields_set:
            changes[field] = getattr(body, field)
        if "expires_after" in changes and changes["expires_after"] is not None:
            changes["expires_after"] = changes["expires_after"].days
        store = await self.library.modify_store(owner_of(ctx.key_id), request.path_params["vector_store_id"], changes)
        return json_response(store)

    async def delete_store(self, request: Request, ctx: ToolContext) -> Response:
        deleted = await self.library.delete_store(owner_of(ctx.key_id), request.path_params["vector_store_id"])
        return json_response(deleted)

    # -- files of a store ------------------------------------------------------------------
    async def add_file(self, request: Request, ctx: ToolContext) -> Response:
        body = await json_body(request, AddFile)
        added = await self.library.add_file(
            owner_of(ctx.key_id),
            request.path_params["vector_store_id"],
            body.file_id,
            chunking_of(body.chunking_strategy),
            body.attributes,
            self.embed(ctx),
        )
        return json_response(added, _poll_headers(added))

    async def list_store_files(self, request: Request, ctx: ToolContext) -> Response:
        status = choice_param(request, "filter", ("in_progress", "completed", "failed", "cancelled"), None)
        listed = await self.library.list_store_files(
            owner_of(ctx.key_id), request.path_params["vector_store_id"], status=status, **_paging(request)
        )
        return json_response(listed)

    async def get_store_file(self, request: Request, ctx: ToolContext) -> Response:
        found = await self.library.get_store_file(
            owner_of(ctx.key_id), request.path_params["vector_store_id"], request.path_params["file_id"]
        )
        return json_response(found, _poll_headers(found))

    async def update_store_file(self, request: Request, ctx: ToolContext) -> Response:
        body = await json_body(request, UpdateAttributes)
        p = request.path_params
        updated = await self.library.update_store_file(
            owner_of(ctx.key_id), p["vector_store_id"], p["file_id"], body.attributes
        )
        return json_response(updated)

    async def store_file_content(self, request: Request, ctx: ToolContext) -> Response:
        p = request.path_params
        content = await self.library.store_file_content(owner_of(ctx.key_id), p["vector_store_id"], p["file_id"])
        return json_response(content)

    async def remove_store_file(self, request: Request, ctx: ToolContext) -> Response:
        removed = await self.library.remove_store_file(
            owner_of(ctx.key_id), request.path_params["vector_store_id"], request.path_params["file_id"]
        )
        return json_response(removed)

    # -- file batches ----------------------------------------------------------------------
    async def create_batch(self, request: Request, ctx: ToolContext) -> Response:
        body = await json_body(request, CreateBatch)
        if body.file_ids is None and body.files is None:
            raise InvalidRequestError("Missing required parameter: 'file_ids' (or 'files').", param="file_ids")
        shared = chunking_of(body.chunking_strategy)
        entries = [(file_id, shared, body.attributes) for file_id in body.file_ids or []]
        for i, entry in enumerate(body.files or []):
            chunking = (
                chunking_of(entry.chunking_strategy, f"files[{i}].chunking_strategy")
                if entry.chunking_strategy
                else shared
            )
            entries.append(
                (entry.file_id, chunking, entry.attributes if entry.attributes is not None else body.attributes)
            )
        batch = await self.library.create_batch(
            owner_of(ctx.key_id), request.path_params["vector_store_id"], entries, self.embed(ctx)
        )
        return json_response(batch, _poll_headers(batch))

    async def get_batch(self, request: Request, ctx: ToolContext) -> Response:
        p = request.path_params
        batch = await self.library.get_batch(owner_of(ctx.key_id), p["vector_store_id"], p["batch_id"])
        return json_response(batch, _poll_headers(batch))

    async def cancel_batch(self, request: Request, ctx: ToolContext) -> Response:
        p = request.path_params
        return json_response(await self.library.cancel_batch(owner_of(ctx.key_id), p["vector_store_id"], p["batch_id"]))

    async def list_batch_files(self, request: Request, ctx: ToolContext) -> Response:
        p = request.path_params
        status = choice_param(request, "filter", ("in_progress", "completed", "failed", "cancelled"), None)
        listed = await self.library.list_batch_files(
            owner_of(ctx.key_id), p["vector_store_id"], p["batch_id"], status=status, **_paging(request)
        )
        return json_response(listed)

    async def search(self, request: Request, ctx: ToolContext) -> Response:
        body = await json_body(request, Search)
        queries = queries_of(body.query)
        ranking = body.ranking_options
        results = await self.library.search(
            owner_of(ctx.key_id),
            [request.path_params["vector_store_id"]],
            queries,
            embed=self.embed(ctx),
            max_results=body.max_num_results,
            threshold=ranking.score_threshold if ranking else 0.0,
            filters=body.filters,
        )
        return json_response(
            {
                "object": "vector_store.search_results.page",
                "search_query": queries,
                "data": [
                    {
                        "file_id": r.file_id,
                        "filename": r.filename,
                        "score": r.score,
                        "attributes": r.attributes,
                        "content": [{"type": "text", "text": r.text}],
                    }
                    for r in results
                ],
                "has_more": False,
                "next_page": None,
            }
        )


def _paging(request: Request) -> dict[str, Any]:
    return {
        "limit": int_param(request, "limit", 20, 1, 100),
        "order": choice_param(request, "order", ("asc", "desc"), "desc") or "desc",
        "after": request.query_params.get("after"),
        "before": request.query_params.get("before"),
    }


def _poll_headers(obj: dict[str, Any]) -> dict[str, str] | None:
    """A file or batch still being indexed: ask again soon."""
    return {"openai-poll-after-ms": str(POLL_AFTER_MS)} if obj["status"] == "in_progress" else None


def _expires_seconds(anchor: Any, seconds: Any) -> int | None:
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequestError(
            "Invalid 'expires_after[anchor]': expected 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    try:
        value = int(str(seconds))
    except ValueError:
        value = 0
    if not 3600 <= value <= 2592000:
        raise InvalidRequestError(
            f"Invalid 'expires_after[seconds]': {seconds!r}. "
            "Expected an integer from 3600 (1 hour) to 2592000 (30 days).",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return value
