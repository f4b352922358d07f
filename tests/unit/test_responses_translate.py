"""The Responses <-> chat translators on their own: shapes the fake upstreams do not produce.

Every event and object they give is checked against the official spec.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelmux.errors import InvalidRequestError, UpstreamError
from modelmux.testing import validate
from modelmux.testing.openapi import spec
from modelmux.translate.responses import ToolNames, response_skeleton
from modelmux.translate.responses_output import completion_to_response
from modelmux.translate.responses_request import chat_request, normalize_input
from modelmux.translate.responses_stream import ResponseEvents

SCHEMAS = spec()["components"]["schemas"]
EVENT_SCHEMAS = {
    SCHEMAS[name]["properties"]["type"]["enum"][0]: name
    for name in (r["$ref"].rsplit("/", 1)[-1] for r in SCHEMAS["ResponseStreamEvent"]["anyOf"])
}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def run(chunks: list[dict[str, Any]], body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    body = body or {"model": "m", "input": "x"}
    plan = chat_request(body, normalize_input(body["input"], []), stream=True)
    translator = ResponseEvents(response_skeleton(body), plan.names)
    events = translator.start()
    for c in chunks:
        events += translator.feed(c)
    events += translator.finish()
    for event in events:
        validate(EVENT_SCHEMAS[event["type"]], event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_text_then_two_interleaved_tool_calls() -> None:
    tools = [{"type": "function", "name": n, "parameters": {"type": "object"}} for n in ("a", "b")]
    events = run(
        [
            chunk({"role": "assistant", "content": "Let me "}),
            chunk({"content": "check."}),
            chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "a", "arguments": '{"x"'}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "b", "arguments": '{"y"'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": ": 2}"}}]}),
            chunk({}, "tool_calls"),
        ],
        {"model": "m", "input": "x", "tools": tools},
    )
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed"
    assert [i["type"] for i in final["output"]] == ["message", "function_call", "function_call"]
    assert final["output"][0]["content"][0]["text"] == "Let me check."
    assert [(i["call_id"], i["arguments"]) for i in final["output"][1:]] == [
        ("call_a", '{"x": 1}'),
        ("call_b", '{"y": 2}'),
    ]
    deltas = [(e["output_index"], e["delta"]) for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas == [(1, '{"x"'), (2, '{"y"'), (1, ": 1}"), (2, ": 2}")]
    # the message closed before the first call opened
    types = [e["type"] for e in events]
    assert types.index("response.output_text.done") < types.index("response.function_call_arguments.delta")
    validate("Response", final)


def test_refusal_is_its_own_content_part() -> None:
    events = run([chunk({"refusal": "I can't "}), chunk({"refusal": "help."}), chunk({}, "stop")])
    assert [e["refusal"] for e in events if e["type"] == "response.refusal.done"] == ["I can't help."]
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help."}]


def test_no_usage_and_no_output_is_still_a_valid_response() -> None:
    events = run([chunk({"role": "assistant"}), chunk({}, "stop")])
    assert events[-1]["response"]["output"] == [] and "usage" not in events[-1]["response"]


def test_failure_after_output_keeps_the_finished_items() -> None:
    body = {"model": "m", "input": "x"}
    translator = ResponseEvents(response_skeleton(body), ToolNames())
    translator.start()
    translator.feed(chunk({"content": "partial"}))
    failed, error = translator.fail("upstream went away", "upstream_error")
    validate("ResponseFailedEvent", failed)
    validate("ResponseErrorEvent", error)
    assert failed["response"]["status"] == "failed" and failed["response"]["error"]["message"] == "upstream went away"
    assert error["error"]["message"] == "upstream went away"  # the shape the openai SDK raises on


def test_assistant_and_output_items_are_stored_in_the_spec_item_shape() -> None:
    items = normalize_input(
        [
            {"role": "system", "content": "s"},
            {"role": "assistant", "content": "earlier answer"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
        [],
    )
    for item in items:
        validate("ItemResource", item)
    assert items[1]["content"] == [{"type": "output_text", "text": "earlier answer", "annotations": [], "logprobs": []}]


def test_tool_names_that_collide_after_flattening_are_a_400() -> None:
    tools = [
        {"type": "function", "name": "ns__f"},
        {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]},
    ]
    with pytest.raises(InvalidRequestError) as exc:
        chat_request({"model": "m", "tools": tools}, normalize_input("x", []), stream=False)
    assert "ns__f" in exc.value.message and exc.value.param == "tools[1].tools[0]"


def test_allowed_tools_narrows_what_is_sent() -> None:
    tools = [{"type": "function", "name": n} for n in ("a", "b", "c")]
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]}
    plan = chat_request({"model": "m", "tools": tools, "tool_choice": choice}, normalize_input("x", []), stream=False)
    assert [t["function"]["name"] for t in plan.body["tools"]] == ["b"] and plan.body["tool_choice"] == "required"


def test_files_the_gateway_cannot_resolve_are_a_400() -> None:
    items = normalize_input([{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}], [])
    with pytest.raises(InvalidRequestError) as exc:
        chat_request({"model": "m"}, items, stream=False)
    assert "file_id" in exc.value.message and exc.value.param == "input[0].content[0]"


def test_a_completion_without_choices_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        completion_to_response({"choices": []}, response_skeleton({"model": "m"}), ToolNames())
