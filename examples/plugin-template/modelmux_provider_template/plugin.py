"""Hook implementations: what this plugin registers."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from modelmux.plugin import (
    Completion,
    DictEventStream,
    EventStream,
    Provider,
    ProviderSettings,
    RegisterProvider,
    UpstreamRequest,
    hookimpl,
)


class TemplateSettings(ProviderSettings):
    type: str = "template"
    greeting: str = "hello from the template"


class TemplateProvider(Provider):
    settings: TemplateSettings

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        # A real provider calls its upstream here with self.host.http and maps errors with modelmux.http.
        cid, created, text = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), self.settings.greeting
        usage = {"prompt_tokens": 1, "completion_tokens": len(text.split()), "total_tokens": 1 + len(text.split())}
        if not request.stream:
            message = {"role": "assistant", "content": text, "refusal": None}
            return Completion(
                data={
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": request.public_model,
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": message}],
                    "usage": usage,
                }
            )
        include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": request.public_model}
            for delta, finish in (({"role": "assistant", "content": text}, None), ({}, "stop")):
                yield {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            stream.usage = usage  # the host counts the tokens also when the client asked for no usage chunk
            if include_usage:
                yield {**base, "choices": [], "usage": usage}

        stream = DictEventStream(chunks())
        return stream


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register("template", TemplateProvider, TemplateSettings)
