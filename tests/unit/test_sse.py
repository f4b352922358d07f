"""The SSE parser is byte-safe and the passthrough stream checks its end without decoding chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelmux.errors import UpstreamError
from modelmux.provider import DictEventStream, RawEventStream
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


def test_feed_data_gives_each_events_data_in_every_shape() -> None:
    parser = SSEParser()
    wire = (
        b'event: message_start\ndata: {"a":1}\n\n'  # Anthropic's shape
        b'data: {"b":2}\n\n'  # OpenAI's shape
        b": keepalive\n\n"  # a comment: no event
        b'data:{"c":3}\n\n'  # no space after the colon
        b"event: x\ndata: line1\ndata: line2\n\n"  # multi-line data
        b"event: only-a-name\n\n"
        b'id: 7\ndata: {"d":4}\n\n'  # other fields are ignored
        b'data: {"e":'  # unfinished: kept for the next read
    )
    payloads = [b'{"a":1}', b'{"b":2}', b'{"c":3}', b"line1\nline2", b"", b'{"d":4}']
    assert parser.feed_data(wire) == payloads
    assert parser.feed_data(b"5}\r\n\r\n") == [b'{"e":5}']
    assert [e.data for e in SSEParser().feed(wire)] == payloads


async def _dicts(*batches: list[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
    for batch in batches:
        yield batch


async def test_batched_dict_stream_writes_each_batch_at_once() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    batches = ([{"n": 1}, {"n": 2}], [], [{"n": 3}, {"choices": [], "usage": usage}])
    stream = DictEventStream(_dicts(*batches), batched=True)
    frames = [f async for f in stream.sse()]
    assert frames == [
        b'data: {"n":1}\n\ndata: {"n":2}\n\n',
        b'data: {"n":3}\n\ndata: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n',
        b"data: [DONE]\n\n",
    ]
    assert stream.usage == usage
    finished = [False]

    async def answer() -> AsyncIterator[list[dict[str, Any]]]:
        yield [{"n": 1}]
        finished[0] = True
        yield [{"n": 2}]

    whole = DictEventStream(answer(), batched=True, complete=lambda: finished[0])
    assert [f async for f in whole.sse()] == [b'data: {"n":1}\n\n', b'data: {"n":2}\n\ndata: [DONE]\n\n']
    decoded = DictEventStream(_dicts(*batches), batched=True)
    assert [e async for e in decoded.events()] == [{"n": 1}, {"n": 2}, {"n": 3}, {"choices": [], "usage": usage}]
    assert decoded.usage == usage


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
