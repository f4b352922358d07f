"""``RequestContext``: what one request learns on its way through the gateway.

The middleware makes it when a request arrives and writes the request's log line, metrics
and span from it when the request ends; the pipeline (``pipeline.py``) and the streaming
code fill it in as they go. It is the only place these facts live: every endpoint reports
the same fields because they all fill the same object.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

#: The ASGI scope key that holds the request's context.
SCOPE_KEY = "modelmux.context"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    #: ``time.perf_counter()`` when the request arrived (latency, time to first token).
    started: float
    #: The client key's non-secret id (``Gateway.key_id``), once the key was checked.
    key_id: str | None = None
    #: The route template that matched (``/v1/responses/{response_id}``): the metrics label.
    endpoint: str = "unmatched"
    #: The model name the client asked for.
    model: str | None = None
    provider: str | None = None
    #: The upstream model id of the deployment that answered.
    deployment: str | None = None
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: "hit" or "miss" when the response cache took part.
    cache: str | None = None
    retries: int | None = None
    #: Why the request failed (or its stream ended early), for the log line.
    error: str | None = None
    client_disconnected: bool = False
    #: Set by ``disconnect.CancelOnDisconnect``: a stream may rely on it instead of listening itself.
    watched: bool = False
    #: With ``server.log_bodies``: the raw request body and the JSON answer.
    request_body: bytes | None = None
    response_body: bytes | None = None

    #: The fields of the log line after method, path, status and latency (in this order).
    LOG_FIELDS = (
        "key_id",
        "model",
        "provider",
        "deployment",
        "ttft_ms",
        "input_tokens",
        "output_tokens",
        "cache",
        "retries",
        "error",
    )

    def log_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.LOG_FIELDS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def fail(self, exc: BaseException, message: str) -> None:
        self.error = f"{type(exc).__name__}: {message}"


def context_of(scope: Scope) -> RequestContext:
    """The request's context; a bare one for a scope that no middleware saw (tests, tools)."""
    ctx: RequestContext | None = scope.get(SCOPE_KEY)
    if ctx is None:
        ctx = scope[SCOPE_KEY] = RequestContext("", time.perf_counter())
    return ctx
