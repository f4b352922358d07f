"""Test support for ModelMux and its plugins: contract suites, loopback servers, spec checks.

With ``modelmux.plugin``, the only host modules a plugin's tests import. Installing ModelMux
also installs a pytest plugin (``modelmux.testing.fixtures``): the ``host``, ``provider``,
``store``, ``cache``, ``tool`` and ``serve_upstream`` fixtures. Needs the ``test`` extra (pytest,
pytest-asyncio, jsonschema, openai).

The names load on first use, so the pytest plugin costs nothing in a test run that uses none
of them (and needs none of the test extra's libraries).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmux.testing.config import ConfigError, cli, load_config
    from modelmux.testing.contracts import CacheContract, ProviderContract, StateStoreContract
    from modelmux.testing.faults import Fault, FaultyUpstream
    from modelmux.testing.fixtures import upstream_fixture
    from modelmux.testing.openapi import spec, validate
    from modelmux.testing.process import ServeProcess, metric, serve_process
    from modelmux.testing.servers import (
        LoopbackServer,
        RunningGateway,
        fake_embedding,
        fake_embeddings_answer,
        free_port,
        run_gateway,
        serve_aiohttp,
    )
    from modelmux.testing.tool_contract import ToolContract, fake_embed

_WHERE = {
    "CacheContract": "contracts",
    "ConfigError": "config",
    "Fault": "faults",
    "FaultyUpstream": "faults",
    "LoopbackServer": "servers",
    "ProviderContract": "contracts",
    "RunningGateway": "servers",
    "ServeProcess": "process",
    "StateStoreContract": "contracts",
    "ToolContract": "tool_contract",
    "cli": "config",
    "fake_embed": "tool_contract",
    "fake_embedding": "servers",
    "fake_embeddings_answer": "servers",
    "free_port": "servers",
    "load_config": "config",
    "metric": "process",
    "run_gateway": "servers",
    "serve_aiohttp": "servers",
    "serve_process": "process",
    "spec": "openapi",
    "upstream_fixture": "fixtures",
    "validate": "openapi",
}

__all__ = [
    "CacheContract",
    "ConfigError",
    "Fault",
    "FaultyUpstream",
    "LoopbackServer",
    "ProviderContract",
    "RunningGateway",
    "ServeProcess",
    "StateStoreContract",
    "ToolContract",
    "cli",
    "fake_embed",
    "fake_embedding",
    "fake_embeddings_answer",
    "free_port",
    "load_config",
    "metric",
    "run_gateway",
    "serve_aiohttp",
    "serve_process",
    "spec",
    "upstream_fixture",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'modelmux.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"modelmux.testing.{module}"), name)
    globals()[name] = value
    return value
