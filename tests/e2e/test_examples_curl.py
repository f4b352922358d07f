"""examples/curl run with sh and curl against a real gateway serving echo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "curl"


def run(name: str, env: dict[str, str]) -> str:
    done = subprocess.run(["sh", str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_chat(examples_env: dict[str, str]) -> None:
    answer = json.loads(run("chat.sh", examples_env))
    assert answer["model"] == "assistant"
    assert answer["choices"][0]["message"]["content"] == "Say hello to ModelMux in one short sentence."


def test_streaming_is_server_sent_events_ending_in_done(examples_env: dict[str, str]) -> None:
    lines = [line for line in run("streaming.sh", examples_env).splitlines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    words = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert words == "Count from one to ten in words, please." and len(chunks) > 2


def test_responses_second_call_continues_the_first(examples_env: dict[str, str]) -> None:
    first, second = (json.loads(line) for line in run("responses.sh", examples_env).splitlines())
    assert first["output"][0]["content"][0]["text"] == "My name is Ada. Please remember it."
    assert second["previous_response_id"] == first["id"]
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"] + 4  # turn 1 came along


def test_models_lists_the_configured_name(examples_env: dict[str, str]) -> None:
    assert "assistant" in {m["id"] for m in json.loads(run("models.sh", examples_env))["data"]}


def test_embeddings_are_one_float_vector_per_input(examples_env: dict[str, str]) -> None:
    answer = json.loads(run("embeddings.sh", examples_env))
    assert answer["object"] == "list" and answer["model"] == "embedder"
    assert [d["index"] for d in answer["data"]] == [0, 1]
    assert all(len(d["embedding"]) == 8 and all(isinstance(x, float) for x in d["embedding"]) for d in answer["data"])


def test_a_wrong_key_fails_the_script_with_the_gateway_error(examples_env: dict[str, str]) -> None:
    done = subprocess.run(
        ["sh", str(EXAMPLES / "chat.sh")],
        env={**examples_env, "OPENAI_API_KEY": "wrong"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and json.loads(done.stdout.strip())["error"]["type"] == "invalid_request_error"


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.sh")) == [
        "chat.sh",
        "embeddings.sh",
        "models.sh",
        "responses.sh",
        "streaming.sh",
    ]
