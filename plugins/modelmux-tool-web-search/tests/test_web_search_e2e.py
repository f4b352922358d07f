"""End to end: the official openai SDK -> a real ``modelmux serve`` -> a fake chat model that
calls ``web_search`` and then answers citing [n], with the search run by the gateway against a
fake SearXNG. Everything over loopback HTTP."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from modelmux.testing import ServeProcess, validate


@pytest.fixture
def client(served: ServeProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.root + "/v1", api_key="unused", max_retries=0)


def output_of(response: Any) -> list[dict[str, Any]]:
    """The Response's output items as JSON (what the client received, SDK types aside)."""
    items: list[dict[str, Any]] = response.model_dump(mode="json", exclude_unset=True)["output"]
    return items


def annotations_of(response: Any) -> tuple[str, list[dict[str, Any]]]:
    (message,) = [item for item in output_of(response) if item["type"] == "message"]
    (part,) = message["content"]
    return part["text"], part["annotations"]


def test_a_search_gives_a_web_search_call_and_citations(
    client: openai.OpenAI, queries: list[dict[str, Any]], chat_requests: list[dict[str, Any]]
) -> None:
    response = client.responses.create(model="fake", tools=[{"type": "web_search"}], input="python 3.13 release")

    assert [q["params"]["q"] for q in queries] == ["python 3.13 release"]
    first, second = chat_requests
    (function,) = first["tools"]
    assert function["type"] == "function" and function["function"]["name"] == "web_search"
    (tool_message,) = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_message["tool_call_id"] == "call_ws1"
    assert "[1] Welcome to Python.org — https://www.python.org/" in tool_message["content"]

    call, message = output_of(response)
    assert call["type"] == "web_search_call" and call["status"] == "completed" and call["id"].startswith("ws_")
    assert call["action"]["type"] == "search" and call["action"]["query"] == "python 3.13 release"
    assert "sources" not in call["action"], "sources only when include asks for them"
    assert message["type"] == "message"
    text, annotations = annotations_of(response)
    assert text.strip() == "Python 3.13 is out [1]; see what is new [2, 3]."
    assert [(a["url"], a["title"], text[a["start_index"] : a["end_index"]]) for a in annotations] == [
        ("https://www.python.org/", "Welcome to Python.org", "[1]"),
        ("https://docs.python.org/3/whatsnew/3.13.html", "What's New In Python 3.13", "[2, 3]"),
        (
            "https://en.wikipedia.org/wiki/Python_(programming_language)",
            "Python (programming language) - Wikipedia",
            "[2, 3]",
        ),
    ]
    assert response.usage is not None and response.usage.total_tokens == 60, "usage summed over both model calls"
    validate("Response", response.model_dump(mode="json", exclude_unset=True))


def test_include_asks_for_the_sources(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="fake",
        tools=[{"type": "web_search_preview"}],
        include=["web_search_call.action.sources"],
        input="python 3.13 release",
    )
    call = output_of(response)[0]
    assert call["type"] == "web_search_call"
    assert [s["url"] for s in call["action"]["sources"]] == [
        "https://www.python.org/",
        "https://docs.python.org/3/whatsnew/3.13.html",
        "https://en.wikipedia.org/wiki/Python_(programming_language)",
    ]


def test_a_stream_has_the_search_events_and_the_citations(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="fake", tools=[{"type": "web_search_2025_08_26"}], input="python 3.13 release"
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()

    names = [e.type for e in events]
    search = [n for n in names if n.startswith("response.web_search_call.")]
    assert search == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    added = [e.model_dump(mode="json")["item"] for e in events if e.type == "response.output_item.added"]
    done = [e.model_dump(mode="json")["item"] for e in events if e.type == "response.output_item.done"]
    assert [i["type"] for i in added] == [i["type"] for i in done] == ["web_search_call", "message"]
    assert added[0]["status"] == "in_progress"
    assert done[0]["status"] == "completed" and done[0]["action"]["query"] == "python 3.13 release"
    assert names[0] == "response.created" and names[-1] == "response.completed"
    text, annotations = annotations_of(final)
    assert "Python 3.13 is out [1]" in text
    assert annotations[0]["url"] == "https://www.python.org/"
    assert text[annotations[0]["start_index"] : annotations[0]["end_index"]] == "[1]"


def test_two_searches_in_one_round_number_their_results_apart(
    client: openai.OpenAI, queries: list[dict[str, Any]], chat_requests: list[dict[str, Any]]
) -> None:
    response = client.responses.create(model="fake", tools=[{"type": "web_search"}], input="search twice")

    assert sorted(q["params"]["q"] for q in queries) == ["python 3.13 free threading", "python 3.13 release"]
    calls = [item for item in output_of(response) if item["type"] == "web_search_call"]
    assert [c["action"]["query"] for c in calls] == ["python 3.13 release", "python 3.13 free threading"]
    answers = {m["tool_call_id"]: m["content"] for m in chat_requests[1]["messages"] if m["role"] == "tool"}
    firsts = sorted(int(text.split("e.g. [", 1)[1].split("]", 1)[0]) for text in answers.values())
    assert firsts == [1, 4], "the second search's results are numbered after the first's"
    text, annotations = annotations_of(response)
    assert [text[a["start_index"] : a["end_index"]] for a in annotations] == ["[1]", "[4]"]


def test_a_backend_failure_is_a_failed_call_and_still_an_answer(
    client: openai.OpenAI, served: ServeProcess, queries: list[dict[str, Any]]
) -> None:
    response = client.responses.create(model="fake", tools=[{"type": "web_search"}], input="boom")

    assert [q["params"]["q"] for q in queries] == ["boom"]
    call, _ = output_of(response)
    assert call["type"] == "web_search_call" and call["status"] == "failed"
    text, annotations = annotations_of(response)
    assert text.strip() == "I could not search the web: the search failed." and annotations == []
    logs = served.logs()
    assert "web_search failed" in logs and "answered HTTP 500" in logs
    assert "sk-searx-never-logged" not in logs


def test_a_malformed_tool_entry_is_a_400_before_any_model_call(
    client: openai.OpenAI, chat_requests: list[dict[str, Any]]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="fake",
            tools=[{"type": "web_search", "filters": {"allowed_domains": ["not a domain"]}}],
            input="x",
        )
    assert caught.value.status_code == 400
    assert "allowed_domains has an invalid domain" in caught.value.message
    assert chat_requests == []


def test_the_searxng_key_reaches_searxng_and_no_log(
    served: ServeProcess, client: openai.OpenAI, queries: list[dict[str, Any]]
) -> None:
    client.responses.create(model="fake", tools=[{"type": "web_search"}], input="python")
    assert queries[0]["headers"]["Authorization"] == "Bearer sk-searx-never-logged"
    assert "sk-searx-never-logged" not in served.logs()
