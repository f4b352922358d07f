"""The Files and Vector Stores endpoints end to end: a real gateway, the echo provider's
embeddings, the official ``openai`` SDK (raw HTTP for malformed input), every body checked
against OpenAI's spec."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from modelmux.testing import RunningGateway, run_gateway, validate

NOTES = (
    "The orbital station Kestrel rotates once every ninety seconds to make gravity.\n\n"
    "Its hydroponic bay grows basil, tomatoes and dwarf wheat under violet lamps."
)
RECIPE = "# Pancakes\n\nWhisk flour, eggs and milk; rest the batter; fry in butter until golden."


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, gateway_config: Callable[..., dict[str, Any]]
) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp("fs-api")
    with run_gateway(gateway_config(tmp, max_file_bytes=8192, max_stores_per_key=5)) as running:
        yield running


@pytest.fixture(scope="module")
def client(gw: RunningGateway, keys: tuple[str, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key=keys[0], max_retries=0)


@pytest.fixture(scope="module")
def other(gw: RunningGateway, keys: tuple[str, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key=keys[1], max_retries=0)


def raw(client: openai.OpenAI, method: str, path: str, **kw: Any) -> httpx.Response:
    """A raw HTTP request with the client's key (malformed input, bodies to check against the spec)."""
    url = str(client.base_url).rstrip("/") + path
    return httpx.request(method, url, headers={"authorization": f"Bearer {client.api_key}"}, timeout=10, **kw)


def upload(client: openai.OpenAI, name: str, text: str) -> Any:
    return client.files.create(file=(name, io.BytesIO(text.encode()), "text/plain"), purpose="assistants")


def test_a_file_is_uploaded_listed_read_and_deleted(client: openai.OpenAI) -> None:
    made = upload(client, "notes.md", NOTES)
    assert made.filename == "notes.md" and made.bytes == len(NOTES.encode()) and made.purpose == "assistants"
    assert made.id.startswith("file-") and made.status == "processed"
    validate("OpenAIFile", raw(client, "GET", f"/files/{made.id}").json())
    assert client.files.retrieve(made.id).id == made.id
    assert client.files.content(made.id).content == NOTES.encode()
    listed = raw(client, "GET", "/files").json()
    validate("ListFilesResponse", listed)
    assert made.id in [f["id"] for f in listed["data"]]
    deleted = client.files.delete(made.id)
    assert deleted.deleted and deleted.id == made.id
    validate("DeleteFileResponse", deleted.model_dump())
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(made.id)


def test_files_are_listed_newest_first_and_paginated(client: openai.OpenAI) -> None:
    ids = [upload(client, f"page-{i}.txt", f"page {i}").id for i in range(5)]
    first = client.files.list(limit=2, purpose="assistants")
    assert [f.id for f in first.data] == ids[::-1][:2] and first.has_more
    seen = [f.id for f in client.files.list(limit=2, purpose="assistants") if f.id in ids]
    assert seen == ids[::-1]  # the SDK followed the cursor over every page
    ascending = client.files.list(order="asc", after=ids[1], limit=2)
    assert [f.id for f in ascending.data] == ids[2:4]
    for file_id in ids:
        client.files.delete(file_id)


