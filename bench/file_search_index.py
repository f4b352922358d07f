"""Search latency of the file_search plugin's indexes (plugins/modelmux-tool-file-search/README.md).

    .venv/bin/python bench/file_search_index.py [--chunks 10000 100000] [--dims 256 1536] [--redis URL]

For each size: the time to write the chunks (files of 1,000), the first search (reads every
vector of the store), repeated searches (the vectors kept in memory: a version check and one
matrix product), and the first search after this process added one more file (its vectors
patched in memory), each for SQLite (a temporary file) and Redis (a unique key prefix, deleted after).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from modelmux_tool_file_search.index import Index, unit_rows
from modelmux_tool_file_search.redis_index import RedisIndex
from modelmux_tool_file_search.sqlite_index import SqliteIndex

FILE_CHUNKS = 1000  # chunks per file: a 3 MB text file with auto chunking
TEXT = "x" * 3200  # an auto chunk's length


async def measure(index: Index, chunks: int, dims: int, rng: np.random.Generator) -> dict[str, float]:
    store = f"vs_bench{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    for f in range(chunks // FILE_CHUNKS):
        vectors = unit_rows(rng.standard_normal((FILE_CHUNKS, dims), dtype=np.float32))
        await index.add_chunks(store, f"file-{f:05d}", [TEXT] * FILE_CHUNKS, vectors)
    write = time.perf_counter() - start
    query = unit_rows(rng.standard_normal((1, dims), dtype=np.float32))
    start = time.perf_counter()
    await index.search([store], query, 10)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(30):
        start = time.perf_counter()
        hits = await index.search([store], query, 10)
        await index.texts(store, [(h.file_id, h.seq) for h in hits])
        warm.append(time.perf_counter() - start)
    # One more file added by this process: its vectors are patched in memory, not read again.
    vectors = unit_rows(rng.standard_normal((FILE_CHUNKS, dims), dtype=np.float32))
    await index.add_chunks(store, "file-new", [TEXT] * FILE_CHUNKS, vectors)
    start = time.perf_counter()
    await index.search([store], query, 10)
    patched = time.perf_counter() - start
    await index.delete_chunks(store)
    return {
        "write_s": write,
        "cold_ms": cold * 1000,
        "warm_p50_ms": statistics.median(warm) * 1000,
        "patched_ms": patched * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 1536])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    print(
        "| index | chunks | dims | write (s) | first search (ms) | search, vectors in memory (ms, p50) "
        "| first search after this process added a file (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "redis"):
            for dims in args.dims:
                for chunks in args.chunks:
                    if backend == "sqlite":
                        index: Index = SqliteIndex(Path(tmp) / f"bench-{dims}-{chunks}.sqlite3", 2**31)
                    else:
                        index = RedisIndex(args.redis, f"mmbench:{uuid.uuid4().hex[:8]}:", 2**31)
                    try:
                        got = await measure(index, chunks, dims, rng)
                    finally:
                        await index.aclose()
                    print(
                        f"| {backend} | {chunks:,} | {dims} | {got['write_s']:.1f} | {got['cold_ms']:.0f} | "
                        f"{got['warm_p50_ms']:.1f} | {got['patched_ms']:.0f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    asyncio.run(main())
