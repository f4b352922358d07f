"""Where files, vector stores and chunks live: the ``Index`` interface, and the scoring every
backend shares.

A backend stores three things: JSON documents (files, vector stores, the files of a store) by
kind and id, each listed under a scope (the owner's key id, or the store's id); the bytes of
uploaded files; and chunks (text plus a unit float32 vector) per (store, file). Search is brute
force: the store's vectors as one numpy matrix, one matrix product per query. The matrix is
kept in memory between searches and re-read only when the store's version (bumped by every
change to its chunks, in the backend itself, so every worker and replica sees it) moved on.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]
else:
    Vectors = Any  # numpy is imported when the tool starts, not at discovery


@dataclass(frozen=True, slots=True)
class Matrix:
    """All the chunk vectors of one store: row i is chunk ``seqs[i]`` of ``file_ids[files[i]]``."""

    version: int
    file_ids: list[str]
    files: Any  # npt.NDArray[np.int32]: an index into file_ids per row
    seqs: Any  # npt.NDArray[np.int32]
    vectors: Any  # Vectors (rows, dims), unit length

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.files.nbytes + self.seqs.nbytes)

    @property
    def dims(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0


@dataclass(frozen=True, slots=True)
class Hit:
    store_id: str
    file_id: str
    seq: int
    score: float


def unit_rows(vectors: Any) -> Vectors:
    """``vectors`` (a list of lists or an array) as float32 rows of length 1 (zero rows stay zero)."""
    import numpy as np

    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError("embeddings must be a list of vectors of one length")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: Vectors = array / norms
    return result


def empty_matrix(version: int) -> Matrix:
    import numpy as np

    return Matrix(version, [], np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 0), np.float32))


def build_matrix(version: int, rows: list[tuple[str, int, bytes]]) -> Matrix:
    """A matrix from (file_id, seq, float32 blob) rows; every blob must have the same length."""
    import numpy as np

    if not rows:
        return empty_matrix(version)
    file_ids: list[str] = []
    where: dict[str, int] = {}
    files = np.empty(len(rows), np.int32)
    seqs = np.empty(len(rows), np.int32)
    for i, (file_id, seq, _) in enumerate(rows):
        at = where.get(file_id)
        if at is None:
            at = where[file_id] = len(file_ids)
            file_ids.append(file_id)
        files[i] = at
        seqs[i] = seq
    width = len(rows[0][2])
    if any(len(blob) != width for _, _, blob in rows):
        raise ValueError("the store holds vectors of different lengths (was embedding_model changed?)")
    vectors = np.frombuffer(b"".join(blob for _, _, blob in rows), dtype=np.float32).reshape(len(rows), width // 4)
    return Matrix(version, file_ids, files, seqs, vectors)


def with_file(matrix: Matrix, version: int, file_id: str, vectors: Vectors | None) -> Matrix:
    """``matrix`` at ``version``: the rows of ``file_id`` replaced by ``vectors`` (None: removed)."""
    import numpy as np

    keep = np.ones(len(matrix.seqs), dtype=bool)
    if file_id in matrix.file_ids:
        keep = matrix.files != matrix.file_ids.index(file_id)
    file_ids = list(matrix.file_ids)
    files, seqs, rows = matrix.files[keep], matrix.seqs[keep], matrix.vectors[keep]
    if vectors is not None and len(vectors):
        if rows.size and rows.shape[1] != vectors.shape[1]:
            raise ValueError("the store holds vectors of different lengths (was embedding_model changed?)")
        if file_id not in file_ids:
            file_ids.append(file_id)
        at = file_ids.index(file_id)
        files = np.concatenate([files, np.full(len(vectors), at, np.int32)])
        seqs = np.concatenate([seqs, np.arange(len(vectors), dtype=np.int32)])
        rows = np.concatenate([rows, vectors]) if rows.size else np.asarray(vectors, np.float32)
    return Matrix(version, file_ids, files, seqs, rows)


def top_hits(
    store_id: str, matrix: Matrix, queries: Vectors, k: int, allowed: set[str] | None, threshold: float
) -> list[Hit]:
    """The ``k`` best chunks of one store for the queries (a chunk's score is its best cosine over
    the queries, clamped to [0, 1]), only of ``allowed`` files when given, at least ``threshold``."""
    import numpy as np

    if not len(matrix.seqs) or k <= 0:
        return []
    scores = (matrix.vectors @ queries.T).max(axis=1)
    if allowed is not None:
        keep = np.fromiter((f in allowed for f in matrix.file_ids), dtype=bool, count=len(matrix.file_ids))
        scores = np.where(keep[matrix.files], scores, -np.inf)
    scores = np.clip(scores, 0.0, 1.0, where=np.isfinite(scores), out=scores)
    if k < len(scores):
        candidates = np.argpartition(-scores, k - 1)[:k]
    else:
        candidates = np.arange(len(scores))
    ordered = candidates[np.argsort(-scores[candidates], kind="stable")]
    hits = []
    for row in ordered:
        score = float(scores[row])
        if not np.isfinite(score) or score < threshold:
            break
        hits.append(Hit(store_id, matrix.file_ids[matrix.files[row]], int(matrix.seqs[row]), score))
    return hits


class Index(ABC):
    """Storage of the file_search plugin. Every method is safe to call from several tasks at once."""

    #: What ``modelmux doctor`` and the logs call it.
    describe: str = ""

    def __init__(self, cache_bytes: int) -> None:
        self._cache: OrderedDict[str, Matrix] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._loading: dict[str, asyncio.Future[Matrix]] = {}

    # -- documents -------------------------------------------------------------------------
    @abstractmethod
    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def put(self, kind: str, doc_id: str, scope: str, doc: dict[str, Any]) -> None:
        """Create or replace the document; it is listed under ``scope``."""

    @abstractmethod
    async def delete(self, kind: str, doc_id: str, scope: str) -> bool: ...

    @abstractmethod
    async def scan(self, kind: str, scope: str) -> list[dict[str, Any]]:
        """Every document of ``kind`` under ``scope``, ordered by id."""

    @abstractmethod
    async def count(self, kind: str, scope: str) -> int: ...

    # -- file bytes ------------------------------------------------------------------------
    @abstractmethod
    async def put_content(self, file_id: str, data: bytes) -> None: ...

    @abstractmethod
    async def get_content(self, file_id: str) -> bytes | None: ...

    @abstractmethod
    async def delete_content(self, file_id: str) -> None: ...

    # -- chunks ----------------------------------------------------------------------------
    async def add_chunks(self, store_id: str, file_id: str, texts: list[str], vectors: Vectors) -> None:
        """Replace the chunks of ``file_id`` in ``store_id`` with these (unit float32 rows)."""
        version = await self._add_chunks(store_id, file_id, texts, vectors)
        await self._patch(store_id, version, lambda m: with_file(m, version, file_id, vectors))

    async def delete_chunks(self, store_id: str, file_id: str | None = None) -> None:
        """Remove one file's chunks from the store, or (``file_id`` None) every chunk of the store."""
        version = await self._delete_chunks(store_id, file_id)
        if file_id is None:
            self._cache.pop(store_id, None)
        else:
            await self._patch(store_id, version, lambda m: with_file(m, version, file_id, None))

    async def _patch(self, store_id: str, version: int, change: Callable[[Matrix], Matrix]) -> None:
        """After this process changed a store: change its vectors in memory too, instead of reading
        them all again at the next search, when nobody else changed the store in between."""
        cached = self._cache.get(store_id)
        if cached is None:
            return
        if cached.version != version - 1:
            self._cache.pop(store_id, None)
            return
        self._remember(store_id, await asyncio.to_thread(change, cached))

    @abstractmethod
    async def _add_chunks(self, store_id: str, file_id: str, texts: list[str], vectors: Vectors) -> int:
        """``add_chunks`` in the backend, bumping the store's version once: returns the new version."""

    @abstractmethod
    async def _delete_chunks(self, store_id: str, file_id: str | None) -> int:
        """``delete_chunks`` in the backend: returns the store's new version (0 when the store went)."""

    @abstractmethod
    async def count_chunks(self, store_id: str) -> int: ...

    @abstractmethod
    async def texts(self, store_id: str, keys: list[tuple[str, int]]) -> list[str | None]:
        """The text of each (file_id, seq), None where it is gone."""

    @abstractmethod
    async def version(self, store_id: str) -> int:
        """A number that changes whenever the store's chunks change (0: none yet)."""

    @abstractmethod
    async def _load(self, store_id: str) -> Matrix:
        """Read the store's vectors (with the version they were read at)."""

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._cache.clear()

    # -- search ----------------------------------------------------------------------------
    async def matrix(self, store_id: str) -> Matrix:
        """The store's vectors, from memory when nothing changed since they were read."""
        version = await self.version(store_id)
        cached = self._cache.get(store_id)
        if cached is not None and cached.version == version:
            self._cache.move_to_end(store_id)
            return cached
        # One read per store at a time: concurrent searches of a changed store share it.
        pending = self._loading.get(store_id)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loading[store_id] = pending
            try:
                loaded = await self._load(store_id)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: no "never retrieved" warning when nobody else waits
                raise
            finally:
                self._loading.pop(store_id, None)
            pending.set_result(loaded)
            self._remember(store_id, loaded)
            return loaded
        return await asyncio.shield(pending)

    def _remember(self, store_id: str, matrix: Matrix) -> None:
        self._cache.pop(store_id, None)
        if matrix.nbytes > self._cache_bytes:
            return
        self._cache[store_id] = matrix
        total = sum(m.nbytes for m in self._cache.values())
        while total > self._cache_bytes and self._cache:
            _, dropped = self._cache.popitem(last=False)
            total -= dropped.nbytes

    async def search(
        self,
        store_ids: list[str],
        queries: Vectors,
        k: int,
        allowed: dict[str, set[str]] | None = None,
        threshold: float = 0.0,
    ) -> list[Hit]:
        """The ``k`` best chunks over the stores (``allowed``: per store, the files that may match)."""
        matrices = [await self.matrix(store_id) for store_id in store_ids]
        dims = int(queries.shape[1])
        for store_id, matrix in zip(store_ids, matrices, strict=True):
            if matrix.dims and matrix.dims != dims:
                raise ValueError(
                    f"vector store {store_id} holds {matrix.dims}-dimensional vectors but the query embeds to {dims} "
                    "(was embedding_model changed? re-add the store's files)"
                )

        def score() -> list[Hit]:
            hits: list[Hit] = []
            for store_id, matrix in zip(store_ids, matrices, strict=True):
                only = allowed.get(store_id) if allowed is not None else None
                hits.extend(top_hits(store_id, matrix, queries, k, only, threshold))
            hits.sort(key=lambda h: -h.score)
            return hits[:k]

        # numpy releases the GIL in the matrix product: 100k chunks take milliseconds off the loop.
        return await asyncio.to_thread(score)
