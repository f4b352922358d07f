"""Stored Responses history against a real ``modelmux serve``: linear storage, limits, replay.

Each stored response keeps only its own items and links to the one it continued, so N turns
take O(N) bytes; the limits ([state] max_record_bytes, max_bytes_per_key,
max_conversation_depth, server.max_request_bytes) refuse before the upstream is called; the
disk store stays under its size limit; a native Responses upstream is replayed the
conversation without the ids ModelMux minted. The upstream is a fake on loopback that
records what it is sent; the client is the official openai SDK (raw HTTP for headers).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from aiohttp import web

from modelmux.default_plugins.disk import DiskSettings, DiskStore
from modelmux.gateway import key_id
from modelmux.testing import LoopbackServer, free_port, run_gateway, serve_aiohttp

KEY_A, KEY_B, KEY_C = "hist-key-a", "hist-key-b", "hist-key-c"
DISK_LIMIT = 1_500_000


# -- the fake upstream ---------------------------------------------------------------------------


class Upstream:
    """Chat Completions that say back the last user message, and a native Responses API that,
    like OpenAI's, looks up every input item that carries an id among the items it produced."""

    def __init__(self) -> None:
        self.chat: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.own_ids: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/v1/responses", self.native)
        return app

    async def chat_completions(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.chat.append(body)
        said = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": said}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    async def native(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.responses.append(body)
        items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        for index, item in enumerate(items):
            if "id" in item and item["id"] not in self.own_ids:
                return web.json_response(
                    {
                        "error": {
                            "message": f"Item with id '{item['id']}' not found.",
                            "type": "invalid_request_error",
                            "param": f"input[{index}]",
                            "code": None,
                        }
                    },
                    status=400,
                )
        last = next(i for i in reversed(items) if i.get("role") == "user")
        content = last["content"]
        said = content if isinstance(content, str) else content[0]["text"]
        item_id = f"msg_upstream{uuid.uuid4().hex[:8]}"
        self.own_ids.add(item_id)
        return web.json_response(
            {
                "id": f"resp_upstream{uuid.uuid4().hex[:8]}",
                "object": "response",
                "created_at": 1,
                "status": "completed",
                "model": body["model"],
                "output": [
                    {
                        "type": "message",
                        "id": item_id,
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": said, "annotations": []}],
                    }
                ],
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": {
                    "input_tokens": 1,
                    "output_tokens": 1,
                    "total_tokens": 2,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            }
        )


# -- a real modelmux serve ---------------------------------------------------------------------------


class Serve:
    def __init__(self, tmp: Path, upstream: str, **state: Any) -> None:
        self.state_dir = tmp / "state"
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/v1"
        max_request = state.pop("max_request_bytes", 33554432)
        state_lines = "\n".join(f"{k} = {orjson.dumps(v).decode()}" for k, v in state.items())
        config = tmp / "modelmux.toml"
        config.write_text(
            f"""
[server]
api_keys = ["{KEY_A}", "{KEY_B}", "{KEY_C}"]
max_request_bytes = {max_request}

[state]
backend = "disk"
path = "{self.state_dir}"
{state_lines}

[providers.up]
type = "openai_compatible"
base_url = "{upstream}/v1"
native_responses = false
max_retries = 0

[providers.native]
type = "openai_compatible"
base_url = "{upstream}/v1"
native_responses = true
max_retries = 0

[models.chat]
provider = "up"
model = "chat-model"

[models.native]
provider = "native"
model = "native-model"
"""
        )
        self.log = tmp / "serve.log"
        exe = Path(sys.executable).parent / "modelmux"
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--config", str(config), "--port", str(self.port)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        end = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.root}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, self.log.read_text()
            time.sleep(0.05)

    def client(self, key: str = KEY_A) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0)

    def post(self, body: dict[str, Any], key: str = KEY_A) -> httpx.Response:
        return httpx.post(f"{self.url}/responses", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, LoopbackServer]]:
    up = Upstream()
    with serve_aiohttp(up.app()) as server:
        yield up, server


