"""The pytest plugin of ``modelmux.testing``: the fixtures every plugin's tests share.

Registered through the ``pytest11`` entry point of the ``modelmux`` package, so a test run
in an environment where ModelMux is installed has them without a conftest. The async ones
need pytest-asyncio in auto mode (``asyncio_mode = "auto"``), as the contract suites do.
A test module, class or conftest replaces any of them with a fixture of the same name.

- ``host``: the ``Host`` the gateway gives a provider (the pooled upstream client, the server
  settings from ``server_settings``, the image fetcher), closed after the test.
- ``provider``: made from ``provider_config`` (a ``[providers.NAME]`` table as a dict) the way
  the gateway makes one: the table validated by the settings model the plugin registered,
  then its factory; closed after the test.
- ``store`` / ``cache``: opened from ``store_config`` / ``cache_config`` (a ``[state]`` /
  ``[cache]`` table with its ``backend``) the way the gateway opens them; closed after.
- ``tool``: made from ``tool_config`` (a ``[tools.TYPE]`` table as a dict, with ``type``) the
  way the gateway makes one, started, closed after. ``tool_context``: the ``ToolContext`` a tool
  gets per request, whose ``embed`` is ``tool_embed`` (deterministic fake embeddings by default).
- ``serve_upstream``: ``serve_upstream(app)`` serves an aiohttp app (a fake upstream) on
  loopback until the test ends. ``upstream_fixture(make_app)`` makes a module-scoped one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

# Failing contract checks then show the values compared, as asserts in test files do.
pytest.register_assert_rewrite("modelmux.testing.contracts", "modelmux.testing.tool_contract")


def pytest_configure(config: pytest.Config) -> None:
    """Keep the host's modules out of assertion rewriting.

    pytest marks the whole package holding a plugin's entry point for rewriting: every later
    import of a ``modelmux`` module would parse its source again (its bytecode unused), also in
    ``run_gateway``'s thread, and two threads parsing at once trip a CPython 3.11 bug ("AST
    constructor recursion depth mismatch"). pytest has no public way to unmark a name, hence the
    guarded private access; only the contract suites stay marked.
    """
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if isinstance(marked, set) and "modelmux" in marked:
        marked.discard("modelmux")
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if isinstance(cache, dict):
            cache.clear()


if TYPE_CHECKING:
    from aiohttp import web

    from modelmux.plugins import Plugins
    from modelmux.provider import Host, Provider
    from modelmux.stores import Cache, StateStore
    from modelmux.testing.servers import LoopbackServer
    from modelmux.tools import Embedder, Tool, ToolContext


@pytest.fixture(scope="session")
def modelmux_plugins() -> Plugins:
    """Every installed plugin, found through its entry point as ``modelmux serve`` finds it."""
    from modelmux.plugins import load_plugins

    return load_plugins()


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """The ``[server]`` table ``host`` is made with, e.g. ``{"url_fetch_allow": ["127.0.0.1"]}``."""
    return {}


@pytest.fixture
async def host(server_settings: dict[str, Any]) -> AsyncIterator[Host]:
    from modelmux.config import ServerSettings
    from modelmux.http import open_client
    from modelmux.images import ImageFetcher
    from modelmux.provider import Host

    server = ServerSettings.model_validate(server_settings)
    http = open_client()
    images = ImageFetcher(server.url_fetch_allow)
    yield Host(http=http, server=server, images=images)
    await http.close()
    await images.aclose()


@pytest.fixture
def provider_config() -> dict[str, Any]:
    raise pytest.UsageError(
        "the provider fixture is made from a provider_config fixture: define one returning the "
        '[providers.NAME] table as a dict, e.g. {"type": "ollama", "base_url": fake.url} '
        '(optionally "name"), or define provider itself'
    )


@pytest.fixture
async def provider(provider_config: dict[str, Any], host: Host, modelmux_plugins: Plugins) -> AsyncIterator[Provider]:
    table = dict(provider_config)
    kind = str(table.get("type"))
    reg = modelmux_plugins.registry.providers.get(kind)
    if reg is None:
        known = ", ".join(modelmux_plugins.registry.provider_types())
        raise pytest.UsageError(f"provider_config: no installed plugin registers the type {kind!r} (known: {known})")
    made: Provider = reg.factory(str(table.pop("name", kind)), reg.settings_model.model_validate(table), host)
    yield made
    await made.aclose()


def _open_backend(section: str, config: dict[str, Any], plugins: Plugins) -> Any:
    table = dict(config)
    backend = str(table.pop("backend", ""))
    registry = plugins.registry.state_stores if section == "state" else plugins.registry.caches
    reg = registry.get(backend)
    if reg is None:
        raise pytest.UsageError(
            f"{section} config: no installed plugin registers the backend {backend!r} (known: {', '.join(registry)})"
        )
    table.setdefault("namespace", section)  # as the host sets it: one backend may serve both
    return reg.factory(reg.settings_model.model_validate(table))


@pytest.fixture
def store_config() -> dict[str, Any]:
    raise pytest.UsageError(
        "the store fixture is opened from a store_config fixture: define one returning the [state] "
        'table as a dict, e.g. {"backend": "redis", "url": "redis://127.0.0.1:6379/0"}, or define store itself'
    )


@pytest.fixture
async def store(store_config: dict[str, Any], modelmux_plugins: Plugins) -> AsyncIterator[StateStore]:
    made: StateStore = _open_backend("state", store_config, modelmux_plugins)
    yield made
    await made.aclose()


@pytest.fixture
def cache_config() -> dict[str, Any]:
    raise pytest.UsageError(
        "the cache fixture is opened from a cache_config fixture: define one returning the [cache] "
        'table as a dict, e.g. {"backend": "redis", "url": "redis://127.0.0.1:6379/0"}, or define cache itself'
    )


@pytest.fixture
async def cache(cache_config: dict[str, Any], modelmux_plugins: Plugins) -> AsyncIterator[Cache]:
    made: Cache = _open_backend("cache", cache_config, modelmux_plugins)
    yield made
    await made.aclose()


@pytest.fixture
def tool_config() -> dict[str, Any]:
    raise pytest.UsageError(
        "the tool fixture is made from a tool_config fixture: define one returning the [tools.TYPE] "
        'table as a dict with its type, e.g. {"type": "web_search", "url": fake.url}, or define tool itself'
    )


@pytest.fixture
async def tool(tool_config: dict[str, Any], host: Host, modelmux_plugins: Plugins) -> AsyncIterator[Tool]:
    table = dict(tool_config)
    kind = str(table.pop("type", ""))
    reg = modelmux_plugins.registry.tools.get(kind)
    if reg is None:
        known = ", ".join(sorted(modelmux_plugins.registry.tools)) or "(none)"
        raise pytest.UsageError(f"tool_config: no installed plugin registers the tool {kind!r} (known: {known})")
    made: Tool = reg.factory(reg.settings_model.model_validate(table), host)
    await made.start()
    yield made
    await made.aclose()


@pytest.fixture
def tool_embed() -> Embedder:
    """``embed(model, texts)`` for ``tool_context``: the fake of ``modelmux.testing.fake_embed``."""
    from modelmux.testing.tool_contract import fake_embed

    return fake_embed


@pytest.fixture
def tool_context(host: Host, tool_embed: Embedder) -> ToolContext:
    """What the host gives a tool for one request: a client key id, a request id, the pooled client."""
    from modelmux.tools import ToolContext

    return ToolContext("key-contract", "req-contract", host.http, tool_embed)


@pytest.fixture
def serve_upstream() -> Iterator[Callable[[web.Application], LoopbackServer]]:
    """``serve_upstream(app)``: ``app`` on a free loopback port until the test ends (a fresh fake)."""
    from modelmux.testing.servers import serve_aiohttp

    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_aiohttp(app))


def upstream_fixture(make_app: Callable[[], web.Application], *, scope: str = "module") -> Any:
    """A fixture serving ``make_app()`` on loopback for ``scope``: ``fake_x = upstream_fixture(make_app)``
    in a conftest gives the tests a ``fake_x`` (a ``LoopbackServer``) started once per module."""
    from modelmux.testing.servers import serve_aiohttp

    def fixture() -> Iterator[LoopbackServer]:
        with serve_aiohttp(make_app()) as server:
            yield server

    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]
