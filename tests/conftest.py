"""Shared fixtures for the host's tests."""

from __future__ import annotations

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
