"""The tool end to end: a real ``modelmux serve`` process with ``[tools.file_search]``, the echo
provider's embeddings, a fake chat model on loopback that calls ``file_search`` then answers
from what it read, and the official ``openai`` SDK building a store and asking a question."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from modelmux.testing import LoopbackServer, ServeProcess, serve_aiohttp, serve_process, validate

KEY = f"sk-fs-e2e-{uuid.uuid4().hex}"
OTHER = f"sk-fs-e2e-other-{uuid.uuid4().hex}"
NOTES = (
    "The orbital station Kestrel rotates once every ninety seconds to make gravity.\n\n"
    "Its hydroponic bay grows basil, tomatoes and dwarf wheat under violet lamps."
)


def chat_model() -> web.Application:
    """Offered ``file_search``, it searches for the user's words; given the tool's text, it answers
    with the first passage's file name in brackets, as the function's description asks."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        request.app["bodies"].append(body)
        last = body["messages"][-1]
        offered = any(t["function"]["name"] == "file_search" for t in body.get("tools") or [])
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if last["role"] == "tool":
            text = last["content"]
            cited = text.split("file: ", 1)[1].split(" (", 1)[0] if "file: " in text else None
            message["content"] = f"The basil grows in the hydroponic bay [{cited}]." if cited else f"Sorry: {text}"
        elif offered:
            args = orjson.dumps({"query": last["content"]}).decode()
            call = {"id": "call_fs1", "type": "function", "function": {"name": "file_search", "arguments": args}}
            message["tool_calls"] = [call]
        else:
            message["content"] = "no tool offered"
        finish = "tool_calls" if "tool_calls" in message else "stop"
        usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            completion = {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}
            return web.json_response({**completion, "usage": usage})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        delta = {k: v for k, v in message.items() if v is not None}
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": 0, **delta["tool_calls"][0]}]
        for chunk in (
            {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
            {**base, "choices": [], "usage": usage},
        ):
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app["bodies"] = []
    app.router.add_post("/v1/chat/completions", chat)
    return app


@pytest.fixture(scope="module")
def upstream() -> Iterator[LoopbackServer]:
    with serve_aiohttp(chat_model()) as server:
        yield server


@pytest.fixture(scope="module")
def served(upstream: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """``modelmux serve`` as a user runs it: its own process, a config file, a free port."""
    tmp = tmp_path_factory.mktemp("fs-serve")
    config = {
        "server": {"api_keys": [KEY, OTHER]},
        "state": {"backend": "disk", "path": str(tmp / "state")},
        "providers": {
            "fake": {"type": "openai_compatible", "base_url": f"{upstream.url}/v1", "max_retries": 0},
            "echo": {"type": "echo"},
        },
        "models": {"chat": {"provider": "fake", "model": "m"}, "embed": {"provider": "echo", "model": "echo"}},
        "tools": {"file_search": {"embedding_model": "embed", "path": str(tmp / "file_search.sqlite3")}},
    }
    with serve_process(config, tmp) as running:
        yield running


@pytest.fixture(scope="module")
def client(served: ServeProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.root}/v1", api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def store(client: openai.OpenAI) -> Any:
    file = client.files.create(file=("kestrel.md", io.BytesIO(NOTES.encode())), purpose="assistants")
    made = client.vector_stores.create(name="station", file_ids=[file.id])
    done = client.vector_stores.files.poll(file.id, vector_store_id=made.id)
    assert done.status == "completed", done.last_error
    return client.vector_stores.retrieve(made.id)


def test_the_model_searches_the_store_and_cites_the_file(client: openai.OpenAI, store: Any) -> None:
    response = client.responses.create(
        model="chat",
        input="Where does the basil grow?",
        tools=[{"type": "file_search", "vector_store_ids": [store.id], "max_num_results": 2}],
        include=["file_search_call.results"],
    )
    validate("Response", response.model_dump(mode="json", exclude_unset=True))
    call, answer = response.output[0], response.output[-1]
    assert call.type == "file_search_call" and call.status == "completed" and call.id.startswith("fs")
    assert call.queries == ["Where does the basil grow?"]
    assert call.results and call.results[0].filename == "kestrel.md" and "basil" in (call.results[0].text or "")
    assert answer.type == "message"
    text = answer.content[0]
    assert text.type == "output_text" and text.text == "The basil grows in the hydroponic bay [kestrel.md]."
    (citation,) = text.annotations
    assert citation.type == "file_citation" and citation.filename == "kestrel.md"
    assert citation.file_id == call.results[0].file_id and citation.index == len(text.text) - 1
    assert response.usage is not None and response.usage.total_tokens == 32  # both rounds


def test_results_are_left_out_unless_included(client: openai.OpenAI, store: Any) -> None:
    response = client.responses.create(
        model="chat", input="basil", tools=[{"type": "file_search", "vector_store_ids": [store.id]}]
    )
    call = response.output[0]
    assert call.type == "file_search_call" and call.status == "completed" and call.results is None


def test_a_stream_has_the_file_search_events(client: openai.OpenAI, store: Any) -> None:
    events = list(
        client.responses.create(
            model="chat",
            input="Where does the basil grow?",
            tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
            stream=True,
        )
    )
    kinds = [e.type for e in events]
    for kind in (
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
    ):
        assert kind in kinds, kinds
    assert kinds.index("response.file_search_call.completed") < kinds.index("response.output_text.done")
    added = next(e for e in events if e.type == "response.output_item.added" and e.item.type == "file_search_call")
    assert added.item.status == "in_progress" and added.item.queries == ["Where does the basil grow?"]
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "The basil grows in the hydroponic bay [kestrel.md]."


def test_another_keys_store_is_a_400_before_the_model_is_called(
    served: ServeProcess, store: Any, upstream: LoopbackServer
) -> None:
    other = openai.OpenAI(base_url=f"{served.root}/v1", api_key=OTHER, max_retries=0)
    asked = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as err:
        other.responses.create(
            model="chat", input="basil", tools=[{"type": "file_search", "vector_store_ids": [store.id]}]
        )
    assert f"No such vector store: {store.id}" in str(err.value)
    assert err.value.body["param"].startswith("tools")  # type: ignore[index]
    assert len(upstream.requests) == asked  # no model time spent


def test_a_file_search_tool_without_stores_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="chat", input="basil", tools=[{"type": "file_search", "vector_store_ids": []}])
    assert "vector_store_ids" in str(err.value)


async def test_an_openai_agents_agent_uses_file_search_through_the_gateway(served: ServeProcess, store: Any) -> None:
    from agents import Agent, FileSearchTool, OpenAIResponsesModel, Runner, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=f"{served.root}/v1", api_key=KEY, max_retries=0)
    agent = Agent(
        name="station",
        instructions="Answer from the station's files.",
        model=OpenAIResponsesModel(model="chat", openai_client=client),
        tools=[FileSearchTool(vector_store_ids=[store.id], max_num_results=3, include_search_results=True)],
    )
    result = await Runner.run(agent, "Where does the basil grow?")
    assert result.final_output == "The basil grows in the hydroponic bay [kestrel.md]."
    calls = [i.raw_item for i in result.new_items if getattr(i.raw_item, "type", "") == "file_search_call"]
    assert len(calls) == 1 and calls[0].status == "completed"
    assert calls[0].results and calls[0].results[0].filename == "kestrel.md"
    await client.close()