def test_a_vector_store_is_built_polled_and_searched(client: openai.OpenAI) -> None:
    notes, recipe = upload(client, "kestrel.md", NOTES), upload(client, "pancakes.md", RECIPE)
    store = client.vector_stores.create(name="handbook", file_ids=[notes.id], metadata={"team": "ops"})
    validate("VectorStoreObject", raw(client, "GET", f"/vector_stores/{store.id}").json())
    assert store.id.startswith("vs_") and store.name == "handbook" and store.metadata == {"team": "ops"}
    added = client.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=recipe.id, attributes={"kind": "recipe", "year": 2024}
    )
    assert added.status == "completed" and added.last_error is None and added.usage_bytes > 0
    vsfile = raw(client, "GET", f"/vector_stores/{store.id}/files/{recipe.id}").json()
    validate("VectorStoreFileObject", vsfile)
    assert vsfile["chunking_strategy"] == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }
    polled = client.vector_stores.files.poll(notes.id, vector_store_id=store.id)
    assert polled.status == "completed"
    done = client.vector_stores.retrieve(store.id)
    assert done.status == "completed" and done.file_counts.completed == 2 and done.file_counts.total == 2
    assert done.usage_bytes > 0

    found = client.vector_stores.search(store.id, query="hydroponic basil tomatoes")
    page = raw(client, "POST", f"/vector_stores/{store.id}/search", json={"query": "hydroponic basil tomatoes"}).json()
    validate("VectorStoreSearchResultsPage", page)
    assert page["search_query"] == ["hydroponic basil tomatoes"]
    best = found.data[0]
    assert best.file_id == notes.id and best.filename == "kestrel.md" and 0 < best.score <= 1
    assert "basil" in best.content[0].text and best.content[0].type == "text"
    assert [r.score for r in found.data] == sorted((r.score for r in found.data), reverse=True)

    only_recipes = client.vector_stores.search(
        store.id, query="hydroponic basil", filters={"type": "eq", "key": "kind", "value": "recipe"}
    )
    assert [r.file_id for r in only_recipes.data] == [recipe.id]
    assert only_recipes.data[0].attributes == {"kind": "recipe", "year": 2024}
    newer = client.vector_stores.search(
        store.id,
        query="flour",
        filters={
            "type": "and",
            "filters": [
                {"type": "gte", "key": "year", "value": 2025},
                {"type": "eq", "key": "kind", "value": "recipe"},
            ],
        },
    )
    assert newer.data == []
    strict = client.vector_stores.search(store.id, query="basil", ranking_options={"score_threshold": 0.99})
    assert strict.data == []
    one = client.vector_stores.search(store.id, query=["gravity station", "golden batter"], max_num_results=1)
    assert len(one.data) == 1

    updated = client.vector_stores.files.update(recipe.id, vector_store_id=store.id, attributes={"kind": "memo"})
    assert updated.attributes == {"kind": "memo"}
    memos = client.vector_stores.search(store.id, query="flour", filters={"type": "eq", "key": "kind", "value": "memo"})
    assert [r.file_id for r in memos.data] == [recipe.id]
    content = raw(client, "GET", f"/vector_stores/{store.id}/files/{notes.id}/content").json()
    validate("VectorStoreFileContentResponse", content)
    assert content["data"] == [{"type": "text", "text": NOTES}]
    listed = raw(client, "GET", f"/vector_stores/{store.id}/files?filter=completed").json()
    validate("ListVectorStoreFilesResponse", listed)
    assert {f["id"] for f in listed["data"]} == {notes.id, recipe.id}
    removed = client.vector_stores.files.delete(recipe.id, vector_store_id=store.id)
    assert removed.deleted and removed.id == recipe.id
    validate("DeleteVectorStoreFileResponse", removed.model_dump())
    after = client.vector_stores.search(store.id, query="flour eggs milk butter")
    assert recipe.id not in [r.file_id for r in after.data]
    assert client.files.retrieve(recipe.id).id == recipe.id  # removing from a store keeps the file

    renamed = client.vector_stores.update(
        store.id, name="renamed", expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert renamed.name == "renamed" and renamed.expires_after is not None and renamed.expires_at
    assert store.id in [s.id for s in client.vector_stores.list()]
    validate("ListVectorStoresResponse", raw(client, "GET", "/vector_stores").json())
    gone = client.vector_stores.delete(store.id)
    assert gone.deleted
    validate("DeleteVectorStoreResponse", gone.model_dump())
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)
    client.files.delete(notes.id)
    client.files.delete(recipe.id)


def test_upload_and_poll_with_a_static_chunking_strategy(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="chunks")
    text = " ".join(f"word{i}" for i in range(600))  # about 4,000 characters
    done = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("long.txt", io.BytesIO(text.encode())),
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}},
    )
    assert done.status == "completed"
    assert done.chunking_strategy is not None and done.chunking_strategy.type == "static"
    hits = client.vector_stores.search(store.id, query="word599", max_num_results=50)
    texts = [h.content[0].text for h in hits.data]
    # About 4,700 characters in 800-character windows starting every 600 or so: 8 chunks.
    assert 7 <= len(texts) <= 9 and all(len(t) <= 800 for t in texts)
    assert any(t.startswith("word0 word1 ") for t in texts) and any(t.endswith("word599") for t in texts)
    ordered = sorted(texts, key=lambda t: int(t.split()[0][4:]))
    for before, chunk in itertools.pairwise(ordered):  # each starts inside the one before
        assert chunk.split()[0] in before.split() and chunk.split()[-1] not in before.split()
    client.vector_stores.delete(store.id)
    client.files.delete(done.id)


