"""Sending an upstream stream to the client: first-byte timing, usage, and errors in-stream.

Once the first byte has gone out, an error can no longer change the status code:
it becomes a final SSE error event the OpenAI SDK raises, then the stream ends.
The upstream stream is always closed, also when the client goes away (the
server cancels this generator, and ``aclose()`` cancels the upstream request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from loguru import logger
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from modelmux import metrics
from modelmux.disconnect import WATCHED
from modelmux.errors import ModelMuxError
from modelmux.provider import EventStream
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
        state = scope.get("state")
        if not (isinstance(state, dict) and state.get(WATCHED)):
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


async def to_client(
    stream: EventStream,
    *,
    provider: str,
    model: str,
    started: float,
    state: dict[str, Any] | None = None,
    on_done: Callable[[dict[str, Any] | None], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """The client's bytes of ``stream``. ``model`` is the metrics label; facts for the
    request's log line (time to first token, tokens, error) go into ``state``;
    ``on_done(usage)`` runs once the stream ended (rate-limit accounting)."""
    state = state if state is not None else {}
    first = True
    # modelmux_inflight_requests: the router counts an attempt until its stream ended (StreamGuard).
    try:
        async for frame in stream.sse():
            if first:
                first = False
                ttft = time.perf_counter() - started
                metrics.child(metrics.TTFT, provider, model).observe(ttft)
                state["ttft_ms"] = round(ttft * 1000, 2)
            yield frame
    except (GeneratorExit, asyncio.CancelledError):
        state["error"] = "the client closed the stream before its end"
        raise
    except ModelMuxError as exc:
        logger.warning("stream from {} failed after it started: {}", provider, exc.message)
        metrics.ERRORS.labels(exc.code or exc.error_type).inc()
        state["error"] = f"{type(exc).__name__}: {exc.message}"
        yield error_frame(exc, stream.kind)
    except Exception as exc:  # a plugin bug must still end the stream with an error, not a silent cut
        logger.exception("stream from {} failed: {}", provider, exc)
        metrics.ERRORS.labels("server_error").inc()
        state["error"] = f"{type(exc).__name__}: {exc}"
        yield error_frame(ModelMuxError(f"provider {provider}: internal error in stream"), stream.kind)
    finally:
        await stream.aclose()
        inp, out = metrics.record_usage(provider, model, stream.usage)
        state["input_tokens"], state["output_tokens"] = inp, out
        if on_done is not None:
            await on_done(stream.usage)
