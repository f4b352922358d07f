"""The default index: one SQLite file (stdlib ``sqlite3``), vectors as float32 blobs.

Every statement runs on one dedicated thread that owns the connection, so the event loop never
waits on the disk and statements never interleave. WAL mode lets the worker processes of one
machine share the file (each its own connection; a writer waits up to ``busy_timeout``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from modelmux_tool_file_search.index import Index, Matrix, Vectors, build_matrix

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, id TEXT NOT NULL, scope TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS docs_by_scope ON docs (kind, scope, id);
CREATE TABLE IF NOT EXISTS contents (file_id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    store_id TEXT NOT NULL, file_id TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (store_id, file_id, seq)
);
-- Apart from the texts and clustered by key, so reading a store's vectors is one sequential scan.
CREATE TABLE IF NOT EXISTS vectors (
    store_id TEXT NOT NULL, file_id TEXT NOT NULL, seq INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (store_id, file_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (store_id TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""


class SqliteIndex(Index):
    describe = "sqlite"

    def __init__(self, path: Path, cache_bytes: int) -> None:
        super().__init__(cache_bytes)
        self.path = path
        self.describe = f"sqlite at {path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-search-sqlite")
        self._db: sqlite3.Connection | None = None
        self._pool.submit(self._open).result()

    def _open(self) -> None:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        self._db = db

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            raise RuntimeError("the file_search index is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, db)

    # -- documents -------------------------------------------------------------------------
    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = await self._run(
            lambda db: db.execute("SELECT doc FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        )
        return json.loads(row[0]) if row else None

    async def put(self, kind: str, doc_id: str, scope: str, doc: dict[str, Any]) -> None:
        text = json.dumps(doc)
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO docs (kind, id, scope, doc) VALUES (?, ?, ?, ?)", (kind, doc_id, scope, text)
            )
        )

    async def delete(self, kind: str, doc_id: str, scope: str) -> bool:
        cur = await self._run(lambda db: db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)))
        return cur.rowcount > 0

    async def scan(self, kind: str, scope: str) -> list[dict[str, Any]]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT doc FROM docs WHERE kind = ? AND scope = ? ORDER BY id", (kind, scope)
            ).fetchall()
        )
        return [json.loads(r[0]) for r in rows]

    async def count(self, kind: str, scope: str) -> int:
        row = await self._run(
            lambda db: db.execute("SELECT count(*) FROM docs WHERE kind = ? AND scope = ?", (kind, scope)).fetchone()
        )
        return int(row[0])

    # -- file bytes ------------------------------------------------------------------------
    async def put_content(self, file_id: str, data: bytes) -> None:
        await self._run(
            lambda db: db.execute("INSERT OR REPLACE INTO contents (file_id, data) VALUES (?, ?)", (file_id, data))
        )

    async def get_content(self, file_id: str) -> bytes | None:
        row = await self._run(
            lambda db: db.execute("SELECT data FROM contents WHERE file_id = ?", (file_id,)).fetchone()
        )
        return bytes(row[0]) if row else None

    async def delete_content(self, file_id: str) -> None:
        await self._run(lambda db: db.execute("DELETE FROM contents WHERE file_id = ?", (file_id,)))

    # -- chunks ----------------------------------------------------------------------------
    @staticmethod
    def _bump(db: sqlite3.Connection, store_id: str) -> int:
        row = db.execute(
            "INSERT INTO versions (store_id, version) VALUES (?, 1) "
            "ON CONFLICT (store_id) DO UPDATE SET version = version + 1 RETURNING version",
            (store_id,),
        ).fetchone()
        return int(row[0])

    async def _add_chunks(self, store_id: str, file_id: str, texts: list[str], vectors: Vectors) -> int:
        rows = [(store_id, file_id, i, text) for i, text in enumerate(texts)]
        blobs = [(store_id, file_id, i, vectors[i].tobytes()) for i in range(len(texts))]

        def write(db: sqlite3.Connection) -> int:
            with db:  # one transaction: a search sees all of the file's chunks or none
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM chunks WHERE store_id = ? AND file_id = ?", (store_id, file_id))
                db.execute("DELETE FROM vectors WHERE store_id = ? AND file_id = ?", (store_id, file_id))
                db.executemany("INSERT INTO chunks (store_id, file_id, seq, text) VALUES (?, ?, ?, ?)", rows)
                db.executemany("INSERT INTO vectors (store_id, file_id, seq, vector) VALUES (?, ?, ?, ?)", blobs)
                return self._bump(db, store_id)

        return await self._run(write)

    async def _delete_chunks(self, store_id: str, file_id: str | None) -> int:
        def write(db: sqlite3.Connection) -> int:
            with db:
                db.execute("BEGIN IMMEDIATE")
                if file_id is None:
                    db.execute("DELETE FROM chunks WHERE store_id = ?", (store_id,))
                    db.execute("DELETE FROM vectors WHERE store_id = ?", (store_id,))
                    db.execute("DELETE FROM versions WHERE store_id = ?", (store_id,))
                    return 0
                db.execute("DELETE FROM chunks WHERE store_id = ? AND file_id = ?", (store_id, file_id))
                db.execute("DELETE FROM vectors WHERE store_id = ? AND file_id = ?", (store_id, file_id))
                return self._bump(db, store_id)

        return await self._run(write)

    async def count_chunks(self, store_id: str) -> int:
        row = await self._run(
            lambda db: db.execute("SELECT count(*) FROM chunks WHERE store_id = ?", (store_id,)).fetchone()
        )
        return int(row[0])

    async def texts(self, store_id: str, keys: list[tuple[str, int]]) -> list[str | None]:
        def read(db: sqlite3.Connection) -> list[str | None]:
            found: list[str | None] = []
            for file_id, seq in keys:
                row = db.execute(
                    "SELECT text FROM chunks WHERE store_id = ? AND file_id = ? AND seq = ?", (store_id, file_id, seq)
                ).fetchone()
                found.append(row[0] if row else None)
            return found

        return await self._run(read)

    async def version(self, store_id: str) -> int:
        row = await self._run(
            lambda db: db.execute("SELECT version FROM versions WHERE store_id = ?", (store_id,)).fetchone()
        )
        return int(row[0]) if row else 0

    async def _load(self, store_id: str) -> Matrix:
        def read(db: sqlite3.Connection) -> Matrix:
            with db:  # the version and the rows of one snapshot
                db.execute("BEGIN")
                row = db.execute("SELECT version FROM versions WHERE store_id = ?", (store_id,)).fetchone()
                rows = db.execute(
                    "SELECT file_id, seq, vector FROM vectors WHERE store_id = ? ORDER BY file_id, seq", (store_id,)
                ).fetchall()
            return build_matrix(int(row[0]) if row else 0, rows)

        return await self._run(read)

    async def ping(self) -> bool:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())
        return True

    async def aclose(self) -> None:
        await super().aclose()
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, db.close)
        self._pool.shutdown(wait=False)
