"""Server-sent events: a byte-safe incremental parser and the encoder.

The parser works on bytes and splits on blank lines before decoding, so a
multi-byte UTF-8 character cut across two network reads is never corrupted.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import orjson

DONE_FRAME = b"data: [DONE]\n\n"
#: One event may not grow beyond this; an upstream that never ends an event is an error.
MAX_EVENT_BYTES = 16 * 1024 * 1024
#: The two shapes upstreams send, "data: X" and "event: E\ndata: X", matched in one C call.
_SIMPLE_EVENT = re.compile(rb"(?:event:[^\n]*\n)?data: ?([^\n]*)")


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: bytes


class SSEParser:
    """Feed bytes, get complete events. Handles ``\\n``, ``\\r\\n`` and ``\\r`` line ends.

    ``feed`` gives ``SSEEvent``s; ``feed_data`` gives only each event's data, for
    consumers whose payload names its own type (Anthropic's), and skips building
    the event objects.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def _blocks(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()  # the unfinished rest (b"" after a complete event)
        if len(self._buf) > MAX_EVENT_BYTES:
            raise ValueError("server-sent event larger than 16 MiB")
        return blocks

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return [ev for ev in map(_parse_block, self._blocks(chunk)) if ev is not None]

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """The data of each complete event (an event with only a name has ``b""``)."""
        out: list[bytes] = []
        simple = _SIMPLE_EVENT.fullmatch
        for block in self._blocks(chunk):
            match = simple(block)
            if match is not None:
                out.append(match[1])
                continue
            ev = _parse_block(block)
            if ev is not None:
                out.append(ev.data)
        return out

    def flush(self) -> list[SSEEvent]:
        """Whatever is left when the stream ends (an event without its closing blank line)."""
        rest, self._buf = self._buf, b""
        ev = _parse_block(rest.rstrip(b"\n")) if rest.strip() else None
        return [ev] if ev is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data and event is None:
        return None
    return SSEEvent(event, b"\n".join(data))


async def iter_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    parser = SSEParser()
    async for chunk in chunks:
        for ev in parser.feed(chunk):
            yield ev
    for ev in parser.flush():
        yield ev


def encode(data: object, event: str | None = None) -> bytes:
    """One SSE frame for a JSON payload."""
    body = orjson.dumps(data)
    if event:
        return b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"
