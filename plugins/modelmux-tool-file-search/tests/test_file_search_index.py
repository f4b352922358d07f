"""Both index backends against one set of checks: real SQLite files and the real Redis at
127.0.0.1:6379 (a unique key prefix, deleted afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from modelmux_tool_file_search.index import Index, Matrix, unit_rows
from modelmux_tool_file_search.redis_index import IndexUnavailableError, RedisIndex
from modelmux_tool_file_search.sqlite_index import SqliteIndex

MIB = 1024 * 1024


@pytest.fixture(params=["sqlite", "redis"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Index]:
    if request.param == "sqlite":
        made: Index = SqliteIndex(tmp_path / "index.sqlite3", 64 * MIB)
    else:
        made = RedisIndex(request.getfixturevalue("redis_url"), request.getfixturevalue("key_prefix"), 64 * MIB)
    yield made
    await made.aclose()


def vectors(*rows: list[float]) -> np.ndarray:
    return unit_rows([list(r) for r in rows])


async def test_documents_are_stored_listed_by_scope_in_id_order_and_deleted(index: Index) -> None:
    await index.put("file", "file-b", "key-1", {"id": "file-b", "n": 2})
    await index.put("file", "file-a", "key-1", {"id": "file-a", "n": 1})
    await index.put("file", "file-c", "key-2", {"id": "file-c"})
    assert await index.get("file", "file-a") == {"id": "file-a", "n": 1}
    assert [d["id"] for d in await index.scan("file", "key-1")] == ["file-a", "file-b"]
    assert await index.count("file", "key-1") == 2 and await index.count("file", "key-3") == 0
    await index.put("file", "file-a", "key-1", {"id": "file-a", "n": 3})
    assert (await index.get("file", "file-a")) == {"id": "file-a", "n": 3}
    assert await index.count("file", "key-1") == 2
    assert await index.delete("file", "file-a", "key-1") is True
    assert await index.delete("file", "file-a", "key-1") is False
    assert await index.get("file", "file-a") is None
    assert [d["id"] for d in await index.scan("file", "key-1")] == ["file-b"]
    assert await index.get("store", "file-b") is None  # kinds are apart


async def test_file_bytes_round_trip(index: Index) -> None:
    data = bytes(range(256)) * 10
    await index.put_content("file-x", data)
    assert await index.get_content("file-x") == data
    await index.delete_content("file-x")
    assert await index.get_content("file-x") is None


async def test_chunks_are_searched_by_cosine_and_replaced_per_file(index: Index) -> None:
    assert await index.version("vs_1") == 0
    await index.add_chunks("vs_1", "file-a", ["north", "east"], vectors([1, 0, 0], [0, 1, 0]))
    await index.add_chunks("vs_1", "file-b", ["mostly north"], vectors([0.9, 0.1, 0]))
    await index.add_chunks("vs_2", "file-a", ["up"], vectors([0, 0, 1]))
    assert await index.count_chunks("vs_1") == 3 and await index.count_chunks("vs_2") == 1
    hits = await index.search(["vs_1"], vectors([1, 0, 0]), 10)
    assert [(h.file_id, h.seq) for h in hits] == [("file-a", 0), ("file-b", 0), ("file-a", 1)]
    assert hits[0].score == pytest.approx(1.0) and hits[2].score == pytest.approx(0.0)
    assert await index.texts("vs_1", [("file-b", 0), ("file-a", 1), ("file-z", 0)]) == ["mostly north", "east", None]

    # k, the score threshold, and the files a filter allows
    assert len(await index.search(["vs_1"], vectors([1, 0, 0]), 1)) == 1
    assert [h.file_id for h in await index.search(["vs_1"], vectors([1, 0, 0]), 10, threshold=0.5)] == [
        "file-a",
        "file-b",
    ]
    only_b = await index.search(["vs_1"], vectors([1, 0, 0]), 10, allowed={"vs_1": {"file-b"}})
    assert [h.file_id for h in only_b] == ["file-b"]
    # several queries: a chunk scores its best match; several stores: merged by score
    both = await index.search(["vs_1", "vs_2"], vectors([0, 0, 1], [0, 1, 0]), 2)
    assert {(h.store_id, h.file_id, h.seq) for h in both} == {("vs_2", "file-a", 0), ("vs_1", "file-a", 1)}
    assert [h.score for h in both] == pytest.approx([1.0, 1.0])

    before = await index.version("vs_1")
    await index.add_chunks("vs_1", "file-a", ["west"], vectors([-1, 0, 0]))
    assert await index.version("vs_1") > before
    assert await index.count_chunks("vs_1") == 2  # file-a's two chunks replaced by one
    assert [h.file_id for h in await index.search(["vs_1"], vectors([0, 1, 0]), 10, threshold=0.01)] == ["file-b"]
    await index.delete_chunks("vs_1", "file-b")
    assert [h.file_id for h in await index.search(["vs_1"], vectors([1, 0, 0]), 10)] == ["file-a"]
    await index.delete_chunks("vs_1")
    assert await index.count_chunks("vs_1") == 0 and await index.search(["vs_1"], vectors([1, 0, 0]), 5) == []
    assert await index.count_chunks("vs_2") == 1


async def test_vectors_are_read_again_only_when_the_store_changed(index: Index) -> None:
    await index.add_chunks("vs_c", "file-a", ["a"], vectors([1, 0]))
    first = await index.matrix("vs_c")
    assert await index.matrix("vs_c") is first  # cached: one version read, no vectors
    await index.add_chunks("vs_c", "file-b", ["b"], vectors([0, 1]))
    second = await index.matrix("vs_c")
    assert second is not first and len(second.seqs) == 2


def rows_of(matrix: Matrix) -> dict[tuple[str, int], list[float]]:
    return {
        (matrix.file_ids[f], int(s)): [round(float(x), 5) for x in v]
        for f, s, v in zip(matrix.files, matrix.seqs, matrix.vectors, strict=True)
    }


async def test_this_process_changes_its_vectors_in_memory_without_reading_them_again(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    await index.add_chunks("vs_p", "file-a", ["a", "b"], vectors([1, 0, 0], [0, 1, 0]))
    await index.matrix("vs_p")
    reads: list[str] = []
    load = index._load

    async def counted(store_id: str) -> Matrix:
        reads.append(store_id)
        return await load(store_id)

    monkeypatch.setattr(index, "_load", counted)
    await index.add_chunks("vs_p", "file-b", ["c"], vectors([0, 0, 1]))
    await index.add_chunks("vs_p", "file-a", ["d"], vectors([0, 1, 1]))  # replaces file-a's two
    await index.add_chunks("vs_p", "file-c", ["e"], vectors([1, 1, 0]))
    await index.delete_chunks("vs_p", "file-b")
    patched = await index.matrix("vs_p")
    assert reads == []
    index._cache.clear()
    fresh = await index.matrix("vs_p")
    assert reads == ["vs_p"] and fresh.version == patched.version
    assert rows_of(patched) == rows_of(fresh) and set(rows_of(fresh)) == {("file-a", 0), ("file-c", 0)}


async def test_a_second_process_sees_the_first_ones_changes(index: Index, tmp_path: Path) -> None:
    """Two index objects on the same storage (two workers): a change by one is seen by the other's cache."""
    if isinstance(index, SqliteIndex):
        twin: Index = SqliteIndex(index.path, 64 * MIB)
    else:
        assert isinstance(index, RedisIndex)
        twin = RedisIndex("redis://127.0.0.1:6379/0", index.prefix, 64 * MIB)
    try:
        await index.add_chunks("vs_t", "file-a", ["a"], vectors([1, 0]))
        assert len((await twin.matrix("vs_t")).seqs) == 1
        await index.add_chunks("vs_t", "file-b", ["b"], vectors([0, 1]))
        assert len((await twin.matrix("vs_t")).seqs) == 2
        # the twin changes it: this one's copy is one version behind and is read again
        await index.matrix("vs_t")
        await twin.delete_chunks("vs_t", "file-a")
        await index.add_chunks("vs_t", "file-c", ["c"], vectors([1, 1]))
        assert set(rows_of(await index.matrix("vs_t"))) == {("file-b", 0), ("file-c", 0)}
    finally:
        await twin.aclose()


async def test_a_query_of_another_dimension_is_refused(index: Index) -> None:
    await index.add_chunks("vs_d", "file-a", ["a"], vectors([1, 0, 0]))
    with pytest.raises(ValueError, match="embedding_model"):
        await index.search(["vs_d"], vectors([1, 0]), 3)


async def test_an_unreachable_redis_is_a_503_naming_the_setting(unused_tcp_port: int) -> None:
    index = RedisIndex(f"redis://:hunter2@127.0.0.1:{unused_tcp_port}/0", "x:", MIB)
    with pytest.raises(IndexUnavailableError) as err:
        await index.get("file", "file-a")
    assert err.value.status_code == 503 and "tools.file_search.redis_url" in err.value.message
    assert "hunter2" not in err.value.message
    await index.aclose()
