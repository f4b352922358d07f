"""Shared fixtures for the host's tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from modelmux.logs import snapshot_logging
from modelmux.testing import RunningGateway, run_gateway


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A test that sets logging up (``setup_logging``) leaves it as it found it: else every later
    test's stdlib log records (aiohttp's tracebacks from the fakes) go through loguru to stderr."""
    saved = snapshot_logging()
    yield
    saved.restore()


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    """The real gateway with no configuration file content beyond a state dir: echo only."""
    with run_gateway({}) as gw:
        yield gw


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def examples_env() -> Iterator[dict[str, str]]:
    """The environment the examples read (examples/README.md), pointing at a real gateway that
    serves echo under another name and wants a client key, so both variables are seen to count."""
    config = {
        "server": {"api_keys": ["sk-examples-key"]},
        "providers": {"echo": {"type": "echo"}},
        "models": {
            "assistant": {"provider": "echo", "model": "echo"},
            "embedder": {"provider": "echo", "model": "echo"},
        },
    }
    with run_gateway(config) as gw:
        yield {
            **os.environ,
            "OPENAI_BASE_URL": gw.url,
            "OPENAI_API_KEY": "sk-examples-key",
            "OPENAI_MODEL": "assistant",
            "OPENAI_EMBEDDING_MODEL": "embedder",
        }


ExampleRunner = Callable[[dict[str, list[str]]], Callable[[str], str]]


@pytest.fixture(scope="module")
def run_examples(examples_env: dict[str, str]) -> ExampleRunner:
    """Runs every example command at the same time (most of each one's time is start-up) and
    returns a lookup of one example's standard output that fails on a non-zero exit."""

    def run_all(commands: dict[str, list[str]]) -> Callable[[str], str]:
        def start(argv: list[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(argv, env=examples_env, capture_output=True, text=True, encoding="utf-8", timeout=60)

        with ThreadPoolExecutor(len(commands)) as pool:
            done = dict(zip(commands, pool.map(start, commands.values()), strict=True))

        def output(name: str) -> str:
            assert done[name].returncode == 0, done[name].stderr
            return done[name].stdout

        return output

    return run_all
