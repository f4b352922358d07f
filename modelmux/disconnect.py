"""Cancel a request's work the moment its client goes away.

Starlette already stops a streaming response when the client disconnects, but a
request still waiting for its upstream (a non-streaming completion, a retry backoff,
a stream not yet primed) would run on and keep its upstream call open. This pure
ASGI wrapper watches the connection once the request body has been read and cancels
the request task on ``http.disconnect``, unless the response already completed; the
cancellation reaches the upstream call, which closes its connection.

The watch is one task running the server's ``receive()`` (after the body, the next
message can only be the disconnect) with a done-callback: no events, no second
coroutine. Requests it watches are marked in their ``RequestContext`` (``watched``), so a
streaming response can rely on it instead of listening for the disconnect itself.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelmux.context import context_of

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
        ctx = context_of(scope)
        ctx.watched = True
        watcher: asyncio.Future[Message] | None = None
        completed = False
        cancelled_by_us = False

        def heard(done: asyncio.Future[Message]) -> None:
            nonlocal cancelled_by_us
            if done.cancelled() or done.exception() is not None:
                return
            if done.result()["type"] == "http.disconnect" and not completed:
                # For the access log / metrics: no answer was sent because the client left.
                ctx.client_disconnected = True
                cancelled_by_us = True
                task.cancel()

        async def app_receive() -> Message:
            nonlocal watcher
            if watcher is not None:
                # After the body only a disconnect can come; the watcher reads it.
                return await asyncio.shield(watcher)
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                watcher = asyncio.ensure_future(receive())
                watcher.add_done_callback(heard)
            return message

        async def app_send(message: Message) -> None:
            nonlocal completed
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                completed = True
            await send(message)

        try:
            await self.app(scope, app_receive, app_send)
        except asyncio.CancelledError:
            if cancelled_by_us and task.uncancel() == 0:
                return  # the client left: nothing to answer
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
