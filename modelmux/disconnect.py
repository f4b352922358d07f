"""Cancel a request's work the moment its client goes away.

Starlette already stops a streaming response when the client disconnects, but a
request still waiting for its upstream (a non-streaming completion, a retry backoff,
a stream not yet primed) would run on and keep its upstream call open. This pure
ASGI wrapper watches the connection once the request body has been read and cancels
the request task on ``http.disconnect``, unless the response already completed; the
cancellation reaches the upstream call, which closes its connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WATCHED_PREFIX = "/v1/"


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(WATCHED_PREFIX):
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        body_read = asyncio.Event()
        gone = asyncio.Event()
        completed = False
        cancelled_by_us = False

        async def app_receive() -> Message:
            if body_read.is_set():
                # After the body only a disconnect can come; the watcher reads it.
                await gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def app_send(message: Message) -> None:
            nonlocal completed
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                completed = True
            await send(message)

        async def watch() -> None:
            nonlocal cancelled_by_us
            await body_read.wait()
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.disconnect":
                gone.set()
                if not completed:
                    # For the access log / metrics: no answer was sent because the client left.
                    scope.setdefault("state", {})["client_disconnected"] = True
                    cancelled_by_us = True
                    task.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await self.app(scope, app_receive, app_send)
        except asyncio.CancelledError:
            if cancelled_by_us and task.uncancel() == 0:
                return  # the client left: nothing to answer
            raise
        finally:
            watcher.cancel()
