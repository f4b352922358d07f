"""Sending a stream to the client: ``EventStreamResponse`` and the in-stream error event.

Once the first byte has gone out, an error can no longer change the status code: it becomes
a final SSE error event (``error_frame``) the OpenAI SDK raises, then the stream ends
(``pipeline.Account.metered`` does that, and closes the upstream stream whatever happens).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from modelmux.context import SCOPE_KEY
from modelmux.errors import ModelMuxError
from modelmux.logs import scrub_bytes
from modelmux.sse import encode


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` answer: each chunk is sent the moment it is produced.

    Under ``CancelOnDisconnect`` (every ``/v1/`` request), which cancels the request when its
    client leaves, the chunks are sent directly. Starlette's ``StreamingResponse`` would also
    listen for the disconnect itself, with a task group and a second task per stream (ASGI
    servers before spec 2.4, uvicorn included): about a tenth of a proxied stream's CPU.
    Elsewhere it is that ``StreamingResponse``.
    """

    def __init__(self, frames: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        super().__init__(frames, media_type="text/event-stream", headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = scope.get(SCOPE_KEY)
        if ctx is None or not ctx.watched:
            await super().__call__(scope, receive, send)
            return
        frames = self.body_iterator
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in frames:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # Cut short (the client left, the request was cancelled): close the upstream now.
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()


def error_frame(exc: ModelMuxError, kind: str) -> bytes:
    return scrub_bytes(_error_frame(exc, kind))  # as error_response does for JSON answers


def _error_frame(exc: ModelMuxError, kind: str) -> bytes:
    if kind == "responses":
        err = exc.to_dict()["error"]
        payload = {
            "type": "error",
            "code": err["code"],
            "message": err["message"],
            "param": err["param"],
            # The host does not decode a passthrough stream, so it cannot continue its numbering.
            "sequence_number": 0,
        }
        # The nested copy is what makes the openai SDK raise instead of yielding the event.
        return encode({**payload, "error": dict(payload)}, "error")
    return encode(exc.to_dict())
