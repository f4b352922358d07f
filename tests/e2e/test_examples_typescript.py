"""examples/typescript type-check with tsc against the pinned openai package and run on Node
against a real gateway serving echo. `make install-node` (part of `make test`) installs their packages (npm ci)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "typescript"
NAMES = ["chat", "streaming", "tools"]


@pytest.fixture(scope="module")
def run(run_examples: Callable[[dict[str, list[str]]], Callable[[str], str]]) -> Callable[[str], str]:
    """tsc (type-checks, then writes dist/), then every example run once, all at the same time."""
    assert (EXAMPLES / "node_modules" / "openai").is_dir(), (
        "run `make install-node` (part of `make test`): it runs npm ci in examples/typescript"
    )
    tsc = subprocess.run(
        ["node", "node_modules/typescript/bin/tsc"], cwd=EXAMPLES, capture_output=True, text=True, timeout=120
    )
    assert tsc.returncode == 0, tsc.stdout + tsc.stderr

    return run_examples({name: ["node", str(EXAMPLES / "dist" / f"{name}.js")] for name in NAMES})


def test_every_example_is_tested() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.ts")) == sorted(NAMES)


def test_chat_prints_the_answer_from_the_model_named_in_the_environment(run: Callable[[str], str]) -> None:
    lines = run("chat").splitlines()
    assert lines[0] == "Say hello to ModelMux in one short sentence."
    assert lines[1].startswith("[model assistant, ")


def test_streaming_prints_the_answer_in_pieces(run: Callable[[str], str]) -> None:
    out = run("streaming")
    assert out.startswith("Count from one to ten in words, please.\n")
    assert "[8 pieces, 8 completion tokens]" in out


def test_tools_runs_the_tool_and_sends_the_result_back(run: Callable[[str], str]) -> None:
    assert run("tools").splitlines() == [
        'tool call: get_weather({"city": "Paris"}) -> It is 18 °C and sunny in Paris.',
        "answer: It is 18 °C and sunny in Paris.",
    ]
