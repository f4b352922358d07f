"""An ``openai-agents`` agent with ``WebSearchTool`` through a real ``modelmux serve``: the
framework sends the hosted tool as it would to OpenAI, this plugin searches the fake SearXNG,
and the framework parses the items, events and citations (their shapes seen by a real client)."""

from __future__ import annotations

from typing import Any

from agents import Agent, OpenAIResponsesModel, Runner, WebSearchTool, set_tracing_disabled
from openai import AsyncOpenAI

from modelmux.testing import ServeProcess


def agent(served: ServeProcess) -> Agent:
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=served.root + "/v1", api_key="unused", max_retries=0)
    return Agent(
        name="researcher",
        instructions="Search the web and cite your sources.",
        model=OpenAIResponsesModel(model="fake", openai_client=client),
        tools=[WebSearchTool(search_context_size="low")],
    )


async def test_an_agent_searches_and_cites_through_the_gateway(
    served: ServeProcess, queries: list[dict[str, Any]]
) -> None:
    result = await Runner.run(agent(served), "python 3.13 release")

    assert [q["params"]["q"] for q in queries] == ["python 3.13 release"]
    raw = [item.raw_item for item in result.new_items]
    assert [getattr(r, "type", None) for r in raw] == ["web_search_call", "message"]
    assert raw[0].status == "completed"
    assert str(result.final_output).strip() == "Python 3.13 is out [1]; see what is new [2, 3]."
    annotations = raw[1].content[0].annotations
    assert [a.url for a in annotations][:1] == ["https://www.python.org/"]


async def test_an_agent_streams_the_search_events(served: ServeProcess) -> None:
    run = Runner.run_streamed(agent(served), "python 3.13 release")
    kinds = [event.data.type async for event in run.stream_events() if event.type == "raw_response_event"]
    searching = [k for k in kinds if k.startswith("response.web_search_call.")]
    assert searching == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    assert "response.output_text.annotation.added" in kinds
    assert str(run.final_output).startswith("Python 3.13 is out [1]")
