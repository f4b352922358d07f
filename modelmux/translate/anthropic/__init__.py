"""OpenAI Chat Completions <-> Anthropic Messages, both directions, streaming included.

For a provider whose upstream speaks Anthropic Messages: the bundled Vertex AI provider
(Claude), and any Anthropic-API upstream a plugin adds (exported by ``modelmux.plugin``).
Transport is the caller's: it adds what its upstream needs (``anthropic_version``,
``model``, URL, auth) to ``plan.body``.

    plan = await to_anthropic(body, images=host.images)
    body = {"anthropic_version": "vertex-2023-10-16", **plan.body}
    ...
    completion = from_anthropic(message, plan, model=request.public_model)
    chunks = stream_from_anthropic(events, plan, model=request.public_model)
    # or, a whole network read at a time (see AnthropicStream):
    stream = AnthropicStream(plan, model=request.public_model)
    done = stream.feed(event, out)  # appends that event's chunks to the list ``out``
"""

from modelmux.translate.anthropic.errors import error_from_event, error_type_to_exception
from modelmux.translate.anthropic.request import (
    DEFAULT_MAX_TOKENS,
    IMAGE_TYPES,
    JSON_TOOL_NAME,
    THINKING_BUDGETS,
    AnthropicPlan,
    thinking_budget,
    to_anthropic,
)
from modelmux.translate.anthropic.response import FINISH_REASONS, from_anthropic, usage_from_anthropic
from modelmux.translate.anthropic.stream import AnthropicStream, stream_from_anthropic

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASONS",
    "IMAGE_TYPES",
    "JSON_TOOL_NAME",
    "THINKING_BUDGETS",
    "AnthropicPlan",
    "AnthropicStream",
    "error_from_event",
    "error_type_to_exception",
    "from_anthropic",
    "stream_from_anthropic",
    "thinking_budget",
    "to_anthropic",
    "usage_from_anthropic",
]
