"""The ASGI surface: every path is served by ModelMux's own dispatcher with one error function
(a ``root_path`` changes nothing), and a stream under the disconnect watch is sent chunk by
chunk and closed at once when its client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from modelmux import hookimpl
from modelmux.context import SCOPE_KEY, RequestContext
from modelmux.dispatch import Route
from modelmux.provider import Completion, EventStream, Provider, ProviderSettings, UpstreamRequest
from modelmux.routes import ROUTES
from modelmux.streaming import EventStreamResponse
from modelmux.testing import RunningGateway, run_gateway


class Buggy(Provider):
    """A provider with a bug: not a ModelMuxError, an exception nobody expected."""

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        raise RuntimeError("a bug in a provider plugin")


class _BuggyPlugin:
    @staticmethod
    @hookimpl
    def register_providers(register: Any) -> None:
        register("buggy", lambda name, settings, host: Buggy(name, settings, host), ProviderSettings)


@pytest.fixture(scope="module")
def buggy_gateway() -> Iterator[RunningGateway]:
    config = {"providers": {"b": {"type": "buggy"}}, "models": {"bug": {"provider": "b", "model": "x"}}}
    with run_gateway(config, plugins=[_BuggyPlugin()]) as gw:
        yield gw


def test_the_route_table_holds_every_contract_path() -> None:
    paths = {route.path: set(route.endpoints) for route in ROUTES}
    assert paths["/v1/chat/completions"] == {"POST"}
    assert paths["/v1/responses"] == {"POST"}
    assert paths["/v1/embeddings"] == {"POST"}
    assert paths["/v1/responses/{response_id}"] == {"GET", "HEAD", "DELETE"}
    assert {"/v1/models", "/health", "/health/live", "/health/ready", "/metrics"} <= set(paths)


def test_templated_paths_match_whole_segments() -> None:
    async def endpoint(*_: Any) -> Any:
        return None

    route = Route.of("/v1/responses/{response_id}/input_items", GET=endpoint)
    assert route.pattern is not None
    match = route.pattern.fullmatch("/v1/responses/resp_1/input_items")
    assert match is not None and match["response_id"] == "resp_1"
    assert route.pattern.fullmatch("/v1/responses/a/b/input_items") is None
    models = Route.of("/v1/models/{model:path}", GET=endpoint)
    assert models.pattern is not None
    found = models.pattern.fullmatch("/v1/models/vllm/meta-llama/Llama-3.1-8B")
    assert found is not None and found["model"] == "vllm/meta-llama/Llama-3.1-8B"


def test_unknown_paths_and_methods_are_openai_shaped(buggy_gateway: RunningGateway) -> None:
    base = buggy_gateway.url.removesuffix("/v1")
    missing = httpx.get(f"{base}/v1/nothing-here")
    assert missing.status_code == 404
    assert "/v1/chat/completions" in missing.json()["error"]["message"]
    wrong = httpx.get(f"{base}/v1/chat/completions")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert set(wrong.json()["error"]) == {"message", "type", "param", "code"}


async def test_a_root_path_takes_the_same_route() -> None:
    """Behind a proxy that mounts the gateway under a prefix, the same endpoint answers."""
    from modelmux.dispatch import Dispatcher

    seen: list[str] = []

    async def endpoint(gw: Any, request: Any, ctx: RequestContext) -> Any:
        seen.append(ctx.endpoint)
        from starlette.responses import Response

        return Response(b"{}")

    dispatcher = Dispatcher([Route.of("/v1/chat/completions", POST=endpoint)], lambda: None)  # type: ignore[arg-type,return-value]
    dispatcher.gateway = object()  # type: ignore[assignment]
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    for root in ("", "/gateway"):
        scope = {
            "type": "http",
            "method": "POST",
            "path": f"{root}/v1/chat/completions",
            "root_path": root,
            "headers": [],
            "query_string": b"",
        }
        await dispatcher(scope, receive, send)
    assert seen == ["/v1/chat/completions", "/v1/chat/completions"]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 200]


@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_bug_is_an_openai_shaped_500(buggy_gateway: RunningGateway, stream: bool) -> None:
    body = {"model": "bug", "messages": [{"role": "user", "content": "x"}], "stream": stream}
    resp = httpx.post(f"{buggy_gateway.url}/chat/completions", json=body, headers={"x-request-id": "req-bug"})
    assert resp.status_code == 500
    assert resp.headers["x-request-id"] == "req-bug"
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "server_error"
    assert "bug in a provider" not in error["message"]  # the cause is logged, not told to the client


def test_errors_the_routes_raise_are_openai_shaped(buggy_gateway: RunningGateway) -> None:
    bad = httpx.post(f"{buggy_gateway.url}/chat/completions", content=b"{not json")
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    unknown = httpx.post(f"{buggy_gateway.url}/responses", json={"model": "nope", "input": "x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "model"


def _watched() -> RequestContext:
    ctx = RequestContext("r", 0.0)
    ctx.watched = True
    return ctx


def _frames(log: list[str]) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        try:
            for i in range(3):
                log.append(f"made {i}")
                yield b"data: %d\n\n" % i
        finally:
            log.append("closed")

    return gen()


async def test_a_watched_stream_is_sent_chunk_by_chunk() -> None:
    log: list[str] = []
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        log.append(f"sent {message['type']}")

    async def receive() -> dict[str, Any]:
        raise AssertionError("the watch, not the response, listens for the disconnect")

    scope = {"type": "http", "method": "POST", SCOPE_KEY: _watched()}
    await EventStreamResponse(_frames(log), {"x-a": "1"})(scope, receive, send)
    assert [m.get("body") for m in sent[1:]] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n", b""]
    assert log[:4] == ["sent http.response.start", "made 0", "sent http.response.body", "made 1"]
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert (b"x-a", b"1") in sent[0]["headers"]


async def test_a_stream_whose_client_left_is_closed_at_once() -> None:
    log: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        if message.get("body"):
            raise OSError("the client went away")

    scope = {"type": "http", "method": "POST", SCOPE_KEY: _watched()}
    with pytest.raises(OSError):
        await EventStreamResponse(_frames(log), {})(scope, lambda: asyncio.sleep(3600), send)
    assert log == ["made 0", "closed"]  # not left for the garbage collector


async def test_an_unwatched_stream_listens_for_the_disconnect_itself() -> None:
    log: list[str] = []
    bodies: list[bytes] = []
    gone = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        bodies.append(message.get("body", b""))

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "asgi": {"spec_version": "2.3"}, "state": {}}
    await asyncio.wait_for(EventStreamResponse(_frames(log), {})(scope, receive, send), 5)
    assert bodies[1:] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n", b""]
