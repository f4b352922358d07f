"""The endpoints with ``index = "redis"``: a real gateway on the real Redis at 127.0.0.1:6379
(a unique key prefix, deleted afterwards), two gateways sharing it as two replicas would."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import redis

from modelmux.testing import run_gateway


def test_two_replicas_share_files_and_stores_through_redis(
    tmp_path: Path,
    gateway_config: Callable[..., dict[str, Any]],
    keys: tuple[str, str],
    redis_url: str,
    key_prefix: str,
) -> None:
    settings = {"index": "redis", "redis_url": redis_url, "key_prefix": key_prefix}
    with (
        run_gateway(gateway_config(tmp_path / "a", **settings)) as first,
        run_gateway(gateway_config(tmp_path / "b", **settings)) as second,
    ):
        a = openai.OpenAI(base_url=first.url, api_key=keys[0], max_retries=0)
        b = openai.OpenAI(base_url=second.url, api_key=keys[0], max_retries=0)
        stranger = openai.OpenAI(base_url=second.url, api_key=keys[1], max_retries=0)
        store = a.vector_stores.create(name="shared")
        done = a.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=("kestrel.md", io.BytesIO(b"The hydroponic bay grows basil."))
        )
        assert done.status == "completed"
        assert b.vector_stores.search(store.id, query="hydroponic basil").data[0].filename == "kestrel.md"
        assert b.files.content(done.id).content == b"The hydroponic bay grows basil."
        with pytest.raises(openai.NotFoundError):
            stranger.vector_stores.search(store.id, query="basil")
        # a change on one replica is seen by the other's vectors in memory
        b.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=("pancakes.md", io.BytesIO(b"Whisk flour eggs milk for pancakes."))
        )
        assert a.vector_stores.search(store.id, query="flour eggs milk pancakes").data[0].filename == "pancakes.md"
        b.vector_stores.delete(store.id)
        with pytest.raises(openai.NotFoundError):
            a.vector_stores.retrieve(store.id)
        for f in a.files.list():
            a.files.delete(f.id)
    client = redis.Redis.from_url(redis_url)
    left = [k for k in client.scan_iter(match=f"{key_prefix}*") if b":scope:" not in k]
    client.close()
    assert left == [], left  # deleting the store and the files left no vectors, texts or bytes behind
