"""The ``echo`` provider: answers with the text of the last user message.

Offline and deterministic; streams word by word when asked. It is what a fresh
install serves, and what tests and examples use when no upstream is needed.

So that tool loops and structured output can be tried without a model, it also:
- calls a function tool when the last message is the user's and either ``tool_choice``
  forces one (``required`` or a named function) or the message names a tool; the
  arguments are :func:`sample` of the tool's ``parameters``;
- answers with the tool results' text when the last message is a tool result (so a
  tool loop ends);
- answers ``response_format`` ``json_schema`` with :func:`sample` of the schema, and
  ``json_object`` with the message itself if it is a JSON object, else ``{"text": ...}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import Field

from modelmux.plugin import (
    Chunks,
    Completion,
    DictEventStream,
    EventStream,
    InvalidRequestError,
    Provider,
    ProviderSettings,
    RegisterPreset,
    RegisterProvider,
    UpstreamRequest,
    embedding_inputs,
    embedding_response,
    hookimpl,
)

#: The longest vector echo makes (a bound on what one request may ask it to build).
MAX_DIMENSIONS = 4096


class EchoSettings(ProviderSettings):
    """Offline: answers with the last user message, word by word when streaming. No network, no keys."""

    type: str = "echo"
    delay_ms: float = Field(0.0, ge=0, description="pause between streamed words")
    embedding_dimensions: int = Field(
        256, ge=1, le=MAX_DIMENSIONS, description="length of the vectors /v1/embeddings answers without dimensions"
    )


def _text(content: Any) -> str:
    """A message's text: a string, or its ``text`` parts joined by spaces."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _count(text: str) -> int:
    return len(text.split())


