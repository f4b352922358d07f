"""The SSE parser is byte-safe and the passthrough stream checks its end without decoding chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelmux.errors import UpstreamError
from modelmux.provider import RawEventStream
from modelmux.sse import SSEParser


def test_multibyte_character_split_across_reads_is_intact() -> None:
    frame = 'data: {"t": "héllo 🌍"}\n\n'.encode()
    cut = frame.index("🌍".encode()) + 2  # inside the 4-byte emoji
    parser = SSEParser()
    assert parser.feed(frame[:cut]) == []
    (event,) = parser.feed(frame[cut:])
    assert event.data.decode() == '{"t": "héllo 🌍"}'


def test_crlf_comments_event_names_and_multiline_data() -> None:
    parser = SSEParser()
    events = parser.feed(b": keepalive\r\n\r\nevent: message_start\r\ndata: a\r\ndata: b\r\n\r\ndata: c\n\n")
    assert [(e.event, e.data) for e in events] == [("message_start", b"a\nb"), (None, b"c")]


def test_event_without_final_blank_line_is_flushed() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: last") == []
    assert [e.data for e in parser.flush()] == [b"last"]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_raw_stream_forwards_bytes_and_finds_usage() -> None:
    parts = (
        b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: {"choices":[],"us',
        b'age":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\ndata: [DO',
        b"NE]\n\n",
    )
    stream = RawEventStream(_chunks(*parts))
    assert [f async for f in stream.sse()] == list(parts)
    assert stream.usage == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}


async def test_raw_stream_without_done_is_an_error() -> None:
    stream = RawEventStream(_chunks(b'data: {"choices":[]}\n\n'), provider="up")
    with pytest.raises(UpstreamError, match="ended before"):
        _ = [f async for f in stream.sse()]
    decoded = RawEventStream(_chunks(b'data: {"choices":[]}\n\n'), provider="up")
    with pytest.raises(UpstreamError, match="ended before"):
        _ = [e async for e in decoded.events()]
