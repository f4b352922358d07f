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

from modelmux import metrics
from modelmux.errors import ModelMuxError
from modelmux.provider import EventStream
from modelmux.sse import encode


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
