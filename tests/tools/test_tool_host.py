"""The host side of gateway tools: registration, ``[tools]`` configuration, and each configured
tool's HTTP routes served by the real gateway (client keys, errors, body limit, key ids, embeddings)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from modelmux.config import ConfigError, validate_config
from modelmux.plugin import (
    InvalidRequestError,
    RegisterTool,
    Tool,
    ToolCall,
    ToolContext,
    ToolOutput,
    ToolRoute,
    ToolSettings,
    hookimpl,
)
from modelmux.plugins import load_plugins
from modelmux.testing import RunningGateway, run_gateway

KEY = f"sk-tools-{uuid.uuid4().hex}"
OTHER = f"sk-tools-other-{uuid.uuid4().hex}"


class NotesSettings(ToolSettings):
    greeting: str = "hello"
    embedding_model: str = "echo"


class Notes(Tool):
    """Look up notes."""

    type = "notes"
    aliases = ("notes_preview",)
    settings: NotesSettings
    started = 0
    closed = 0

    async def start(self) -> None:
        Notes.started += 1

    async def aclose(self) -> None:
        Notes.closed += 1

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        return ToolOutput(item={"query": call.arguments.get("query")}, text=self.settings.greeting)

    def routes(self) -> list[ToolRoute]:
        return [
            ToolRoute("/v1/notes", {"GET": self.whoami, "POST": self.create}),
            ToolRoute("/v1/notes/{note_id}", {"GET": self.one}),
        ]

    async def whoami(self, request: Request, ctx: ToolContext) -> Response:
        body = {"key_id": ctx.key_id, "request_id": ctx.request_id, "greeting": self.settings.greeting}
        return Response(orjson.dumps(body), media_type="application/json")

    async def create(self, request: Request, ctx: ToolContext) -> Response:
        body = await request.json()
        if not isinstance(body.get("texts"), list):
            raise InvalidRequestError("texts: a list of strings is required", param="texts")
        vectors = await ctx.embed(str(body.get("model") or self.settings.embedding_model), body["texts"])
        return Response(orjson.dumps({"vectors": vectors}), media_type="application/json")

    async def one(self, request: Request, ctx: ToolContext) -> Response:
        return Response(orjson.dumps({"id": request.path_params["note_id"]}), media_type="application/json")


class Broken(Tool):
    type = "broken"

    def __init__(self, settings: ToolSettings, host: Any) -> None:
        raise RuntimeError("the broken tool cannot start")

    async def run(self, call: ToolCall, ctx: ToolContext) -> ToolOutput:
        raise AssertionError("never made")


class NotesPlugin:
    __name__ = "notes-plugin"

    @hookimpl
    def register_tools(self, register: RegisterTool) -> None:
        register(Notes, NotesSettings)
        register(Broken, ToolSettings)

        def factory(settings: ToolSettings, host: Any) -> Tool:
            return Notes(NotesSettings(), host)

        register(factory, ToolSettings, type="made", aliases=["made_alias"])


def config(**tools: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [KEY, OTHER], "max_request_bytes": 4096},
        "providers": {"echo": {"type": "echo"}},
        "models": {"echo": {"provider": "echo", "model": "echo"}},
        "tools": {"max_rounds": 3, **tools},
    }


# -- registration and configuration -------------------------------------------------------------


def test_a_tool_registers_under_its_type_and_aliases() -> None:
    registry = load_plugins(extra=[NotesPlugin()]).registry
    assert registry.tools["notes"].factory is Notes
    assert registry.tools["notes_preview"] is registry.tools["notes"]
    assert registry.tools["made"].name == "made" and registry.tools["made_alias"].name == "made"
    assert Notes.item_type == "notes_call"


def test_a_tool_table_is_validated_by_its_plugins_settings_model() -> None:
    registry = load_plugins(extra=[NotesPlugin()]).registry
    cfg = validate_config(config(notes={"greeting": "hi"}), None, registry=registry)
    assert cfg.settings.tools.max_rounds == 3
    assert isinstance(cfg.tools["notes"], NotesSettings) and cfg.tools["notes"].greeting == "hi"
    with pytest.raises(ConfigError) as err:
        validate_config(config(notes={"greting": "hi"}), None, registry=registry)
    assert "tools.notes.greting: unknown setting. Did you mean 'greeting'?" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate_config(config(notes_preview={}, notes={}), None, registry=registry)
    assert "configured twice" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate_config({**config(), "tools": {"max_rounds": 0}}, None, registry=registry)
    assert "tools.max_rounds" in str(err.value)


def test_a_tool_table_without_a_plugin_names_the_package_to_install() -> None:
    registry = load_plugins().registry
    if "web_search" in registry.tools:
        pytest.skip("modelmux-tool-web-search is installed here")  # pragma: no cover
    with pytest.raises(ConfigError) as err:
        validate_config(config(web_search={"url": "http://127.0.0.1:1"}), None, registry=registry)
    text = str(err.value)
    assert "tools.web_search: no installed plugin runs the tool 'web_search'" in text
    assert "pip install modelmux-tool-web-search" in text
    with pytest.raises(ConfigError) as err:
        validate_config(config(wether={}), None, registry=registry)
    assert "tools.wether: no installed plugin runs the tool 'wether'" in str(err.value)


# -- the gateway: tools made at start, routes served --------------------------------------------


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    Notes.started = Notes.closed = 0
    with run_gateway(config(notes={"greeting": "hi"}), plugins=[NotesPlugin()]) as running:
        yield running
    assert Notes.closed >= 1  # (the factory-made tool of another test closes too)


def get(gw: RunningGateway, path: str, key: str | None = KEY, **kw: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(kw.pop("method", "GET"), f"{gw.root}{path}", headers=headers, **kw)


def test_the_gateway_makes_each_configured_tool_once_under_its_type_and_aliases(gw: RunningGateway) -> None:
    tools: Mapping[str, Tool] = gw.gateway.tools
    assert set(tools) == {"notes", "notes_preview"} and tools["notes"] is tools["notes_preview"]
    assert Notes.started == 1
    assert httpx.get(f"{gw.root}/health/ready").status_code == 200


def test_a_tool_route_gets_the_client_key_id_and_the_request_id(gw: RunningGateway) -> None:
    first = httpx.get(f"{gw.root}/v1/notes", headers={"authorization": f"Bearer {KEY}", "x-request-id": "rid-notes"})
    second = get(gw, "/v1/notes", OTHER)
    assert first.status_code == 200 and second.status_code == 200
    a, b = first.json(), second.json()
    assert a["key_id"].startswith("key-") and a["key_id"] != b["key_id"] and KEY not in first.text
    assert a["request_id"] == "rid-notes" and a["greeting"] == "hi"
    assert get(gw, "/v1/notes/n-42").json() == {"id": "n-42"}


def test_a_tool_route_is_behind_the_client_keys_and_the_gateways_errors(gw: RunningGateway) -> None:
    missing = get(gw, "/v1/notes", None)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"
    wrong = get(gw, "/v1/notes/x", "sk-wrong")
    assert wrong.status_code == 401
    method = get(gw, "/v1/notes/x", method="DELETE")
    assert method.status_code == 405 and method.headers["allow"] == "GET, HEAD"
    bad = get(gw, "/v1/notes", method="POST", json={"texts": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "texts"
    big = get(gw, "/v1/notes", method="POST", content=b"x" * 5000)
    assert big.status_code == 413
    assert "x-request-id" in big.headers


def test_tool_context_embed_goes_through_the_router(gw: RunningGateway) -> None:
    got = get(gw, "/v1/notes", method="POST", json={"texts": ["cats purr", "dogs bark"]})
    assert got.status_code == 200, got.text
    vectors = got.json()["vectors"]
    direct = httpx.post(
        f"{gw.url}/embeddings",
        json={"model": "echo", "input": ["cats purr", "dogs bark"]},
        headers={"authorization": f"Bearer {KEY}"},
    ).json()
    assert vectors == [row["embedding"] for row in direct["data"]]
    unknown = get(gw, "/v1/notes", method="POST", json={"texts": ["x"], "model": "no-such-model"})
    assert unknown.status_code == 404 and "no-such-model" in unknown.json()["error"]["message"]


def test_a_tool_that_cannot_start_makes_the_process_not_ready() -> None:
    with run_gateway(config(broken={}, made={}), plugins=[NotesPlugin()]) as running:
        ready = httpx.get(f"{running.root}/health/ready")
        health = httpx.get(f"{running.root}/health", headers={"authorization": f"Bearer {KEY}"}).json()
        hidden = httpx.get(f"{running.root}/health").json()
        tools = running.gateway.tools
    assert ready.status_code == 503
    assert health["tools"]["made"] == {"status": "ok"} and health["status"] == "degraded"
    assert health["tools"]["broken"] == {"status": "down", "error": "RuntimeError: the broken tool cannot start"}
    assert hidden["tools"]["broken"]["error"] != health["tools"]["broken"]["error"]
    assert "broken" not in tools and tools["made"] is tools["made_alias"]


def test_a_tool_route_that_clashes_with_a_served_path_is_refused() -> None:
    from modelmux.dispatch import Dispatcher, Route
    from modelmux.routes import ROUTES

    dispatcher = Dispatcher(ROUTES, lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="the path /v1/models is served twice"):
        dispatcher.add([Route.of("/v1/models", GET=lambda gw, request, ctx: None)])  # type: ignore[arg-type,return-value]
