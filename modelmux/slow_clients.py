"""Time bounds on what a client sends before the app can answer: its request headers and body.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) but not a connection that
sends its headers a byte at a time, nor a body that trickles: each such connection is held as
long as its client likes (a slow-loris attack: 200 of them were held for 30 s and more, before
any client key was checked). ``modelmux serve`` runs uvicorn with this protocol, its httptools
protocol plus two deadlines:

- ``server.header_timeout_seconds``: from the connection's start (or, on a kept-alive
  connection, from the first byte of the next request) until the headers are complete. Past
  it, a ``408`` OpenAI-shaped error is written and the connection closed.
- ``server.body_timeout_seconds``: from the end of the headers until the body is complete.
  Past it the connection is closed; the request ends with a ``408`` in the log line.

One timer per connection, armed when a deadline is set and none is pending, re-armed only
when it fires early: a request costs a clock read per phase, not a timer of its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelmux.context import RequestContext
from modelmux.errors import ClientClosedRequestError, ModelMuxError, RequestTimeoutError

#: The deadlines (seconds) of the next connections; ``configure`` sets them from [server].
_limits = {"header": 10.0, "body": 60.0}
#: Scope key set (to the message) on a request whose body did not arrive in time.
BODY_TIMED_OUT = "modelmux.body_timed_out"


def configure(header_timeout: float, body_timeout: float) -> None:
    _limits["header"] = header_timeout
    _limits["body"] = body_timeout


def _timeout_answer(message: str) -> bytes:
    body = RequestTimeoutError(message).to_json()
    head = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header and a body deadline (see the module's text)."""

    _timer: asyncio.TimerHandle | None = None
    #: ``loop.time()`` by which the current phase must end; None: nothing is awaited from the client.
    _deadline: float | None = None
    _phase = "header"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect("header")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request: its headers from now
            self._expect("header")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._expect("body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._deadline = None

    def _expect(self, phase: str) -> None:
        self._phase = phase
        self._deadline = self.loop.time() + _limits[phase]
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.transport.is_closing():
            return
        if self.loop.time() < deadline:  # the phase changed since the timer was armed
            self._timer = self.loop.call_at(deadline, self._check)
            return
        self._deadline = None
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        if self._phase == "header":
            message = (
                f"The request headers did not arrive within {_limits['header']:g} s (server.header_timeout_seconds). "
                "Send the whole request at once; a slow network needs a larger server.header_timeout_seconds."
            )
            logger.info("closed the connection of {}: {}", client, message)
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_timeout_answer(message))
            self.transport.close()
            return
        message = (
            f"The request body did not arrive within {_limits['body']:g} s (server.body_timeout_seconds). "
            "Send the body at once; large uploads over a slow network need a larger server.body_timeout_seconds."
        )
        logger.info("closed the connection of {}: {}", client, message)
        if self.cycle is not None:
            scope: Any = self.cycle.scope
            scope[BODY_TIMED_OUT] = message
        self.transport.close()


def body_not_received(scope: Any, ctx: RequestContext) -> ModelMuxError:
    """The error for a body whose connection closed before it arrived: our body deadline, or the client."""
    message = scope.get(BODY_TIMED_OUT)
    if message:
        return RequestTimeoutError(message)
    ctx.client_disconnected = True
    return ClientClosedRequestError("The client closed the connection before its request body arrived.")
