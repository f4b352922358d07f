"""Files and vector stores of every client key: the rules of the OpenAI Files and Vector Stores
APIs over an ``Index`` (what the HTTP routes and the tool both call).

Every file and store belongs to the key that made it (``owner``, the client key's id): another
key is answered 404, as if it did not exist. Adding a file to a store answers at once with
status ``in_progress``; a background task extracts, chunks and embeds it, then marks it
``completed`` or ``failed`` with ``last_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger

from modelmux.plugin import InvalidRequestError, ModelMuxError, NotFoundError
from modelmux_tool_file_search.documents import Chunking, UnsupportedFile, chunk_text, extract_text
from modelmux_tool_file_search.filters import matches
from modelmux_tool_file_search.index import Index, unit_rows

#: ``texts -> vectors`` through the gateway's own embeddings (``ToolContext.embed`` of the configured model).
Embed = Callable[[Sequence[str]], Awaitable[list[list[float]]]]

FILE, STORE, VSFILE, BATCH = "file", "store", "vsfile", "batch"
ANONYMOUS = "anonymous"
DAY = 86400
#: How often ``last_active_at`` is written on searches (each write is a round trip).
ACTIVE_RESOLUTION = 60


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int
    max_files_per_key: int
    max_stores_per_key: int
    max_chunks_per_store: int
    embed_batch_size: int
    ingest_concurrency: int
    ingest_timeout_seconds: float


@dataclass(frozen=True, slots=True)
class Result:
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any] | None


def new_id(prefix: str) -> str:
    """Ids that sort by creation (milliseconds, then random): listing and cursors follow the id."""
    return f"{prefix}{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def owner_of(key_id: str | None) -> str:
    return key_id or ANONYMOUS


def page(
    items: list[dict[str, Any]], *, limit: int, order: str, after: str | None, before: str | None
) -> dict[str, Any]:
    """A list page as OpenAI returns it; ``items`` ordered by id (= creation), cursors are ids."""
    if order == "desc":
        items = items[::-1]
        if after:
            items = [i for i in items if i["id"] < after]
        if before:
            items = [i for i in items if i["id"] > before]
    else:
        if after:
            items = [i for i in items if i["id"] > after]
        if before:
            items = [i for i in items if i["id"] < before]
    if before and not after:  # the page just before the cursor
        data, has_more = items[-limit:], len(items) > limit
    else:
        data, has_more = items[:limit], len(items) > limit
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


class Library:
    def __init__(self, index: Index, limits: Limits) -> None:
        self.index = index
        self.limits = limits
        self._tasks: set[asyncio.Task[None]] = set()
        self._ingest_slots = asyncio.Semaphore(limits.ingest_concurrency)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self.index.aclose()

    # -- files -----------------------------------------------------------------------------
    async def create_file(
        self, owner: str, filename: str, data: bytes, purpose: str, expires_seconds: int | None
    ) -> dict[str, Any]:
        if len(data) > self.limits.max_file_bytes:
            raise InvalidRequestError(
                f"File {filename!r} is larger than the limit of {self.limits.max_file_bytes} bytes "
                "(tools.file_search.max_file_bytes).",
                param="file",
                code="file_too_large",
            )
        if await self.index.count(FILE, owner) >= self.limits.max_files_per_key:
            raise InvalidRequestError(
                f"This key already has {self.limits.max_files_per_key} files, the limit "
                "(tools.file_search.max_files_per_key). Delete files you no longer need.",
                param="file",
                code="too_many_files",
            )
        now = int(time.time())
        doc: dict[str, Any] = {
            "id": new_id("file-"),
            "object": "file",
            "bytes": len(data),
            "created_at": now,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "_owner": owner,
        }
        if expires_seconds is not None:
            doc["expires_at"] = now + expires_seconds
        await self.index.put_content(doc["id"], data)
        await self.index.put(FILE, doc["id"], owner, doc)
        return public(doc)

    async def _file(self, owner: str, file_id: str) -> dict[str, Any]:
        doc = await self.index.get(FILE, file_id)
        if doc is None or doc.get("_owner") != owner:
            raise NotFoundError(f"No such File object: {file_id}", param="file_id")
        expires = doc.get("expires_at")
        if expires is not None and expires <= time.time():
            await self._drop_file(owner, file_id)
            raise NotFoundError(f"No such File object: {file_id} (it expired)", param="file_id")
        return doc

    async def get_file(self, owner: str, file_id: str) -> dict[str, Any]:
        return public(await self._file(owner, file_id))

    async def file_content(self, owner: str, file_id: str) -> tuple[dict[str, Any], bytes]:
        doc = await self._file(owner, file_id)
        data = await self.index.get_content(file_id)
        if data is None:
            raise NotFoundError(f"No such File object: {file_id}", param="file_id")
        return public(doc), data

    async def list_files(
        self, owner: str, *, purpose: str | None, limit: int, order: str, after: str | None
    ) -> dict[str, Any]:
        now = time.time()
        docs = [
            public(d)
            for d in await self.index.scan(FILE, owner)
            if (purpose is None or d["purpose"] == purpose) and d.get("expires_at", now + 1) > now
        ]
        return page(docs, limit=limit, order=order, after=after, before=None)

    async def delete_file(self, owner: str, file_id: str) -> dict[str, Any]:
        await self._file(owner, file_id)
        await self._drop_file(owner, file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    async def _drop_file(self, owner: str, file_id: str) -> None:
        # A deleted file leaves every store of its key too: search never cites a file that is gone.
        for store in await self.index.scan(STORE, owner):
            if await self.index.get(VSFILE, f"{store['id']}/{file_id}") is not None:
                await self._detach(store["id"], file_id)
        await self.index.delete(FILE, file_id, owner)
        await self.index.delete_content(file_id)

    # -- vector stores ---------------------------------------------------------------------
    async def create_store(
        self,
        owner: str,
        *,
        name: str | None,
        description: str | None,
        metadata: dict[str, str] | None,
        expires_days: int | None,
        file_ids: list[str],
        chunking: Chunking,
        embed: Embed,
    ) -> dict[str, Any]:
        if await self.index.count(STORE, owner) >= self.limits.max_stores_per_key:
            raise InvalidRequestError(
                f"This key already has {self.limits.max_stores_per_key} vector stores, the limit "
                "(tools.file_search.max_stores_per_key). Delete stores you no longer need.",
                code="too_many_vector_stores",
            )
        files = [
            await self._file(owner, f) for f in dict.fromkeys(file_ids)
        ]  # every id checked before anything is made
        now = int(time.time())
        doc: dict[str, Any] = {
            "id": new_id("vs_"),
            "object": "vector_store",
            "created_at": now,
            "name": name or "",
            "metadata": metadata or {},
            "last_active_at": now,
            "_owner": owner,
        }
        if description is not None:
            doc["description"] = description
        if expires_days is not None:
            doc["expires_after"] = {"anchor": "last_active_at", "days": expires_days}
        await self.index.put(STORE, doc["id"], owner, doc)
        for file in files:
            await self._attach(doc, file, chunking, None, embed)
        return await self._store_view(doc)

    async def _store(self, owner: str, store_id: str, param: str = "vector_store_id") -> dict[str, Any]:
        doc = await self.index.get(STORE, store_id)
        if doc is None or doc.get("_owner") != owner:
            raise NotFoundError(f"No such vector store: {store_id}", param=param)
        return doc

    @staticmethod
    def _expires_at(doc: dict[str, Any]) -> int | None:
        after = doc.get("expires_after")
        return int(doc["last_active_at"]) + int(after["days"]) * DAY if after else None

    async def _store_view(self, doc: dict[str, Any]) -> dict[str, Any]:
        counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
        usage = 0
        for vsfile in await self.index.scan(VSFILE, doc["id"]):
            view = self._vsfile_view(vsfile)
            counts[view["status"]] += 1
            counts["total"] += 1
            usage += view["usage_bytes"]
        expires_at = self._expires_at(doc)
        if expires_at is not None and expires_at <= time.time():
            status = "expired"
        else:
            status = "in_progress" if counts["in_progress"] else "completed"
        view = public(doc)
        view.update(status=status, file_counts=counts, usage_bytes=usage, expires_at=expires_at)
        return view

    async def get_store(self, owner: str, store_id: str) -> dict[str, Any]:
        return await self._store_view(await self._store(owner, store_id))

    async def list_stores(
        self, owner: str, *, limit: int, order: str, after: str | None, before: str | None
    ) -> dict[str, Any]:
        listed = page(await self.index.scan(STORE, owner), limit=limit, order=order, after=after, before=before)
        listed["data"] = [await self._store_view(d) for d in listed["data"]]
        return listed

    async def modify_store(self, owner: str, store_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        doc = await self._store(owner, store_id)
        if "name" in changes:
            doc["name"] = changes["name"] or ""
        if "metadata" in changes:
            doc["metadata"] = changes["metadata"] or {}
        if "expires_after" in changes:
            days = changes["expires_after"]
            if days is None:
                doc.pop("expires_after", None)
            else:
                doc["expires_after"] = {"anchor": "last_active_at", "days": days}
        doc["last_active_at"] = int(time.time())
        await self.index.put(STORE, store_id, owner, doc)
        return await self._store_view(doc)

    async def delete_store(self, owner: str, store_id: str) -> dict[str, Any]:
        await self._store(owner, store_id)
        for vsfile in await self.index.scan(VSFILE, store_id):
            await self.index.delete(VSFILE, f"{store_id}/{vsfile['id']}", store_id)
        for batch in await self.index.scan(BATCH, store_id):
            await self.index.delete(BATCH, batch["id"], store_id)
        await self.index.delete_chunks(store_id)
        await self.index.delete(STORE, store_id, owner)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    # -- files of a store ------------------------------------------------------------------
    def _vsfile_view(self, doc: dict[str, Any]) -> dict[str, Any]:
        view = public(doc)
        if (
            view["status"] == "in_progress"
            and time.time() - doc.get("_started", 0) > self.limits.ingest_timeout_seconds
        ):
            # The process that was indexing it stopped (a restart, a crash): it will never finish.
            view["status"] = "failed"
            view["last_error"] = {
                "code": "server_error",
                "message": "Indexing did not finish (the gateway restarted while it ran?). Add the file again.",
            }
        return view

    async def add_file(
        self,
        owner: str,
        store_id: str,
        file_id: str,
        chunking: Chunking,
        attributes: dict[str, Any] | None,
        embed: Embed,
    ) -> dict[str, Any]:
        store = await self._store(owner, store_id)
        file = await self._file(owner, file_id)
        return await self._attach(store, file, chunking, attributes, embed)

    async def _attach(
        self,
        store: dict[str, Any],
        file: dict[str, Any],
        chunking: Chunking,
        attributes: dict[str, Any] | None,
        embed: Embed,
        batch_id: str | None = None,
    ) -> dict[str, Any]:
        store_id, file_id = store["id"], file["id"]
        doc: dict[str, Any] = {
            "id": file_id,
            "object": "vector_store.file",
            "usage_bytes": 0,
            "created_at": int(time.time()),
            "vector_store_id": store_id,
            "status": "in_progress",
            "last_error": None,
            "chunking_strategy": chunking.as_response(),
            "attributes": attributes,
            "_filename": file["filename"],
            "_started": time.time(),
            "_run": secrets.token_hex(8),
        }
        if batch_id is not None:
            doc["_batch"] = batch_id
        await self.index.put(VSFILE, f"{store_id}/{file_id}", store_id, doc)
        task = asyncio.create_task(self._ingest(doc, chunking, embed), name=f"file_search ingest {file_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return self._vsfile_view(doc)

    async def _ingest(self, doc: dict[str, Any], chunking: Chunking, embed: Embed) -> None:
        store_id, file_id = doc["vector_store_id"], doc["id"]
        try:
            async with self._ingest_slots:
                chunks, vectors = await self._embed_file(store_id, file_id, doc["_filename"], chunking, embed)
                if not await self._still(doc):
                    return
                await self.index.add_chunks(store_id, file_id, chunks, vectors)
                if not await self._still(doc):  # removed meanwhile: take its chunks out again
                    gone = await self.index.get(STORE, store_id) is None  # the whole store: its version too
                    await self.index.delete_chunks(store_id, None if gone else file_id)
                    return
            usage = sum(len(c.encode()) for c in chunks) + int(vectors.nbytes)
            await self._finish(doc, status="completed", usage_bytes=usage)
        except UnsupportedFile as exc:
            await self._finish(doc, status="failed", last_error={"code": exc.code, "message": str(exc)})
        except ModelMuxError as exc:
            await self._finish(doc, status="failed", last_error={"code": "server_error", "message": exc.message})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.opt(exception=exc).error("file_search: indexing {} into {} failed", file_id, store_id)
            await self._finish(
                doc, status="failed", last_error={"code": "server_error", "message": f"{type(exc).__name__}: {exc}"}
            )

    async def _embed_file(
        self, store_id: str, file_id: str, filename: str, chunking: Chunking, embed: Embed
    ) -> tuple[list[str], Any]:
        data = await self.index.get_content(file_id)
        if data is None:
            raise UnsupportedFile(f"File {file_id} was deleted before it was indexed.", code="invalid_file")
        text = await asyncio.to_thread(extract_text, filename, data)
        chunks = chunk_text(text, chunking)
        held = await self.index.count_chunks(store_id)
        if held + len(chunks) > self.limits.max_chunks_per_store:
            raise UnsupportedFile(
                f"File {filename!r} makes {len(chunks)} chunks and the store already holds {held}: over the limit of "
                f"{self.limits.max_chunks_per_store} chunks per store (tools.file_search.max_chunks_per_store).",
                code="invalid_file",
            )
        size = self.limits.embed_batch_size
        vectors: list[list[float]] = []
        for at in range(0, len(chunks), size):
            batch = chunks[at : at + size]
            got = await embedded(embed, batch, f"indexing {filename!r}")
            if len(got) != len(batch):
                raise ModelMuxError(f"the embeddings model answered {len(got)} vectors for {len(batch)} chunks")
            vectors.extend(got)
        return chunks, unit_rows(vectors)

    async def _still(self, doc: dict[str, Any]) -> bool:
        """Is this run still the file's current one (not removed, not re-added)?"""
        current = await self.index.get(VSFILE, f"{doc['vector_store_id']}/{doc['id']}")
        return current is not None and current.get("_run") == doc["_run"]

    async def _finish(self, doc: dict[str, Any], **changes: Any) -> None:
        key = f"{doc['vector_store_id']}/{doc['id']}"
        current = await self.index.get(VSFILE, key)  # attributes may have changed while it was indexed
        if current is not None and current.get("_run") == doc["_run"]:
            current.update(changes)
            await self.index.put(VSFILE, key, doc["vector_store_id"], current)

    async def get_store_file(self, owner: str, store_id: str, file_id: str) -> dict[str, Any]:
        await self._store(owner, store_id)
        doc = await self.index.get(VSFILE, f"{store_id}/{file_id}")
        if doc is None:
            raise NotFoundError(f"No file {file_id} in vector store {store_id}", param="file_id")
        return self._vsfile_view(doc)

    async def update_store_file(
        self, owner: str, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> dict[str, Any]:
        await self.get_store_file(owner, store_id, file_id)
        doc = await self.index.get(VSFILE, f"{store_id}/{file_id}")
        if doc is None:
            raise NotFoundError(f"No file {file_id} in vector store {store_id}", param="file_id")
        doc["attributes"] = attributes
        await self.index.put(VSFILE, f"{store_id}/{file_id}", store_id, doc)
        return self._vsfile_view(doc)

    async def store_file_content(self, owner: str, store_id: str, file_id: str) -> dict[str, Any]:
        """The text the file was indexed from (HTML without its markup)."""
        await self.get_store_file(owner, store_id, file_id)
        file = await self._file(owner, file_id)
        data = await self.index.get_content(file_id) or b""
        try:
            text = await asyncio.to_thread(extract_text, file["filename"], data)
        except UnsupportedFile:
            text = ""
        return {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": text}] if text else [],
            "has_more": False,
            "next_page": None,
        }

    async def list_store_files(
        self,
        owner: str,
        store_id: str,
        *,
        status: str | None,
        limit: int,
        order: str,
        after: str | None,
        before: str | None,
    ) -> dict[str, Any]:
        await self._store(owner, store_id)
        views = [self._vsfile_view(d) for d in await self.index.scan(VSFILE, store_id)]
        views = [v for v in views if status is None or v["status"] == status]
        return page(views, limit=limit, order=order, after=after, before=before)

    async def remove_store_file(self, owner: str, store_id: str, file_id: str) -> dict[str, Any]:
        await self.get_store_file(owner, store_id, file_id)
        await self._detach(store_id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def _detach(self, store_id: str, file_id: str) -> None:
        await self.index.delete(VSFILE, f"{store_id}/{file_id}", store_id)
        await self.index.delete_chunks(store_id, file_id)

    # -- file batches ----------------------------------------------------------------------
    async def create_batch(
        self,
        owner: str,
        store_id: str,
        entries: list[tuple[str, Chunking, dict[str, Any] | None]],
        embed: Embed,
    ) -> dict[str, Any]:
        """Add several files at once (``entries``: file id, chunking, attributes); each file is
        indexed as ``add_file`` does, and the batch reports their counts."""
        store = await self._store(owner, store_id)
        files = {file_id: await self._file(owner, file_id) for file_id, _, _ in entries}  # all checked first
        doc: dict[str, Any] = {
            "id": new_id("vsfb_"),
            "object": "vector_store.files_batch",
            "created_at": int(time.time()),
            "vector_store_id": store_id,
            "_files": list(files),
            "_cancelled": False,
        }
        await self.index.put(BATCH, doc["id"], store_id, doc)
        for file_id, chunking, attributes in entries:
            await self._attach(store, files[file_id], chunking, attributes, embed, batch_id=doc["id"])
        return await self._batch_view(doc)

    async def _batch(self, owner: str, store_id: str, batch_id: str) -> dict[str, Any]:
        await self._store(owner, store_id)
        doc = await self.index.get(BATCH, batch_id)
        if doc is None or doc["vector_store_id"] != store_id:
            raise NotFoundError(f"No file batch {batch_id} in vector store {store_id}", param="batch_id")
        return doc

    async def _batch_files(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for file_id in doc["_files"]:
            vsfile = await self.index.get(VSFILE, f"{doc['vector_store_id']}/{file_id}")
            if vsfile is not None and vsfile.get("_batch") == doc["id"]:
                found.append(vsfile)
        return sorted(found, key=lambda v: v["id"])

    async def _batch_view(self, doc: dict[str, Any]) -> dict[str, Any]:
        counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
        for vsfile in await self._batch_files(doc):
            counts[self._vsfile_view(vsfile)["status"]] += 1
            counts["total"] += 1
        if doc["_cancelled"]:
            status = "cancelled"
        elif counts["in_progress"]:
            status = "in_progress"
        elif counts["total"] and counts["failed"] == counts["total"]:
            status = "failed"
        else:
            status = "completed"
        return {**public(doc), "status": status, "file_counts": counts}

    async def get_batch(self, owner: str, store_id: str, batch_id: str) -> dict[str, Any]:
        return await self._batch_view(await self._batch(owner, store_id, batch_id))

    async def cancel_batch(self, owner: str, store_id: str, batch_id: str) -> dict[str, Any]:
        """Files of the batch still being indexed stop (``cancelled``); finished ones stay."""
        doc = await self._batch(owner, store_id, batch_id)
        for vsfile in await self._batch_files(doc):
            if vsfile["status"] == "in_progress":
                # A new run id: the indexing task sees it is no longer current and writes nothing.
                vsfile.update(status="cancelled", _run=secrets.token_hex(8))
                await self.index.put(VSFILE, f"{store_id}/{vsfile['id']}", store_id, vsfile)
                await self.index.delete_chunks(store_id, vsfile["id"])
        doc["_cancelled"] = True
        await self.index.put(BATCH, batch_id, store_id, doc)
        return await self._batch_view(doc)

    async def list_batch_files(
        self,
        owner: str,
        store_id: str,
        batch_id: str,
        *,
        status: str | None,
        limit: int,
        order: str,
        after: str | None,
        before: str | None,
    ) -> dict[str, Any]:
        doc = await self._batch(owner, store_id, batch_id)
        views = [self._vsfile_view(v) for v in await self._batch_files(doc)]
        views = [v for v in views if status is None or v["status"] == status]
        return page(views, limit=limit, order=order, after=after, before=before)

    # -- search ----------------------------------------------------------------------------
    async def searchable(self, owner: str, store_ids: Sequence[str], param: str) -> list[dict[str, Any]]:
        """The stores, each checked: this key's, not expired (404 / 400 naming ``param``)."""
        stores = []
        for store_id in dict.fromkeys(store_ids):
            doc = await self._store(owner, store_id, param)
            expires_at = self._expires_at(doc)
            if expires_at is not None and expires_at <= time.time():
                raise InvalidRequestError(
                    f"Vector store {store_id} has expired.", param=param, code="vector_store_expired"
                )
            stores.append(doc)
        return stores

    async def search(
        self,
        owner: str,
        store_ids: Sequence[str],
        queries: list[str],
        *,
        embed: Embed,
        max_results: int,
        threshold: float = 0.0,
        filters: dict[str, Any] | None = None,
        param: str = "vector_store_id",
    ) -> list[Result]:
        stores = await self.searchable(owner, store_ids, param)
        # Only completed files are searched; filters narrow them by their attributes.
        allowed: dict[str, set[str]] = {}
        names: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {}
        for store in stores:
            allowed[store["id"]] = set()
            for vsfile in await self.index.scan(VSFILE, store["id"]):
                if vsfile["status"] == "completed" and (filters is None or matches(filters, vsfile.get("attributes"))):
                    allowed[store["id"]].add(vsfile["id"])
                    names[(store["id"], vsfile["id"])] = (vsfile.get("_filename", ""), vsfile.get("attributes"))
        if not any(allowed.values()):
            return []
        query_vectors = unit_rows(await embedded(embed, queries, "the search"))
        try:
            hits = await self.index.search([s["id"] for s in stores], query_vectors, max_results, allowed, threshold)
        except ValueError as exc:
            raise InvalidRequestError(str(exc), param=param, code="embedding_mismatch") from exc
        results: list[Result] = []
        by_store: dict[str, list[int]] = {}
        for i, hit in enumerate(hits):
            by_store.setdefault(hit.store_id, []).append(i)
        texts: dict[int, str | None] = {}
        for store_id, rows in by_store.items():
            found = await self.index.texts(store_id, [(hits[i].file_id, hits[i].seq) for i in rows])
            texts.update(zip(rows, found, strict=True))
        for i, hit in enumerate(hits):
            text = texts.get(i)
            if text is None:
                continue  # removed since the vectors were read
            filename, attributes = names.get((hit.store_id, hit.file_id), ("", None))
            results.append(Result(hit.file_id, filename, round(hit.score, 6), text, attributes))
        await self._touch(owner, stores)
        return results

    async def _touch(self, owner: str, stores: list[dict[str, Any]]) -> None:
        now = int(time.time())
        for doc in stores:
            if now - int(doc.get("last_active_at", 0)) >= ACTIVE_RESOLUTION:
                current = await self.index.get(STORE, doc["id"])  # the latest, not the one read for the search
                if current is not None:
                    current["last_active_at"] = now
                    await self.index.put(STORE, doc["id"], owner, current)


async def embedded(embed: Embed, texts: Sequence[str], what: str) -> list[list[float]]:
    """``embed(texts)``, its failure saying that the embeddings model of the setting failed."""
    try:
        return await embed(texts)
    except ModelMuxError as exc:
        exc.message = f"{what}: the embeddings model (tools.file_search.embedding_model) failed: {exc.message}"
        raise


def default_path() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "modelmux", "file_search.sqlite3")
