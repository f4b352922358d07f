"""The ``chat.completion.chunk`` envelope, for providers that build their own streams.

Every chunk of one stream carries the same id, creation time and model; only the
delta, the finish reason or the usage differ. Translating providers (echo, Vertex,
Bedrock) make one ``Chunks`` per stream and ask it for each chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Chunks:
    #: May change once the upstream names its message (Anthropic's ``message_start``).
    id: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        """A chunk with one choice: a delta, and a finish reason on the last one."""
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def usage(self, usage: dict[str, Any]) -> dict[str, Any]:
        """The usage-only chunk sent after the finish when ``stream_options.include_usage``."""
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage,
        }
