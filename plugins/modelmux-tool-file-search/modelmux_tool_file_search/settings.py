"""``[tools.file_search]`` settings (no numpy or redis import: discovery reads these)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelmux.plugin import ToolSettings

MIB = 1024 * 1024


class FileSearchSettings(ToolSettings):
    """OpenAI's file_search tool with the Files and Vector Stores endpoints (docs/guides/file-search.md)."""

    embedding_model: str = Field(
        description="a [models.NAME] (or PROVIDER/MODEL) that /v1/embeddings serves: "
        "files and queries are embedded with it",
    )
    index: Literal["sqlite", "redis"] = Field(
        "sqlite", description="sqlite: one file on this machine; redis: shared by every replica (redis_url)"
    )
    path: str | None = Field(
        None,
        description="the SQLite file (index = sqlite); unset: $XDG_DATA_HOME/modelmux/file_search.sqlite3, "
        "i.e. ~/.local/share/modelmux/file_search.sqlite3",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="index = redis: redis://[user:password@]host:port/db, rediss:// for TLS"
    )
    key_prefix: str = Field("modelmux:file_search:", description="index = redis: prepended to every key")
    max_file_bytes: int = Field(
        16 * MIB, gt=0, description="largest upload (server.max_request_bytes also bounds it: keep it above this)"
    )
    max_files_per_key: int = Field(1000, gt=0, description="files one client key may hold")
    max_stores_per_key: int = Field(100, gt=0, description="vector stores one client key may hold")
    max_chunks_per_store: int = Field(
        100_000, gt=0, description="chunks one vector store may hold (about 3,200 characters each with auto chunking)"
    )
    max_num_results: int = Field(
        10, ge=1, le=50, description="results per search when the request gives no max_num_results"
    )
    embed_batch_size: int = Field(64, ge=1, le=2048, description="chunks per embeddings call while indexing")
    ingest_concurrency: int = Field(2, ge=1, description="files indexed at once per worker process")
    ingest_timeout_seconds: float = Field(
        900, gt=0, description="a file still in_progress after this long reads as failed (its worker stopped)"
    )
    cache_bytes: int = Field(
        1024 * MIB, ge=0, description="memory per worker for stores' vectors kept between searches (least recent go)"
    )
