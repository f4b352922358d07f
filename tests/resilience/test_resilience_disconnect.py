"""The disconnect watcher on its own, driven as an ASGI server drives it: whatever the server
version does by itself, a client that leaves cancels the request's work."""

from __future__ import annotations

import asyncio
from typing import Any

from modelmux.disconnect import CancelOnDisconnect


def scope(path: str = "/v1/chat/completions") -> dict[str, Any]:
    return {"type": "http", "path": path, "method": "POST", "headers": []}


async def test_a_client_that_leaves_cancels_the_waiting_request() -> None:
    left = asyncio.Event()
    cancelled = asyncio.Event()
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await left.wait()
        return {"type": "http.disconnect"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # the body
        try:
            await asyncio.sleep(30)  # waiting for an upstream
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent to a client that left")

    task = asyncio.create_task(CancelOnDisconnect(app)(scope(), receive, send))
    await asyncio.sleep(0.05)
    left.set()
    done, _ = await asyncio.wait({task}, timeout=5)  # not the 30 s
    assert task in done, "the request kept waiting after its client left"
    assert task.result() is None  # quietly: nothing to answer
    assert cancelled.is_set()


async def test_a_completed_response_is_not_cancelled_and_other_paths_are_not_watched() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False} if not sent else {"type": "http.disconnect"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})
        await asyncio.sleep(0.05)  # after the answer: a disconnect now must not cancel this

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for path in ("/v1/chat/completions", "/health"):
        sent.clear()
        await asyncio.wait_for(CancelOnDisconnect(app)(scope(path), receive, send), 5)
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_the_watch_ends_with_the_request() -> None:
    # On a kept-alive connection the server's receive() would wait for the next disconnect forever:
    # the watch must not outlive its request.
    waiting = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not waiting.is_set():
            waiting.set()
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await asyncio.Event().wait()  # no disconnect ever comes
        raise AssertionError("unreachable")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})

    async def send(message: dict[str, Any]) -> None:
        pass

    before = asyncio.all_tasks()
    await asyncio.wait_for(CancelOnDisconnect(app)(scope(), receive, send), 5)
    await asyncio.sleep(0)  # the cancelled watch finishes on the next loop turn
    assert asyncio.all_tasks() == before
