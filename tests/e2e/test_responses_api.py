"""The Responses API against the echo provider, driven by the official openai SDK and raw HTTP.

Every body and every stream event is checked against OpenAI's official OpenAPI spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from modelmux.sse import SSEParser
from modelmux.testing import RunningGateway, run_gateway, validate
from modelmux.testing.openapi import spec

KEY_A, KEY_B = "key-alpha-123", "key-beta-456"
CONFIG: dict[str, Any] = {
    "server": {"api_keys": [KEY_A, KEY_B]},
    "providers": {"echo": {"type": "echo"}},
    "models": {
        "echo": {"provider": "echo", "model": "echo"},
        "echo-strict": {"provider": "echo", "model": "echo", "strict_tools": True},
    },
}


def _event_schemas() -> dict[str, str]:
    schemas = spec()["components"]["schemas"]
    out = {}
    for ref in schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        out[schemas[name]["properties"]["type"]["enum"][0]] = name
    return out


EVENT_SCHEMAS = _event_schemas()


def stream_events(gw: RunningGateway, body: dict[str, Any], key: str = KEY_A) -> list[dict[str, Any]]:
    """POST a streaming request; every event validated against its own schema in the spec."""
    events = []
    parser = SSEParser()
    with httpx.stream(
        "POST", f"{gw.url}/responses", json={**body, "stream": True}, headers={"authorization": f"Bearer {key}"}
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for chunk in r.iter_bytes():
            for ev in parser.feed(chunk):
                payload = orjson.loads(ev.data)
                assert ev.event == payload["type"]
                validate(EVENT_SCHEMAS[payload["type"]], payload)
                events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def raw(gw: RunningGateway, method: str, path: str, key: str = KEY_A, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{gw.url}{path}", headers={"authorization": f"Bearer {key}"}, **kw)


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    with run_gateway(CONFIG) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url, api_key=KEY_A, max_retries=0)


def test_create_answers_a_valid_response_and_retrieve_returns_it(gw: RunningGateway, client: openai.OpenAI) -> None:
    r = client.responses.create(
        model="echo", input="hello there", instructions="be brief", metadata={"team": "a"}, temperature=0.5
    )
    assert r.id.startswith("resp_") and r.status == "completed" and r.output_text == "hello there"
    assert r.output[0].type == "message" and r.output[0].id.startswith("msg_")
    body = raw(gw, "GET", f"/responses/{r.id}").json()
    validate("Response", body)
    assert body["instructions"] == "be brief" and body["metadata"] == {"team": "a"} and body["temperature"] == 0.5
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] == 2
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    assert client.responses.retrieve(r.id).output_text == "hello there"


def test_non_stream_body_is_valid_against_the_spec(gw: RunningGateway) -> None:
    r = raw(gw, "POST", "/responses", json={"model": "echo", "input": [{"role": "user", "content": "x y"}]})
    assert r.status_code == 200 and r.headers["x-modelmux-provider"] == "echo"
    validate("Response", r.json())


def test_stream_gives_the_full_event_sequence(gw: RunningGateway) -> None:
    events = stream_events(gw, {"model": "echo", "input": "one two three"})
    types = [e["type"] for e in events]
    assert types[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["one", " two", " three"]  # one event per upstream chunk, not one buffered answer
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["output"][0]["content"][0]["text"] == "one two three"
    assert final["usage"]["output_tokens"] == 3
    assert raw(gw, "GET", f"/responses/{final['id']}").json() == final


def test_sdk_stream_and_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="echo", input="streamed words") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "streamed words" and final.output_text == "streamed words"
    assert client.responses.retrieve(final.id).output_text == "streamed words"


def test_previous_response_id_chains_and_input_items_are_per_response(client: openai.OpenAI) -> None:
    first = client.responses.create(model="echo", input="first turn")
    second = client.responses.create(model="echo", input="second turn", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "second turn"
    items = client.responses.input_items.list(second.id)
    assert [i.content[0].text for i in items.data] == ["second turn"]  # type: ignore[union-attr]
    # an item_reference resolves among the conversation's items
    ref = client.responses.create(
        model="echo",
        input=[{"type": "item_reference", "id": first.output[0].id}],
        previous_response_id=second.id,
    )
    assert ref.status == "completed"
    listed = client.responses.input_items.list(ref.id)
    assert listed.data[0].id == first.output[0].id


def test_unknown_item_reference_is_a_400(gw: RunningGateway) -> None:
    r = raw(gw, "POST", "/responses", json={"model": "echo", "input": [{"type": "item_reference", "id": "msg_nope"}]})
    assert r.status_code == 400 and "msg_nope" in r.json()["error"]["message"]


def test_input_items_pagination(gw: RunningGateway, client: openai.OpenAI) -> None:
    r = client.responses.create(model="echo", input=[{"role": "user", "content": f"m{i}"} for i in range(5)])
    asc = raw(gw, "GET", f"/responses/{r.id}/input_items", params={"order": "asc", "limit": 2}).json()
    validate("ResponseItemList", asc)
    assert [i["content"][0]["text"] for i in asc["data"]] == ["m0", "m1"] and asc["has_more"] is True
    nxt = raw(
        gw, "GET", f"/responses/{r.id}/input_items", params={"order": "asc", "limit": 2, "after": asc["last_id"]}
    ).json()
    assert [i["content"][0]["text"] for i in nxt["data"]] == ["m2", "m3"] and nxt["has_more"] is True
    desc = raw(gw, "GET", f"/responses/{r.id}/input_items").json()
    assert [i["content"][0]["text"] for i in desc["data"]] == ["m4", "m3", "m2", "m1", "m0"]
    assert desc["has_more"] is False and desc["first_id"] == desc["data"][0]["id"]
    # the SDK follows the cursor through every page
    texts = [i.content[0].text for i in client.responses.input_items.list(r.id, limit=2, order="asc")]  # type: ignore[union-attr]
    assert texts == ["m0", "m1", "m2", "m3", "m4"]
    bad = raw(gw, "GET", f"/responses/{r.id}/input_items", params={"limit": 0})
    assert bad.status_code == 400 and "limit" in bad.json()["error"]["message"]
    bad = raw(gw, "GET", f"/responses/{r.id}/input_items", params={"after": "msg_unknown"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "after"


def test_store_false_keeps_nothing(gw: RunningGateway, client: openai.OpenAI) -> None:
    r = client.responses.create(model="echo", input="ephemeral", store=False, include=["reasoning.encrypted_content"])
    assert r.output_text == "ephemeral" and r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    cont = raw(gw, "POST", "/responses", json={"model": "echo", "input": "x", "previous_response_id": r.id})
    assert cont.status_code == 404 and cont.json()["error"]["param"] == "previous_response_id"
    events = stream_events(gw, {"model": "echo", "input": "ephemeral stream", "store": False})
    assert raw(gw, "GET", f"/responses/{events[-1]['response']['id']}").status_code == 404


def test_delete_removes_the_response_from_the_chain(gw: RunningGateway, client: openai.OpenAI) -> None:
    r = client.responses.create(model="echo", input="to be deleted")
    assert raw(gw, "DELETE", f"/responses/{r.id}").json() == {"id": r.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError) as exc:
        client.responses.create(model="echo", input="continue", previous_response_id=r.id)
    assert "deleted" in str(exc.value) and r.id in str(exc.value)
    other = client.responses.create(model="echo", input="sdk delete")
    client.responses.delete(other.id)
    assert raw(gw, "GET", f"/responses/{other.id}/input_items").status_code == 404


def test_responses_belong_to_the_key_that_created_them(gw: RunningGateway) -> None:
    mine = raw(gw, "POST", "/responses", json={"model": "echo", "input": "secret"}).json()["id"]
    for method, path in (("GET", f"/responses/{mine}"), ("GET", f"/responses/{mine}/input_items")):
        assert raw(gw, method, path, key=KEY_B).status_code == 404
        assert raw(gw, method, path, key=KEY_A).status_code == 200
    cont = raw(gw, "POST", "/responses", key=KEY_B, json={"model": "echo", "input": "x", "previous_response_id": mine})
    assert cont.status_code == 404
    assert raw(gw, "DELETE", f"/responses/{mine}", key=KEY_B).status_code == 404
    assert raw(gw, "GET", f"/responses/{mine}").status_code == 200  # still there for its owner
    assert httpx.get(f"{gw.url}/responses/{mine}").status_code == 401


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": "x"}, "model", "Missing"),
        ({"model": "echo", "input": 5}, "input", "string"),
        ({"model": "echo", "input": [{"role": "robot", "content": "x"}]}, "input[0].role", "robot"),
        ({"model": "echo", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id", "Missing"),
        (
            {"model": "echo", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
            "Missing",
        ),
        ({"model": "echo", "input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "16"),
        ({"model": "echo", "input": "x", "metadata": {"k" * 65: "v"}}, "metadata", "64"),
        ({"model": "echo", "input": "x", "metadata": {"k": "v" * 513}}, "metadata", "512"),
        ({"model": "echo", "input": "x", "metadata": {"k": 1}}, "metadata.k", "string"),
        ({"model": "echo", "input": "x", "temperature": 3}, "temperature", "less than or equal to 2"),
        (
            {"model": "echo", "input": "x", "tools": [{"type": "function", "name": "has space"}]},
            "tools[0].name",
            "pattern",
        ),
        ({"model": "echo", "input": "x", "tool_choice": "sometimes"}, "tool_choice", "required"),
        ({"model": "echo", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type", "json_schema"),
        ({"model": "echo", "input": "x", "conversation": "conv_1"}, "conversation", "previous_response_id"),
        ({"model": "echo"}, "input", "input"),
        ({"model": "nope", "input": "x"}, "model", "nope"),
    ],
)
def test_bad_requests_get_a_clear_4xx(gw: RunningGateway, body: dict[str, Any], param: str, words: str) -> None:
    r = raw(gw, "POST", "/responses", json=body)
    assert 400 <= r.status_code < 500, r.text
    err = r.json()["error"]
    assert err["param"] == param and words in err["message"], err


def test_every_spec_field_and_tool_type_is_accepted(gw: RunningGateway) -> None:
    body = {
        "model": "echo",
        "input": [
            {"role": "developer", "content": "dev note"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "all fields"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
        ],
        "store": True,
        "include": ["reasoning.encrypted_content", "message.output_text.logprobs"],
        "prompt_cache_key": "pck",
        "client_metadata": {"x": "y"},
        "safety_identifier": "user-1",
        "service_tier": "auto",
        "truncation": "auto",
        "background": False,
        "max_tool_calls": 3,
        "top_logprobs": 2,
        "stream_options": {"include_obfuscation": False},
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "tool_choice": {"type": "web_search_preview"},
        "tools": [
            {"type": "web_search"},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "mcp", "server_label": "srv", "server_url": "https://example.com/mcp"},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "image_generation"},
            {"type": "computer_use_preview", "display_width": 10, "display_height": 10, "environment": "linux"},
            {"type": "local_shell"},
            {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}, "strict": False},
            {"type": "custom", "name": "raw_tool", "description": "free text"},
            {
                "type": "namespace",
                "name": "ns",
                "description": "a group",
                "tools": [{"type": "function", "name": "g", "parameters": None, "strict": None}],
            },
        ],
    }
    r = raw(gw, "POST", "/responses", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["x-modelmux-dropped-tools"] == (
        "web_search,file_search,mcp,code_interpreter,image_generation,computer_use_preview,local_shell"
    )
    validate("Response", r.json())
    assert r.json()["output_text" if False else "output"][0]["content"][0]["text"] == "all fields"


def test_strict_tools_model_rejects_a_builtin_tool_by_name(gw: RunningGateway) -> None:
    body = {"model": "echo-strict", "input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]}
    r = raw(gw, "POST", "/responses", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "tools[1]" and "web_search" in err["message"] and "strict_tools" in err["message"]
    ok = raw(gw, "POST", "/responses", json={**body, "tools": [{"type": "function", "name": "f"}]})
    assert ok.status_code == 200 and "x-modelmux-dropped-tools" not in ok.headers


def test_conversation_survives_a_restart_with_the_disk_store(tmp_path: Path) -> None:
    config = {"state": {"backend": "disk", "path": str(tmp_path / "state")}}
    with run_gateway(config) as first:
        c = openai.OpenAI(base_url=first.url, api_key="unused", max_retries=0)
        r1 = c.responses.create(model="echo", input="before restart")
    with run_gateway(config) as second:
        c = openai.OpenAI(base_url=second.url, api_key="unused", max_retries=0)
        assert c.responses.retrieve(r1.id).output_text == "before restart"
        r2 = c.responses.create(model="echo", input="after restart", previous_response_id=r1.id)
        assert r2.output_text == "after restart"
        body = raw(second, "GET", f"/responses/{r2.id}").json()
        validate("Response", body)
        assert body["previous_response_id"] == r1.id
