"""Real servers on loopback for tests: fake upstreams and the gateway itself.

Each runs in its own thread with its own event loop, so tests can drive them
with the synchronous official ``openai`` SDK or with raw HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LoopbackServer:
    """A fake upstream: an ``aiohttp.web.Application`` served on 127.0.0.1."""

    url: str
    port: int
    loop: asyncio.AbstractEventLoop
    #: Requests seen, in order: (method, path_qs, headers, body) appended by ``record`` middleware.
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: The application served (tests steer a fake upstream through its state).
    app: web.Application | None = None
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Take the server down now (an upstream that went away); stopping twice is harmless."""
        if self._stop is not None:
            self._stop()


SERVER_KEY: web.AppKey[LoopbackServer] = web.AppKey("modelmux_server", LoopbackServer)


@web.middleware
async def _record(request: web.Request, handler: Any) -> web.StreamResponse:
    body = await request.read()
    request.app[SERVER_KEY].requests.append(
        {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body": body,
        }
    )
    response: web.StreamResponse = await handler(request)
    return response


@contextlib.contextmanager
def serve_aiohttp(app: web.Application) -> Iterator[LoopbackServer]:
    """Serve ``app`` on a free loopback port until the block ends. Every request is
    recorded in ``server.requests`` (its body is read first, so handlers use ``await request.read()``)."""
    app.middlewares.insert(0, _record)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    port = free_port()
    server = LoopbackServer(f"http://127.0.0.1:{port}", port, loop, app=app)
    app[SERVER_KEY] = server

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, shutdown_timeout=0.5).start()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name=f"loopback-{port}", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("fake upstream did not start")

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    server._stop = stop
    try:
        yield server
    finally:
        stop()


def fake_embedding(item: str | list[int], dimensions: int) -> list[float]:
    """A fake upstream's deterministic vector of one embeddings input (a string or a token array):
    equal inputs get equal vectors, alone or in a batch, as the contract suite expects."""
    digest = hashlib.sha256(repr(item).encode()).digest()
    return [(digest[i % 32] - 127.5) / 128 + i / 4096 for i in range(dimensions)]


def fake_embeddings_answer(body: dict[str, Any], *, model: str | None = None, dimensions: int = 8) -> dict[str, Any]:
    """What an OpenAI-compatible server answers to an embeddings request ``body``, for a fake upstream:
    ``fake_embedding`` of each input in order, ``body["dimensions"]`` long (else ``dimensions``), as floats
    or, when ``encoding_format`` is ``base64``, base64 of little-endian float32; ``model`` (default: the
    body's) and ``usage`` counting one token per word of a string, per token of an array."""
    items = body["input"]
    if isinstance(items, str) or (items and isinstance(items[0], int)):
        items = [items]
    dims = body.get("dimensions") or dimensions
    data = []
    for i, item in enumerate(items):
        vector: Any = fake_embedding(item, dims)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(len(item.split()) if isinstance(item, str) else len(item) for item in items)
    return {
        "id": "embd-fake1",
        "object": "list",
        "created": 1700000000,
        "model": model or body["model"],
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


@dataclass
class RunningGateway:
    url: str
    """Base URL for the OpenAI SDK, ending in ``/v1``."""
    root: str
    config_path: Path
    app: Any
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def gateway(self) -> Any:
        """The running ``Gateway`` (providers, router, stores), for tests that inspect it."""
        app = self.app
        while app is not None:
            gw = getattr(app, "gateway", None)  # the Dispatcher holds it once the lifespan started
            if gw is not None:
                return gw
            app = getattr(app, "app", None)
        raise RuntimeError("the gateway has not started")

    def run(self, coro: Any, timeout: float = 10) -> Any:
        """Run ``coro`` on the gateway's event loop (e.g. to count its tasks) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextlib.contextmanager
def run_gateway(
    config: dict[str, Any] | str | None = None,
    env: dict[str, str] | None = None,
    plugins: Iterable[object] = (),
) -> Iterator[RunningGateway]:
    """Run the real gateway (plugins discovered as in production) on a free loopback port.

    ``config`` is a TOML string or a dict written as TOML; ``env`` is set while it starts;
    ``plugins`` are extra objects with ``@hookimpl`` functions (test-only providers).
    """
    import uvicorn

    from modelmux.app import create_app
    from modelmux.config import load_config
    from modelmux.plugins import load_plugins

    with tempfile.TemporaryDirectory(prefix="modelmux-test-") as tmp:
        text = config if isinstance(config, str) else tomli_w.dumps(_with_tmp_state(config or {}, tmp))
        path = Path(tmp) / "modelmux.toml"
        path.write_text(text)
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            loaded = load_plugins(extra=plugins)
            cfg = load_config(path, loaded.registry)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        app = create_app(cfg, loaded)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2)
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start; see the log above")
            time.sleep(0.01)
        root = f"http://127.0.0.1:{port}"
        try:
            yield RunningGateway(f"{root}/v1", root, path, app, _gateway_loop(app))
        finally:
            server.should_exit = True
            thread.join(15)
            sock.close()


def _gateway_loop(app: Any) -> asyncio.AbstractEventLoop | None:
    gw = RunningGateway("", "", Path(), app).gateway
    http = getattr(gw, "http", None)
    loop: asyncio.AbstractEventLoop | None = getattr(http, "_loop", None)
    return loop


def _with_tmp_state(config: dict[str, Any], tmp: str) -> dict[str, Any]:
    """Keep a test's disk state inside its temporary directory unless it says otherwise."""
    out = dict(config)
    state = dict(out.get("state") or {})
    if state.get("backend", "disk") == "disk":
        state.setdefault("path", str(Path(tmp) / "state"))
    out["state"] = state
    cache = dict(out.get("cache") or {})
    if cache.get("backend", "disk") == "disk":
        cache.setdefault("path", str(Path(tmp) / "cache"))
    out["cache"] = cache
    return out