@pytest.fixture(scope="module")
def roomy(upstream: tuple[Upstream, LoopbackServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """Default limits; a small disk store."""
    serve = Serve(tmp_path_factory.mktemp("roomy"), upstream[1].url, size_limit_bytes=DISK_LIMIT)
    yield serve
    serve.stop()


@pytest.fixture(scope="module")
def tight(upstream: tuple[Upstream, LoopbackServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    serve = Serve(
        tmp_path_factory.mktemp("tight"),
        upstream[1].url,
        max_request_bytes=300_000,
        max_conversation_depth=4,
        max_record_bytes=100_000,
        max_bytes_per_key=400_000,
    )
    yield serve
    serve.stop()


async def _record_sizes(state_dir: Path, ids: list[str]) -> list[int]:
    store = DiskStore(DiskSettings(path=str(state_dir)))
    try:
        sizes = []
        for rid in ids:
            raw = await store.get(f"responses:v1:{rid}")
            assert raw is not None, rid
            sizes.append(len(raw))
        return sizes
    finally:
        await store.aclose()


def _text(n: int, size: int) -> str:
    word = f"turn{n} "
    return (word * (size // len(word) + 1))[:size]


def _bytes_on_disk(directory: Path) -> int:
    """The database and value files (SQLite's -wal and -shm files are not part of the limit)."""
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file() and not f.name.endswith(("-wal", "-shm")))


# -- linear storage -------------------------------------------------------------------------------


async def test_stored_bytes_grow_linearly_with_the_turns(
    roomy: Serve, upstream: tuple[Upstream, LoopbackServer]
) -> None:
    up = upstream[0]
    client = roomy.client()
    turns, size = 12, 20_000
    ids: list[str] = []
    previous = None
    for n in range(turns):
        r = client.responses.create(model="chat", input=_text(n, size), previous_response_id=previous)
        assert r.output_text == _text(n, size)
        ids.append(r.id)
        previous = r.id
    # the last turn sent the whole conversation upstream, in order
    messages = up.chat[-1]["messages"]
    assert len(messages) == 2 * turns - 1
    assert [m["content"] for m in messages[::2]] == [_text(n, size) for n in range(turns)]
    # each record holds its own turn only: the same size for the first and the last turn,
    # so N turns take O(N) bytes (each record held the whole conversation before: O(N^2))
    sizes = await _record_sizes(roomy.state_dir, ids)
    assert max(sizes) < 1.2 * min(sizes), sizes
    assert sum(sizes) < turns * 1.2 * sizes[0]
    assert sizes[0] > 2 * size  # input and output, each once
    # the API still shows each response's own input items
    assert [i.content[0].text for i in client.responses.input_items.list(ids[-1])] == [_text(turns - 1, size)]  # type: ignore[union-attr]


def test_a_missing_earlier_response_is_a_404_naming_it(roomy: Serve) -> None:
    client = roomy.client()
    r1 = client.responses.create(model="chat", input="one")
    r2 = client.responses.create(model="chat", input="two", previous_response_id=r1.id)
    r3 = client.responses.create(model="chat", input="three", previous_response_id=r2.id)
    client.responses.delete(r2.id)
    assert client.responses.retrieve(r3.id).output_text == "three"  # still there on its own
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="chat", input="four", previous_response_id=r3.id)
    body = err.value.body
    assert isinstance(body, dict)
    assert body["code"] == "previous_response_incomplete" and body["param"] == "previous_response_id"
    assert r2.id in body["message"] and "new conversation" in body["message"]


async def test_responses_stored_in_the_earlier_format_are_still_read(
    roomy: Serve, upstream: tuple[Upstream, LoopbackServer]
) -> None:
    """A record as ModelMux wrote it before history was linked: the whole conversation in one value."""
    up = upstream[0]
    minted = f"msg_{uuid.uuid4().hex}"
    old_id = f"resp_{uuid.uuid4().hex}"
    history = [
        {"type": "message", "role": "user", "id": f"msg_{uuid.uuid4().hex}", "status": "completed",
         "content": [{"type": "input_text", "text": "first question"}]},
        {"type": "message", "role": "assistant", "id": f"msg_{uuid.uuid4().hex}", "status": "completed",
         "content": [{"type": "output_text", "text": "first answer", "annotations": [], "logprobs": []}]},
        {"type": "message", "role": "user", "id": minted, "status": "completed",
         "content": [{"type": "input_text", "text": "second question"}]},
        {"type": "message", "role": "assistant", "id": f"msg_{uuid.uuid4().hex}", "status": "completed",
         "content": [{"type": "output_text", "text": "second answer", "annotations": [], "logprobs": []}]},
    ]  # fmt: skip
    response = {"id": old_id, "object": "response", "created_at": 1, "status": "completed", "model": "chat",
                "output": history[3:], "previous_response_id": None}  # fmt: skip
    record = {"response": response, "history": history, "input_start": 2, "input_end": 3, "owner": None}
    record["owner"] = key_id(KEY_A)
    store = DiskStore(DiskSettings(path=str(roomy.state_dir)))
    try:
        await store.set(f"responses:v1:{old_id}", orjson.dumps(record), ttl=600)
    finally:
        await store.aclose()
    client = roomy.client()
    assert client.responses.retrieve(old_id).output_text == "second answer"
    assert [i.id for i in client.responses.input_items.list(old_id)] == [minted]
    r = client.responses.create(model="chat", input="third question", previous_response_id=old_id)
    assert [m["content"] for m in up.chat[-1]["messages"]] == [
        "first question", "first answer", "second question", "second answer", "third question",
    ]  # fmt: skip
    # a native upstream gets the old items without the ids ModelMux minted back then
    r = client.responses.create(model="native", input="fourth question", previous_response_id=r.id)
    assert r.output_text == "fourth question"
    assert all("id" not in item for item in up.responses[-1]["input"])


def test_the_disk_store_stays_under_its_size_limit(roomy: Serve) -> None:
    client = roomy.client(KEY_B)
    ids = []
    for n in range(30):  # 30 responses of ~100 KB each: twice the limit
        ids.append(client.responses.create(model="chat", input=_text(n, 50_000)).id)
        assert _bytes_on_disk(roomy.state_dir) <= DISK_LIMIT
    assert client.responses.retrieve(ids[-1]).output_text == _text(29, 50_000)  # the newest are kept
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(ids[0])  # the oldest went first


# -- replay to a native Responses upstream ------------------------------------------------------------


def test_native_upstream_is_replayed_items_without_gateway_ids(
    roomy: Serve, upstream: tuple[Upstream, LoopbackServer]
) -> None:
    up = upstream[0]
    client = roomy.client()
    # translated first: ModelMux minted the ids of the input and of the output
    r1 = client.responses.create(
        model="chat",
        input=[
            {"role": "developer", "content": "be brief"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
        ],
    )
    # then native twice: the upstream refuses any id it did not produce itself
    r2 = client.responses.create(model="native", input="again", previous_response_id=r1.id)
    assert r2.output_text == "again"
    sent = up.responses[-1]["input"]
    assert [i.get("role") for i in sent] == ["developer", "user", "assistant", "user"]
    assert all("id" not in i and "status" not in i for i in sent)
    r3 = client.responses.create(model="native", input="third", previous_response_id=r2.id)
    assert r3.output_text == "third"
    sent = up.responses[-1]["input"]
    # the upstream's own output item keeps its id (it can look that one up)
    assert [i["id"] for i in sent if "id" in i] == [r2.output[0].id]
    assert r2.output[0].id in up.own_ids
    # stored items still have ids for the API
    assert all(i.id for i in client.responses.input_items.list(r1.id))


# -- limits ---------------------------------------------------------------------------------------------


def test_depth_limit_is_a_400_before_the_upstream(tight: Serve, upstream: tuple[Upstream, LoopbackServer]) -> None:
    up = upstream[0]
    client = tight.client(KEY_C)
    previous = None
    for n in range(4):
        previous = client.responses.create(model="chat", input=f"turn {n}", previous_response_id=previous).id
    calls = len(up.chat)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="chat", input="one too many", previous_response_id=previous)
    body = err.value.body
    assert isinstance(body, dict)
    assert body["code"] == "conversation_too_deep" and body["param"] == "previous_response_id"
    assert "max_conversation_depth" in body["message"] and "5" in body["message"] and "4" in body["message"]
    assert len(up.chat) == calls


def test_conversation_over_the_request_size_limit_is_a_400_before_the_upstream(
    tight: Serve, upstream: tuple[Upstream, LoopbackServer]
) -> None:
    up = upstream[0]
    client = tight.client(KEY_A)
    previous = None
    for n in range(3):  # 3 turns of 45 KB in and 45 KB out: 270 KB
        previous = client.responses.create(model="chat", input=_text(n, 45_000), previous_response_id=previous).id
    calls = len(up.chat)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="chat", input=_text(3, 45_000), previous_response_id=previous)
    body = err.value.body
    assert isinstance(body, dict)
    assert body["code"] == "conversation_too_large" and "server.max_request_bytes" in body["message"]
    assert "300000" in body["message"]
    assert len(up.chat) == calls


def test_record_size_cap(tight: Serve, upstream: tuple[Upstream, LoopbackServer]) -> None:
    up = upstream[0]
    calls = len(up.chat)
    big = _text(0, 120_000)
    refused = tight.post({"model": "chat", "input": big}, key=KEY_A)
    assert refused.status_code == 413
    err = refused.json()["error"]
    assert err["code"] == "record_too_large" and "max_record_bytes" in err["message"] and "store" in err["message"]
    assert len(up.chat) == calls  # refused before the upstream
    assert tight.post({"model": "chat", "input": big, "store": False}, key=KEY_A).status_code == 200
    # the input fits, the answer makes the record too large: answered, not stored, and said so
    r = tight.post({"model": "chat", "input": _text(1, 60_000)}, key=KEY_A)
    assert r.status_code == 200 and r.json()["output"][0]["content"][0]["text"] == _text(1, 60_000)
    warning = r.headers["x-modelmux-store-warning"]
    assert "not stored" in warning and "max_record_bytes" in warning
    assert (
        httpx.get(f"{tight.url}/responses/{r.json()['id']}", headers={"authorization": f"Bearer {KEY_A}"}).status_code
        == 404
    )
    assert "not stored" in tight.log.read_text()


def test_each_key_has_a_storage_quota(tight: Serve, upstream: tuple[Upstream, LoopbackServer]) -> None:
    up = upstream[0]
    client = tight.client(KEY_B)
    stored = [client.responses.create(model="chat", input=_text(n, 45_000)).id for n in range(4)]  # ~360 KB
    calls = len(up.chat)
    refused = tight.post({"model": "chat", "input": _text(5, 45_000)}, key=KEY_B)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    err = refused.json()["error"]
    assert err["code"] == "storage_quota_exceeded" and "max_bytes_per_key" in err["message"]
    assert "store: false" in err["message"]
    assert len(up.chat) == calls
    # not stored: no quota needed; another key has its own quota
    assert tight.post({"model": "chat", "input": "x", "store": False}, key=KEY_B).status_code == 200
    assert tight.post({"model": "chat", "input": _text(5, 45_000)}, key=KEY_C).status_code == 200
    # deleting gives the room back
    client.responses.delete(stored[0])
    assert tight.post({"model": "chat", "input": _text(5, 45_000)}, key=KEY_B).status_code == 200


def test_continuing_renews_the_whole_conversation(tmp_path: Path) -> None:
    """Each save renews the chain's TTL: a conversation outlives the TTL of its first response."""
    config = {"state": {"backend": "disk", "path": str(tmp_path / "state"), "ttl_seconds": 2}}
    with run_gateway(config) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0)
        r1 = client.responses.create(model="echo", input="first")
        time.sleep(1.2)
        r2 = client.responses.create(model="echo", input="second", previous_response_id=r1.id)
        time.sleep(1.2)  # r1 was stored 2.4 s ago with a TTL of 2 s; r2's save renewed it
        r3 = client.responses.create(model="echo", input="third", previous_response_id=r2.id)
        assert r3.usage is not None and r3.usage.input_tokens == 5  # echo counts the words sent: all three turns
        time.sleep(2.2)  # nothing continued: all of it expires
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(r1.id)
