"""The ``echo`` provider: answers with the text of the last user message.

Offline and deterministic; streams word by word when asked. It is what a fresh
install serves, and what tests and examples use when no upstream is needed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import Field

from modelmux import hookimpl
from modelmux.errors import InvalidRequestError
from modelmux.provider import (
    Completion,
    DictEventStream,
    EventStream,
    Host,
    Provider,
    ProviderSettings,
    UpstreamRequest,
)
from modelmux.registry import RegisterPreset, RegisterProvider
from modelmux.translate.chunks import Chunks


class EchoSettings(ProviderSettings):
    type: str = "echo"
    delay_ms: float = Field(0.0, ge=0, description="pause between streamed words")


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
        return ""
    return ""


def _count(text: str) -> int:
    return len(text.split())


class EchoProvider(Provider):
    settings: EchoSettings

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        body = request.body
        if int(body.get("n") or 1) != 1:
            raise InvalidRequestError("the echo provider answers with one choice: set n to 1", param="n")
        text = last_user_text(body["messages"])
        prompt = sum(_count(str(m.get("content") or "")) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": _count(text),
            "total_tokens": prompt + _count(text),
        }
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not request.stream:
            return Completion(
                data={
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": request.public_model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return DictEventStream(self._stream(cid, created, request.public_model, text, usage, include_usage))

    async def _stream(
        self,
        cid: str,
        created: int,
        model: str,
        text: str,
        usage: dict[str, int],
        include_usage: bool,
    ) -> AsyncIterator[dict[str, Any]]:
        chunks = Chunks(cid, model, created)
        chunk = chunks.delta

        yield chunk({"role": "assistant", "content": ""})
        delay = self.settings.delay_ms / 1000
        for i, word in enumerate(text.split(" ")):
            if delay:
                await asyncio.sleep(delay)
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, "stop")
        if include_usage:
            yield chunks.usage(usage)

    async def list_models(self) -> list[str]:
        return ["echo"]


def _factory(name: str, settings: ProviderSettings, host: Host) -> EchoProvider:
    return EchoProvider(name, settings, host)


_PRESET = """\
# ModelMux configuration: the offline echo provider.
[server]
host = "127.0.0.1"
port = 3000

[state]
backend = "disk"

[providers.echo]
type = "echo"

[models.echo]
provider = "echo"
model = "echo"
"""


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register("echo", _factory, EchoSettings)


@hookimpl
def register_config_presets(register: RegisterPreset) -> None:
    register("echo", "offline echo provider, no credentials", lambda detected: _PRESET)