def echo_vector(words: list[str], dimensions: int) -> list[float]:
    """A unit vector from the words (feature hashing): the same words give the same vector, and
    texts sharing words point the same way, so similarity searches behave plausibly offline."""
    values = [0.0] * dimensions
    for word in words:
        digest = hashlib.blake2b(word.lower().encode(), digest_size=32).digest()
        for at in range(0, 32, 4):  # eight signed hits per word
            slot = int.from_bytes(digest[at : at + 4], "little")
            values[slot % dimensions] += 1.0 if slot >> 31 else -1.0
    norm = math.sqrt(math.fsum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _last(pattern: str, text: str, default: str) -> str:
    found = re.findall(pattern, text)
    return str(found[-1]) if found else default


#: Most values one sample makes: ``$defs`` that use each other can multiply a 2 KB schema into
#: megabytes (each definition using the next twice doubles the answer). Past it, values are the
#: emptiest that fit; past twice it, ``null``.
SAMPLE_BUDGET = 1000
#: Past this depth arrays are empty and optional parts left out, so recursive schemas end.
SAMPLE_CLOSE_DEPTH = 4
#: A hard stop for schemas that cannot end (a required recursive property): ``null`` from here.
SAMPLE_MAX_DEPTH = 32
_WORD = r"\w[\w'-]*"
_NUMBER = r"-?\d+(?:\.\d+)?"


def sample(schema: Any, text: str) -> Any:
    """A value that fits the JSON ``schema``, taken from ``text`` where it can be: strings are
    its last word, numbers its last number (0 if none), booleans false, enums their first
    value, arrays one item, objects every property. Bounded: at most ``SAMPLE_BUDGET`` values,
    and a ``$ref`` met again inside itself is closed (no array items, only required properties)."""
    return _Sampler(_last(_WORD, text, ""), _last(_NUMBER, text, "0")).value(schema, {}, 0, False)


class _Sampler:
    def __init__(self, word: str, number: str) -> None:
        self.word = word
        self.number = number
        self.left = SAMPLE_BUDGET
        #: The ``$ref`` targets being expanded, outermost first (the cycle guard).
        self.refs: list[int] = []

    def value(self, schema: Any, defs: dict[str, Any], depth: int, closing: bool) -> Any:
        self.left -= 1
        if self.left < -SAMPLE_BUDGET or depth > SAMPLE_MAX_DEPTH:
            return None
        if not isinstance(schema, dict):
            return self.word
        closing = closing or depth > SAMPLE_CLOSE_DEPTH or self.left <= 0
        own = [d for d in (schema.get("$defs"), schema.get("definitions")) if isinstance(d, dict)]
        if own:
            defs = {**defs, **own[0], **(own[1] if len(own) > 1 else {})}
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._ref(ref.rsplit("/", 1)[-1], defs, depth, closing)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        for key in ("anyOf", "oneOf", "allOf"):
            choices = schema.get(key)
            options = [o for o in choices if isinstance(o, dict)] if isinstance(choices, list) else []
            if options:
                # closing a recursive schema: take the option that ends it
                ends = [o for o in options if o.get("type") == "null"]
                return self.value(ends[0] if ends and closing else options[0], defs, depth + 1, closing)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or "properties" in schema:
            return self._object(schema, defs, depth, closing)
        if kind == "array":
            return [] if closing else [self.value(schema.get("items"), defs, depth + 1, closing)]
        if kind in ("integer", "number"):
            number = float(self.number)
            return int(number) if kind == "integer" or number.is_integer() else number
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        return self.word

    def _ref(self, name: str, defs: dict[str, Any], depth: int, closing: bool) -> Any:
        target = defs.get(name, {})
        # by identity: nested $defs may reuse a name for another schema
        seen = self.refs.count(id(target))
        if seen >= 2:  # already closed once on this path and still recursing: give up here
            return None
        self.refs.append(id(target))
        try:
            return self.value(target, defs, depth + 1, closing or seen > 0)
        finally:
            self.refs.pop()

    def _object(self, schema: dict[str, Any], defs: dict[str, Any], depth: int, closing: bool) -> dict[str, Any]:
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        if closing:
            required = schema.get("required")
            wanted = set(required) if isinstance(required, list) and all(isinstance(r, str) for r in required) else ()
            props = {name: sub for name, sub in props.items() if name in wanted}
        return {name: self.value(sub, defs, depth + 1, closing) for name, sub in props.items()}


def _tool_to_call(body: dict[str, Any], text: str) -> dict[str, Any] | None:
    """The function tool echo calls, if any: only right after a user message, when
    ``tool_choice`` forces one or the message names one (never with ``tool_choice: none``)."""
    tools = [
        f for t in body.get("tools") or [] if t.get("type") == "function" and isinstance(f := t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none" or body["messages"][-1].get("role") != "user":
        return None
    if isinstance(choice, dict) and choice.get("type") == "function":
        forced = choice.get("function")
        name = forced.get("name") if isinstance(forced, dict) else None
        return next((dict(t) for t in tools if t.get("name") == name), None)
    for tool in tools:
        if re.search(rf"(?<![\w-]){re.escape(str(tool.get('name')))}(?![\w-])", text):
            return dict(tool)
    return dict(tools[0]) if choice == "required" else None


def _call(tool: dict[str, Any], text: str) -> dict[str, Any]:
    arguments = sample(tool.get("parameters") or {"type": "object"}, text)
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {
            "name": str(tool.get("name")),
            "arguments": json.dumps(arguments if isinstance(arguments, dict) else {}),
        },
    }


def _answer_text(body: dict[str, Any]) -> str:
    """The text echo answers with: the trailing tool results, else the last user message,
    shaped as JSON when ``response_format`` asks for it."""
    messages = body["messages"]
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, _text(message.get("content")))
    text = "\n".join(results) if results else last_user_text(messages)
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return text
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return json.dumps(sample(schema if isinstance(schema, dict) else {"type": "object"}, text))
    if kind == "json_object":
        try:
            if isinstance(json.loads(text), dict):
                return text
        except ValueError:
            pass
        return json.dumps({"text": text})
    return text


class EchoProvider(Provider):
    settings: EchoSettings

    async def chat(self, request: UpstreamRequest) -> Completion | EventStream:
        body = request.body
        if int(body.get("n") or 1) != 1:
            raise InvalidRequestError("the echo provider answers with one choice: set n to 1", param="n")
        user_text = last_user_text(body["messages"])
        tool = _tool_to_call(body, user_text)
        call = _call(tool, user_text) if tool else None
        text = "" if call else _answer_text(body)
        answered = _count(call["function"]["arguments"]) if call else _count(text)
        prompt = sum(_count(str(m.get("content") or "")) for m in body["messages"])
        usage = {"prompt_tokens": prompt, "completion_tokens": answered, "total_tokens": prompt + answered}
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not request.stream:
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if call:
                message.update(content=None, tool_calls=[call])
            return Completion(
                data={
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": request.public_model,
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "logprobs": None,
                            "finish_reason": "tool_calls" if call else "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = Chunks(cid, request.public_model, created)

        def counted() -> None:  # the host counts the tokens also when the client asked for no usage chunk
            stream.usage = usage

        stream = DictEventStream(self._stream(chunks, text, call, usage if include_usage else None, counted))
        return stream

    async def _stream(
        self,
        chunks: Chunks,
        text: str,
        call: dict[str, Any] | None,
        usage: dict[str, int] | None,
        counted: Callable[[], None],
    ) -> AsyncIterator[dict[str, Any]]:
        if call:
            # as OpenAI streams a call: id and name first, then the arguments
            head = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
            yield chunks.delta({"role": "assistant", "content": None, "tool_calls": [head]})
            yield chunks.delta({"tool_calls": [{"index": 0, "function": {"arguments": call["function"]["arguments"]}}]})
            yield chunks.delta({}, "tool_calls")
        else:
            yield chunks.delta({"role": "assistant", "content": ""})
            delay = self.settings.delay_ms / 1000
            for i, word in enumerate(text.split(" ")):
                if delay:
                    await asyncio.sleep(delay)
                yield chunks.delta({"content": word if i == 0 else " " + word})
            yield chunks.delta({}, "stop")
        counted()
        if usage is not None:
            yield chunks.usage(usage)

    async def embeddings(self, request: UpstreamRequest) -> Completion:
        dimensions = request.body.get("dimensions") or self.settings.embedding_dimensions
        if dimensions > MAX_DIMENSIONS:
            raise InvalidRequestError(
                f"Invalid value for 'dimensions': {dimensions}; the echo provider makes at most {MAX_DIMENSIONS}.",
                param="dimensions",
                code="invalid_value",
            )
        vectors: list[list[float]] = []
        tokens = 0
        for item in embedding_inputs(request.body):
            words = item.split() if isinstance(item, str) else [str(t) for t in item]
            tokens += len(words)
            vectors.append(echo_vector(words or [str(item)], dimensions))
        return embedding_response(request, vectors, tokens)

    async def list_models(self) -> list[str]:
        return ["echo"]


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
    register("echo", EchoProvider, EchoSettings)


@hookimpl
def register_config_presets(register: RegisterPreset) -> None:
    register("echo", "offline echo provider, no credentials", lambda detected: _PRESET)
