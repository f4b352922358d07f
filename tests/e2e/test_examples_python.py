"""examples/python run as a user runs them (a subprocess with the environment set) against a
real gateway serving echo, and print what they are meant to show."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"
NAMES = ["chat.py", "streaming.py", "tools.py", "responses.py", "structured_output.py", "embeddings.py"]


@pytest.fixture(scope="module")
def run(run_examples: Callable[[dict[str, list[str]]], Callable[[str], str]]) -> Callable[[str], str]:
    """Every example run once, all at the same time: most of each one's time is importing openai."""
    return run_examples({name: [sys.executable, str(EXAMPLES / name)] for name in NAMES})


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(NAMES)


def test_chat_prints_the_answer_from_the_model_named_in_the_environment(run: Callable[[str], str]) -> None:
    lines = run("chat.py").splitlines()
    assert lines[0] == "Say hello to ModelMux in one short sentence."
    assert lines[1].startswith("[model assistant, ")


def test_streaming_prints_the_answer_in_pieces(run: Callable[[str], str]) -> None:
    out = run("streaming.py")
    assert out.startswith("Count from one to ten in words, please.\n")
    assert "[8 pieces, 8 completion tokens]" in out  # one piece per word


def test_tools_runs_the_tool_and_sends_the_result_back(run: Callable[[str], str]) -> None:
    out = run("tools.py")
    assert out.splitlines() == [
        "tool call: get_weather({'city': 'Paris'}) -> It is 18 °C and sunny in Paris.",
        "answer: It is 18 °C and sunny in Paris.",
    ]


def test_responses_second_turn_continues_the_first(run: Callable[[str], str]) -> None:
    out = run("responses.py")
    first = re.search(r"^turn 1 (resp_\w+): My name is Ada", out, re.M)
    assert first, out
    assert f"(previous_response_id={first.group(1)}): What is my name?" in out
    tokens = re.search(r"input tokens: turn 1 (\d+), turn 2 (\d+)", out)
    assert tokens and int(tokens.group(2)) > int(tokens.group(1)) + 4, out  # turn 1 came along


def test_structured_output_parses_into_the_pydantic_model(run: Callable[[str], str]) -> None:
    out = run("structured_output.py")
    assert 'JSON: {"name": "Paris", "population": 2100000}' in out
    assert "parsed: City(name='Paris', population=2100000)" in out


def test_embeddings_ranks_the_documents_by_similarity_to_the_question(run: Callable[[str], str]) -> None:
    lines = run("embeddings.py").splitlines()
    assert lines[0] == "4 vectors of 256 dimensions from embedder"
    scores = [float(line.split()[0]) for line in lines[1:4]]
    assert scores == sorted(scores, reverse=True)
    assert lines[1].endswith("The cat sleeps on the warm windowsill.")  # shares the most words with the question
    assert re.fullmatch(r"\[\d+ prompt tokens\]", lines[4])
