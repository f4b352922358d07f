"""The event-stream wire format: our test frames are what botocore decodes, and our decoder checks them."""

from __future__ import annotations

from types import SimpleNamespace

import openai
import pytest
from botocore.eventstream import EventStream, EventStreamBuffer, EventStreamError
from botocore.parsers import EventStreamJSONParser
from botocore.session import Session


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self) -> list[bytes]:
        # Byte by byte: botocore must assemble frames across reads.
        return [self.data[i : i + 1] for i in range(len(self.data))]


def _converse_stream(data: bytes) -> EventStream:
    model = Session().get_service_model("bedrock-runtime")
    shape = model.operation_model("ConverseStream").output_shape.members["stream"]
    return EventStream(_Raw(data), shape, EventStreamJSONParser(), "ConverseStream")


def test_botocore_decodes_the_test_frames(bedrock_wire: SimpleNamespace) -> None:
    raw = bedrock_wire.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hé"}})
    buffer = EventStreamBuffer()
    buffer.add_data(raw[:9])
    assert list(buffer) == []  # a partial prelude is no message yet
    buffer.add_data(raw[9:])
    (message,) = list(buffer)
    assert message.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.payload == b'{"contentBlockIndex":0,"delta":{"text":"h\xc3\xa9"},"p":"abcdefgh"}'


def test_botocore_parses_a_whole_converse_stream_as_boto3_would(bedrock_wire: SimpleNamespace) -> None:
    reply = bedrock_wire.Reply(
        [{"text": "Hi there"}, {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}}], "tool_use"
    )
    events = list(_converse_stream(b"".join(bedrock_wire.stream_frames(reply))))
    kinds = [next(iter(e)) for e in events]
    assert kinds == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert events[4]["contentBlockStart"]["start"] == {"toolUse": {"toolUseId": "t1", "name": "f"}}
    assert events[8]["messageStop"]["stopReason"] == "tool_use"
    assert events[9]["metadata"]["usage"]["cacheReadInputTokens"] == 3


def test_botocore_raises_on_the_test_exception_frame(bedrock_wire: SimpleNamespace) -> None:
    data = bedrock_wire.exception("throttlingException", "slow down")
    with pytest.raises(EventStreamError) as info:
        list(_converse_stream(data))
    assert info.value.response["Error"] == {"Code": "throttlingException", "Message": "slow down"}


def test_corrupted_frame_is_an_error_in_the_stream(bedrock_client: openai.OpenAI) -> None:
    stream = bedrock_client.chat.completions.create(
        model="bedrock/bad-crc", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "malformed event-stream frame" in info.value.message
