"""Fast fake OpenAI-compatible upstream for benchmarks.

Raw asyncio protocol + httptools parser on uvloop, so that the upstream costs
as little CPU as possible and the thing being measured is the process in the
middle. Serves ``POST /v1/chat/completions``:

* non-stream: a fixed ``chat.completion`` JSON body (~600 bytes);
* ``"stream": true``: 20 ``chat.completion.chunk`` SSE events, then
  ``data: [DONE]``, sent with chunked transfer encoding and no delays.

Usage: ``python bench/fake_upstream.py --port 18000``
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import cast

import httptools
import orjson
import uvloop

MODEL = "fake-model-1"
CREATED = 1_700_000_000
STREAM_CHUNKS = 20


def _completion_body() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": (
                            "This is a fixed answer from the fake upstream. It is "
                            "long enough to look like a short, realistic reply to "
                            "a chat request, so that the body is not trivially "
                            "small. The quick brown fox jumps over the lazy dog, "
                            "and then it runs back home to sleep."
                        ),
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 21, "completion_tokens": 48, "total_tokens": 69},
        }
    )


def _stream_events() -> list[bytes]:
    events: list[bytes] = []
    for i in range(STREAM_CHUNKS):
        delta: dict[str, str] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": "stop" if i == STREAM_CHUNKS - 1 else None,
                }
            ],
        }
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


BODY = _completion_body()
NONSTREAM_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY)
) + BODY
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)
STREAM_CHUNKS_WIRE = [_http_chunk(e) for e in _stream_events()]
STREAM_END = b"0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class UpstreamProtocol(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; requests are answered in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []

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

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        assert transport is not None
        if self.parser.get_method() != b"POST" or self.url != b"/v1/chat/completions":
            transport.write(NOT_FOUND)
            return
        try:
            stream = orjson.loads(b"".join(self.body)).get("stream") is True
        except (orjson.JSONDecodeError, AttributeError):
            transport.write(BAD_REQUEST)
            transport.close()
            return
        if stream:
            transport.write(STREAM_HEAD)
            for chunk in STREAM_CHUNKS_WIRE:  # one write per SSE event, like a real server
                transport.write(chunk)
            transport.write(STREAM_END)
        else:
            transport.write(NONSTREAM_RESPONSE)
        if not self.parser.should_keep_alive():
            transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream listening on http://{host}:{port}", flush=True)
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
