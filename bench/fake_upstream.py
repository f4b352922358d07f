"""Fixed-answer upstream for the benchmark: OpenAI, Vertex (Anthropic) and an OAuth token endpoint.

A raw asyncio protocol with the httptools parser on uvloop, and every answer built once
at import, so that the upstream costs as little CPU as possible and what is measured is
the process in the middle. Endpoints:

* ``POST /v1/chat/completions``: a fixed ``chat.completion`` (~700 bytes); with
  ``"stream": true`` 20 ``chat.completion.chunk`` SSE events, then ``data: [DONE]``.
* ``POST /v1/embeddings``: a fixed embeddings list of 4 vectors of 1,024 dimensions, base64
  (what the official Python SDK asks for), ~22 kB.
* ``GET /v1/models``: one model (the ``openai_compatible`` provider's readiness probe).
* ``POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{m}:rawPredict``: a fixed
  Anthropic Messages answer with the same text; ``:streamRawPredict``: its SSE events
  (message_start, content_block_start, 20 content_block_delta, content_block_stop,
  message_delta with usage, message_stop). Both want ``authorization: Bearer TOKEN``.
* ``GET /v1/projects/{p}/locations/{r}``: the region's location (the ``vertex`` readiness probe).
* ``POST /token``: ``{"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}`` for
  a JWT-bearer grant (the service-account flow of google-auth; the signature is not checked).
* ``GET /stats``: how many requests each endpoint answered (for tests).

Streams are sent with chunked encoding, one write per SSE event, without delays.

Usage: ``python bench/fake_upstream.py --port 18000`` (``--port 0``: any free port; the
first line printed names the URL).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import Counter
from typing import Any, cast

import httptools
import orjson
import uvloop

MODEL = "fake-model-1"
EMBED_MODEL = "fake-embed-1"
CLAUDE_MODEL = "claude-sonnet-4-5-20250929"
CREATED = 1_700_000_000
STREAM_PIECES = 20
#: The one access token the token endpoint issues and the Vertex paths accept.
TOKEN = "ya29.bench-fixed-token"
TEXT = (
    "This is a fixed answer from the fake upstream. It is long enough to look like a short, "
    "realistic reply to a chat request, so that the body is not trivially small. The quick "
    "brown fox jumps over the lazy dog, and then it runs back home to sleep."
)
USAGE_IN, USAGE_OUT = 21, 48
VERTEX_PREFIX = b"/v1/projects/"
ANTHROPIC_MARK = b"/publishers/anthropic/models/"


def split_text(text: str, pieces: int) -> list[str]:
    """``text`` cut into ``pieces`` consecutive parts (on word boundaries where possible)."""
    words = text.split(" ")
    per = -(-len(words) // pieces)
    parts = [" ".join(words[i : i + per]) for i in range(0, len(words), per)]
    parts = [p + " " if i < len(parts) - 1 else p for i, p in enumerate(parts)]
    while len(parts) < pieces:
        parts.append("")
    return parts


def openai_completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT},
    }


def openai_stream_events() -> list[bytes]:
    events: list[bytes] = []
    pieces = split_text(TEXT, STREAM_PIECES)
    for i, piece in enumerate(pieces):
        delta: dict[str, str] = {"content": piece}
        if i == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if i == len(pieces) - 1 else None}],
        }
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def anthropic_message() -> dict[str, Any]:
    return {
        "id": "msg_bench00000000000000000000",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE_MODEL,
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT},
    }


def _sse(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def anthropic_stream_events() -> list[bytes]:
    start = anthropic_message() | {"content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": USAGE_IN, "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        for piece in split_text(TEXT, STREAM_PIECES)
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": USAGE_OUT},
        },
        {"type": "message_stop"},
    ]
    return [_sse(e) for e in events]


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _json_response(body: bytes, status: bytes = b"200 OK") -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % (status, len(body))
    return head + body


def _stream(events: list[bytes]) -> list[bytes]:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    return [head] + [_http_chunk(e) for e in events] + [b"0\r\n\r\n"]


def openai_embeddings() -> dict[str, Any]:
    import base64
    import struct

    data = []
    for i in range(4):
        vector = [((i + 1) * (j % 97) - 48) / 4096 for j in range(1024)]
        data.append(
            {"object": "embedding", "index": i, "embedding": base64.b64encode(struct.pack("<1024f", *vector)).decode()}
        )
    return {"object": "list", "data": data, "model": EMBED_MODEL, "usage": {"prompt_tokens": 34, "total_tokens": 34}}


OPENAI_JSON = _json_response(orjson.dumps(openai_completion()))
EMBEDDINGS_JSON = _json_response(orjson.dumps(openai_embeddings()))
OPENAI_STREAM = _stream(openai_stream_events())
ANTHROPIC_JSON = _json_response(orjson.dumps(anthropic_message()))
ANTHROPIC_STREAM = _stream(anthropic_stream_events())
MODELS = _json_response(
    orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]})
)
TOKEN_RESPONSE = _json_response(
    orjson.dumps({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}), b"200 OK"
)
UNAUTHORIZED = _json_response(
    orjson.dumps(
        {
            "error": {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
            }
        }
    ),
    b"401 Unauthorized",
)
BAD_GRANT = _json_response(orjson.dumps({"error": "unsupported_grant_type"}), b"400 Bad Request")
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
BEARER = b"Bearer " + TOKEN.encode()

#: Requests answered, by endpoint (``GET /stats``).
STATS: Counter[str] = Counter()


class UpstreamProtocol(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; requests are answered in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.auth = b""
        self.header = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's class is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(BAD_REQUEST)
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.auth = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 13 and name.lower() == b"authorization":
            self.auth = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        assert transport is not None
        answer = self.answer(self.parser.get_method(), self.url)
        if answer is None:
            transport.write(BAD_REQUEST)
            transport.close()
            return
        if isinstance(answer, list):
            for piece in answer:  # one write per SSE event, like a real server
                transport.write(piece)
        else:
            transport.write(answer)
        if not self.parser.should_keep_alive():
            transport.close()

    def answer(self, method: bytes, url: bytes) -> bytes | list[bytes] | None:
        """The bytes to send (a list: one write each); None for a malformed body."""
        if method == b"POST" and url == b"/v1/chat/completions":
            try:
                stream = orjson.loads(b"".join(self.body)).get("stream") is True
            except (orjson.JSONDecodeError, AttributeError):
                return None
            STATS["chat_stream" if stream else "chat"] += 1
            return OPENAI_STREAM if stream else OPENAI_JSON
        if method == b"POST" and url == b"/v1/embeddings":
            STATS["embeddings"] += 1
            return EMBEDDINGS_JSON
        if url.startswith(VERTEX_PREFIX):
            if self.auth != BEARER:
                STATS["unauthorized"] += 1
                return UNAUTHORIZED
            if method == b"POST" and ANTHROPIC_MARK in url:
                if url.endswith(b":streamRawPredict"):
                    STATS["anthropic_stream"] += 1
                    return ANTHROPIC_STREAM
                if url.endswith(b":rawPredict"):
                    STATS["anthropic"] += 1
                    return ANTHROPIC_JSON
            elif method == b"GET" and url.count(b"/") == 5:  # /v1/projects/{p}/locations/{r}
                STATS["location"] += 1
                parts = url.decode().split("/")
                return _json_response(orjson.dumps({"name": "/".join(parts[2:]), "locationId": parts[5]}))
            return NOT_FOUND
        if method == b"POST" and url == b"/token":
            STATS["token"] += 1
            body = b"".join(self.body)
            if b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" not in body:
                return BAD_GRANT
            return TOKEN_RESPONSE
        if method == b"GET" and url == b"/v1/models":
            STATS["models"] += 1
            return MODELS
        if method == b"GET" and url == b"/stats":
            return _json_response(orjson.dumps(STATS))
        return NOT_FOUND


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"fake upstream listening on http://{host}:{bound}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18000)
    args = ap.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