def test_a_pdf_is_indexed_from_its_text(client: openai.OpenAI, make_pdf: Callable[[list[str]], bytes]) -> None:
    pdf = make_pdf(["Kestrel station manual", "The hydroponic bay grows basil under violet lamps."])
    store = client.vector_stores.create()
    done = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("manual.pdf", io.BytesIO(pdf)))
    assert done.status == "completed", done.last_error
    found = client.vector_stores.search(store.id, query="basil violet lamps")
    assert found.data[0].filename == "manual.pdf" and "hydroponic bay" in found.data[0].content[0].text
    client.vector_stores.delete(store.id)
    client.files.delete(done.id)


def test_a_file_that_cannot_be_read_fails_with_last_error(client: openai.OpenAI) -> None:
    store = client.vector_stores.create()
    bad = client.files.create(file=("latin1.txt", io.BytesIO("caf\xe9".encode("latin-1"))), purpose="user_data")
    failed = client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=bad.id)
    assert failed.status == "failed" and failed.last_error is not None
    assert failed.last_error.code == "invalid_file" and "UTF-8" in failed.last_error.message
    counts = client.vector_stores.retrieve(store.id).file_counts
    assert counts.failed == 1 and counts.total == 1 and counts.in_progress == 0
    client.vector_stores.delete(store.id)
    client.files.delete(bad.id)


def test_another_key_sees_nothing(client: openai.OpenAI, other: openai.OpenAI) -> None:
    mine = upload(client, "secret.md", NOTES)
    store = client.vector_stores.create(file_ids=[mine.id])
    for call in (
        lambda: other.files.retrieve(mine.id),
        lambda: other.files.content(mine.id),
        lambda: other.files.delete(mine.id),
        lambda: other.vector_stores.retrieve(store.id),
        lambda: other.vector_stores.search(store.id, query="basil"),
        lambda: other.vector_stores.files.list(vector_store_id=store.id),
        lambda: other.vector_stores.delete(store.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert mine.id not in [f.id for f in other.files.list()]
    assert store.id not in [s.id for s in other.vector_stores.list()]
    theirs = other.vector_stores.create()
    with pytest.raises(openai.NotFoundError) as err:
        other.vector_stores.files.create(vector_store_id=theirs.id, file_id=mine.id)
    assert err.value.body["param"] == "file_id"  # type: ignore[index]
    assert client.vector_stores.retrieve(store.id).file_counts.total == 1
    other.vector_stores.delete(theirs.id)
    client.vector_stores.delete(store.id)
    client.files.delete(mine.id)


def test_deleting_a_file_takes_it_out_of_its_stores(client: openai.OpenAI) -> None:
    doomed = upload(client, "doomed.md", NOTES)
    store = client.vector_stores.create(file_ids=[doomed.id])
    client.vector_stores.files.poll(doomed.id, vector_store_id=store.id)
    assert client.vector_stores.search(store.id, query="basil").data
    client.files.delete(doomed.id)
    assert client.vector_stores.search(store.id, query="basil").data == []
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0
    client.vector_stores.delete(store.id)


def test_bad_requests_are_400s_naming_the_parameter(client: openai.OpenAI) -> None:
    def error(resp: httpx.Response, status: int = 400) -> dict[str, Any]:
        assert resp.status_code == status, resp.text
        body: dict[str, Any] = resp.json()["error"]
        return body

    def post_file(name: str, data: bytes, purpose: str = "assistants", **extra: str) -> httpx.Response:
        return raw(client, "POST", "/files", files={"file": (name, data)}, data={"purpose": purpose, **extra})

    refused = error(post_file("slides.pptx", b"PK\x03\x04"))
    assert refused["code"] == "unsupported_file" and ".pdf" in refused["message"] and ".md" in refused["message"]
    assert error(post_file("a.txt", b"x", purpose="fine-tune"))["param"] == "purpose"
    big = error(post_file("big.txt", b"x" * 9000))
    assert big["code"] == "file_too_large" and "tools.file_search.max_file_bytes" in big["message"]
    assert error(raw(client, "POST", "/files", data={"purpose": "assistants"}))["param"] in ("file", None)
    assert error(raw(client, "POST", "/files", json={"purpose": "assistants"}))["code"] == "invalid_content_type"
    assert (
        error(post_file("a.txt", b"x", **{"expires_after[anchor]": "created_at"}))["param"] == "expires_after.seconds"
    )

    assert error(raw(client, "POST", "/vector_stores", content=b"{nope"))["code"] == "invalid_json"
    assert error(raw(client, "POST", "/vector_stores", json={"nmae": "x"}))["param"] == "nmae"
    assert error(raw(client, "POST", "/vector_stores", json={"file_ids": ["file-nope"]}), 404)["param"] == "file_id"
    overlap = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150}}
    assert (
        "chunk_overlap_tokens"
        in error(raw(client, "POST", "/vector_stores", json={"chunking_strategy": overlap}))["param"]
    )
    store = client.vector_stores.create()
    sid = store.id
    assert error(raw(client, "POST", f"/vector_stores/{sid}/search", json={}))["param"] == "query"
    assert (
        error(raw(client, "POST", f"/vector_stores/{sid}/search", json={"query": "x", "max_num_results": 99}))["param"]
        == "max_num_results"
    )
    bad_filter = {"query": "x", "filters": {"type": "like", "key": "a", "value": "b"}}
    assert error(raw(client, "POST", f"/vector_stores/{sid}/search", json=bad_filter))["param"] == "filters.type"
    assert error(raw(client, "GET", "/vector_stores?limit=0"))["param"] == "limit"
    assert error(raw(client, "GET", "/vector_stores?order=up"))["param"] == "order"
    assert error(raw(client, "GET", f"/vector_stores/{sid}/files?filter=done"))["param"] == "filter"
    assert error(raw(client, "GET", "/vector_stores/vs_nope"), 404)["param"] == "vector_store_id"
    client.vector_stores.delete(sid)


