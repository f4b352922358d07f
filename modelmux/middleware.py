"""One pure-ASGI middleware for what every request needs (no BaseHTTPMiddleware: it
buffers and slows streams): the request id, the body size limit, client API keys,
the request's trace span, its one log line at the end and the HTTP metrics."""

from __future__ import annotations

import hmac
import itertools
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelmux import health, metrics, tracing
from modelmux.context import SCOPE_KEY, RequestContext
from modelmux.dispatch import error_response
from modelmux.errors import AuthenticationError, ModelMuxError, PayloadTooLargeError
from modelmux.logs import level_enabled, log_line, redact_body, request_id_var
from modelmux.recent import UNRECORDED_PATHS, RecentRequests

#: /ui checks its own (admin) keys: modelmux/ui/access.py.
OPEN_PATHS = ("/health", "/metrics", "/ui")
QUIET_PATHS = ("/health", "/metrics", "/ui/api")


class _RequestIds:
    """New request ids: 32 hex digits (as a uuid4's hex), a random prefix per process and a counter.

    Unique across workers and replicas like uuid4s, without a getrandom call and a ``UUID``
    object per request (about 2 µs). Ids only name requests in logs and headers; nothing
    relies on them being unguessable."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # a forked worker must not repeat its parent's ids

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


new_request_id = _RequestIds().new


def client_key(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization")
    if auth:
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get(b"api-key")
    return key.decode("latin-1").strip() if key else None


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: dict[str, str],
        max_request_bytes: int,
        log_bodies: bool = False,
        tracer: Any = None,
        recent: RecentRequests | None = None,
    ) -> None:
        self.app = app
        self.recent = recent
        self.api_keys = api_keys
        self.max_bytes = max_request_bytes
        self.log_bodies = log_bodies
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.tracer is None:
            await self._serve(scope, receive, send, None)
            return
        with tracing.request_span(self.tracer, scope["method"], dict(scope["headers"])) as span:
            await self._serve(scope, receive, send, span)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, span: Any) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:200] or new_request_id()
        token = request_id_var.set(rid)
        ctx = scope[SCOPE_KEY] = RequestContext(rid, started)
        status = 0  # no response started yet
        rid_header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        try:
            error = self._check(scope, headers, ctx)
            if error is not None:
                await error_response(error, ctx)(scope, receive, send_with_id)
                return
            await self.app(scope, self._limited(receive), send_with_id)
        finally:
            if status == 0:
                # nginx's 499: the client closed the connection before any answer; else an unanswered 500.
                status = 499 if ctx.client_disconnected else 500
            endpoint = ctx.endpoint
            elapsed = time.perf_counter() - started
            metrics.child(metrics.HTTP_REQUESTS, scope["method"], endpoint, str(status)).inc()
            if endpoint.startswith("/v1/"):
                metrics.child(metrics.REQUEST_DURATION, endpoint, ctx.provider or "-").observe(elapsed)
                health.REQUESTS.add(status)
            if span is not None:
                tracing.finish_request_span(span, scope["method"], status, ctx)
            if self.recent is not None and not scope["path"].startswith(UNRECORDED_PATHS):
                # The web UI's recent requests: one deque append (modelmux/recent.py).
                self.recent.add(scope["method"], scope["path"], status, elapsed, ctx)
            self._log(scope, status, elapsed, ctx)
            request_id_var.reset(token)

    def _log(self, scope: Scope, status: int, elapsed: float, ctx: RequestContext) -> None:
        """The request's one line: what was asked, who answered, how it went."""
        # The level first: with the line filtered out (a quieter server.log_level) nothing is built.
        endpoint = ctx.endpoint
        if endpoint.startswith(QUIET_PATHS):
            # Probes and scrapes every few seconds would drown the request lines, and a failing
            # readiness probe is the orchestrator's to act on: DEBUG whatever the status.
            level = "DEBUG"
        elif status >= 500:
            level = "ERROR"
        elif status >= 400 or ctx.error is not None:
            level = "WARNING"
        else:
            level = "INFO"
        if not level_enabled(level):
            return
        method = scope["method"]
        fields: dict[str, Any] = {
            "method": method,
            "endpoint": endpoint,
            "status": status,
            "latency_ms": round(elapsed * 1000, 2),
            **ctx.log_fields(),
        }
        if self.log_bodies:
            if ctx.request_body is not None:
                fields["request_body"] = redact_body(ctx.request_body)
            if ctx.response_body is not None:
                fields["response_body"] = redact_body(ctx.response_body)
        log_line(level, f"{method} {scope['path']} -> {status} in {elapsed * 1000:.1f} ms", fields)

    def _check(self, scope: Scope, headers: dict[bytes, bytes], ctx: RequestContext) -> ModelMuxError | None:
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return PayloadTooLargeError(
                f"The request body is {int(length)} bytes; the limit is {self.max_bytes} (server.max_request_bytes)."
            )
        if not self.api_keys or scope["path"].startswith(OPEN_PATHS):
            return None
        key = client_key(headers)
        if key is None:
            return AuthenticationError(
                "Missing API key. Send it as 'Authorization: Bearer KEY' (or the 'api-key' header)."
            )
        for known, kid in self.api_keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                ctx.key_id = kid
                return None
        return AuthenticationError("Incorrect API key provided. Use one of the keys in server.api_keys.")

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_bytes

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLargeError(
                        f"The request body exceeds the limit of {limit} bytes (server.max_request_bytes)."
                    )
            return message

        return wrapped
