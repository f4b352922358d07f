"""Test support for ModelMux and its plugins: contract suites, loopback servers, spec checks.

Needs the ``test`` extra (pytest, pytest-asyncio, jsonschema, openai).
"""

from modelmux.testing.contracts import CacheContract, ProviderContract, StateStoreContract
from modelmux.testing.openapi import validate
from modelmux.testing.servers import (
    LoopbackServer,
    RunningGateway,
    free_port,
    run_gateway,
    serve_aiohttp,
)

__all__ = [
    "CacheContract",
    "LoopbackServer",
    "ProviderContract",
    "RunningGateway",
    "StateStoreContract",
    "free_port",
    "run_gateway",
    "serve_aiohttp",
    "validate",
]
