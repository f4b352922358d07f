"""The index on Redis (redis-py asyncio), for several replicas: plain keys and hashes, scored here.

Keys, all under ``key_prefix``:
``doc:{kind}:{id}`` a JSON document; ``scope:{kind}:{scope}`` a sorted set of its ids (all score
0, so ordered by id); ``content:{file_id}`` a file's bytes; ``vec:{store}`` and ``txt:{store}``
hashes of a store's chunk vectors and texts, fields ``{file_id}:{seq}``; ``ver:{store}`` the
store's version. RediSearch is not used: scoring here keeps plain Redis (7.x without modules,
managed offerings) enough, and the matrix cache makes a repeated search one GET.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from modelmux.plugin import ModelMuxError, redact
from modelmux_tool_file_search.index import Index, Matrix, Vectors, build_matrix


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class IndexUnavailableError(ModelMuxError):
    """Redis did not answer: 503 naming the URL (password masked) and the setting."""

    status_code = 503
    default_code = "store_unavailable"


class RedisIndex(Index):
    def __init__(self, url: str, key_prefix: str, cache_bytes: int) -> None:
        super().__init__(cache_bytes)
        self.prefix = key_prefix
        self._where = redact(url, "url")
        self.describe = f"redis at {self._where} (keys {key_prefix}*)"
        self._redis = aioredis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=3)

    @asynccontextmanager
    async def _guard(self, op: str) -> AsyncIterator[None]:
        try:
            yield
        except RedisError as exc:
            raise IndexUnavailableError(
                f"file_search index at {self._where}: {op} failed: {type(exc).__name__}: {str(exc).rstrip('.')}. "
                "Fix: check that Redis is running and reachable, and tools.file_search.redis_url."
            ) from exc

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # -- documents -------------------------------------------------------------------------
    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        async with self._guard("get"):
            raw = await self._redis.get(self._k("doc", kind, doc_id))
        return json.loads(raw) if raw else None

    async def put(self, kind: str, doc_id: str, scope: str, doc: dict[str, Any]) -> None:
        async with self._guard("put"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._k("doc", kind, doc_id), json.dumps(doc))
                pipe.zadd(self._k("scope", kind, scope), {doc_id: 0})
                await pipe.execute()

    async def delete(self, kind: str, doc_id: str, scope: str) -> bool:
        async with self._guard("delete"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._k("doc", kind, doc_id))
                pipe.zrem(self._k("scope", kind, scope), doc_id)
                deleted, _ = await pipe.execute()
        return bool(deleted)

    async def scan(self, kind: str, scope: str) -> list[dict[str, Any]]:
        async with self._guard("list"):
            ids = await self._redis.zrange(self._k("scope", kind, scope), 0, -1)
            if not ids:
                return []
            raws = await self._redis.mget([self._k("doc", kind, _text(i)) for i in ids])
        return [json.loads(raw) for raw in raws if raw]

    async def count(self, kind: str, scope: str) -> int:
        async with self._guard("count"):
            return int(await self._redis.zcard(self._k("scope", kind, scope)))

    # -- file bytes ------------------------------------------------------------------------
    async def put_content(self, file_id: str, data: bytes) -> None:
        async with self._guard("put file"):
            await self._redis.set(self._k("content", file_id), data)

    async def get_content(self, file_id: str) -> bytes | None:
        async with self._guard("get file"):
            raw = await self._redis.get(self._k("content", file_id))
        return raw.encode() if isinstance(raw, str) else raw

    async def delete_content(self, file_id: str) -> None:
        async with self._guard("delete file"):
            await self._redis.delete(self._k("content", file_id))

    # -- chunks ----------------------------------------------------------------------------
    async def _fields_of(self, store_id: str, file_id: str) -> list[bytes]:
        fields: list[bytes] = []
        async for field in self._redis.hscan_iter(self._k("vec", store_id), match=f"{file_id}:*", count=1000):
            fields.append(field[0] if isinstance(field, tuple) else field)
        return fields

    async def _add_chunks(self, store_id: str, file_id: str, texts: list[str], vectors: Vectors) -> int:
        async with self._guard("add chunks"):
            old = await self._fields_of(store_id, file_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                if old:
                    pipe.hdel(self._k("vec", store_id), *old)
                    pipe.hdel(self._k("txt", store_id), *old)
                if texts:
                    fields = [f"{file_id}:{i}" for i in range(len(texts))]
                    pipe.hset(
                        self._k("vec", store_id),
                        mapping={f: vectors[i].tobytes() for i, f in enumerate(fields)},
                    )
                    pipe.hset(self._k("txt", store_id), mapping=dict(zip(fields, texts, strict=True)))
                pipe.incr(self._k("ver", store_id))
                done = await pipe.execute()
        return int(done[-1])

    async def _delete_chunks(self, store_id: str, file_id: str | None) -> int:
        async with self._guard("delete chunks"):
            if file_id is None:
                await self._redis.delete(self._k("vec", store_id), self._k("txt", store_id), self._k("ver", store_id))
                return 0
            old = await self._fields_of(store_id, file_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                if old:
                    pipe.hdel(self._k("vec", store_id), *old)
                    pipe.hdel(self._k("txt", store_id), *old)
                pipe.incr(self._k("ver", store_id))
                done = await pipe.execute()
        return int(done[-1])

    async def count_chunks(self, store_id: str) -> int:
        async with self._guard("count chunks"):
            return int(await self._redis.hlen(self._k("vec", store_id)))

    async def texts(self, store_id: str, keys: list[tuple[str, int]]) -> list[str | None]:
        if not keys:
            return []
        async with self._guard("read chunks"):
            raws = await self._redis.hmget(self._k("txt", store_id), [f"{f}:{s}" for f, s in keys])
        return [_text(raw) if raw is not None else None for raw in raws]

    async def version(self, store_id: str) -> int:
        async with self._guard("version"):
            raw = await self._redis.get(self._k("ver", store_id))
        return int(raw) if raw else 0

    async def _load(self, store_id: str) -> Matrix:
        async with self._guard("load vectors"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self._k("ver", store_id))
                pipe.hgetall(self._k("vec", store_id))
                raw_version, blobs = await pipe.execute()
        rows = []
        for field, blob in blobs.items():
            file_id, _, seq = _text(field).rpartition(":")
            rows.append((file_id, int(seq), blob))
        rows.sort(key=lambda r: (r[0], r[1]))
        return build_matrix(int(raw_version) if raw_version else 0, rows)

    async def ping(self) -> bool:
        async with self._guard("ping"):
            return bool(await self._redis.ping())

    async def aclose(self) -> None:
        await super().aclose()
        await self._redis.aclose()
