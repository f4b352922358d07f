"""Shared fixtures for the host's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import openai
import pytest

from modelmux.testing import RunningGateway, run_gateway


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
        "models": {"assistant": {"provider": "echo", "model": "echo"}},
    }
    with run_gateway(config) as gw:
        yield {
            **os.environ,
            "OPENAI_BASE_URL": gw.url,
            "OPENAI_API_KEY": "sk-examples-key",
            "OPENAI_MODEL": "assistant",
        }