def test_the_stores_per_key_limit_names_its_setting(client: openai.OpenAI, other: openai.OpenAI) -> None:
    made = [other.vector_stores.create().id for _ in range(5)]
    with pytest.raises(openai.BadRequestError) as err:
        other.vector_stores.create()
    assert "tools.file_search.max_stores_per_key" in str(err.value)
    assert client.vector_stores.create().id  # another key has its own count
    for store_id in made:
        other.vector_stores.delete(store_id)


def test_a_file_batch_is_uploaded_polled_listed_and_cancelled(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="batch")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id,
        files=[("kestrel.md", io.BytesIO(NOTES.encode())), ("pancakes.md", io.BytesIO(RECIPE.encode()))],
    )
    assert batch.id.startswith("vsfb_") and batch.status == "completed"
    assert batch.file_counts.completed == 2 and batch.file_counts.total == 2
    validate(
        "VectorStoreFileBatchObject", raw(client, "GET", f"/vector_stores/{store.id}/file_batches/{batch.id}").json()
    )
    files = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert sorted(f.status for f in files.data) == ["completed", "completed"]
    assert client.vector_stores.search(store.id, query="hydroponic basil").data[0].filename == "kestrel.md"
    more = upload(client, "more.md", "More notes about the station's violet lamps.")
    second = client.vector_stores.file_batches.create(
        vector_store_id=store.id, files=[{"file_id": more.id, "attributes": {"kind": "memo"}}]
    )
    cancelled = client.vector_stores.file_batches.cancel(second.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.total == 1
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.file_batches.retrieve("vsfb_nope", vector_store_id=store.id)
    empty = raw(client, "POST", f"/vector_stores/{store.id}/file_batches", json={})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "file_ids"
    client.vector_stores.delete(store.id)
    for f in client.files.list():
        if f.filename in ("kestrel.md", "pancakes.md", "more.md"):
            client.files.delete(f.id)


def test_an_embeddings_model_that_does_not_exist_fails_the_file_naming_the_setting(
    tmp_path: Path, gateway_config: Callable[..., dict[str, Any]], keys: tuple[str, str]
) -> None:
    with run_gateway(gateway_config(tmp_path, embedding_model="no-such-model")) as running:
        client = openai.OpenAI(base_url=running.url, api_key=keys[0], max_retries=0)
        store = client.vector_stores.create()
        failed = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=("a.md", io.BytesIO(b"some words"))
        )
        assert failed.status == "failed" and failed.last_error is not None
        assert failed.last_error.code == "server_error"
        assert "tools.file_search.embedding_model" in failed.last_error.message
        assert "no-such-model" in failed.last_error.message
