"""The public plugin API: everything a ModelMux plugin may import, in one module.

A plugin (the bundled ones under ``plugins/`` included) imports from here and from
``modelmux.testing`` only; every other ``modelmux`` module is the host's own and may
change in any release. What this module exports follows semantic versioning: a name
is removed or changes its signature only in a major release. ``docs/plugins.md``
documents each name (a test keeps that page and ``__all__`` equal).

    from modelmux.plugin import Completion, Provider, ProviderSettings, UpstreamRequest, hookimpl
"""

from __future__ import annotations

from modelmux import hookimpl
from modelmux.config import redact
from modelmux.embeddings import (
    EmbeddingCallSettings,
    batches,
    check_embedding_calls,
    embedding_inputs,
    embedding_response,
    embedding_texts,
    encode_base64,
    estimate_tokens,
    gather_bounded,
)
from modelmux.errors import (
    InvalidRequestError,
    ModelMuxError,
    NotFoundError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRequestError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from modelmux.http import (
    ErrorMapper,
    error_from_status,
    error_message,
    open_upstream,
    probe_timeout,
    read_body,
    request_data,
    retry_after,
    timeout_for,
    upstream_errors,
)
from modelmux.images import Image, ImageFetcher, RequestImages, parse_data_url, per_request
from modelmux.passthrough import (
    StreamFilter,
    get_json,
    raw_stream,
    read_completion,
    request_body,
)
from modelmux.provider import (
    Check,
    Completion,
    DictEventStream,
    EventStream,
    Host,
    Provider,
    ProviderSettings,
    RawEventStream,
    UpstreamRequest,
)
from modelmux.registry import (
    PresetRender,
    RegisterCache,
    RegisterPreset,
    RegisterProvider,
    RegisterStateStore,
    RegisterTool,
)
from modelmux.sse import SSEEvent, SSEParser
from modelmux.stores import Cache, KeyValueStore, StateStore, StoreSettings
from modelmux.tools import Tool, ToolCall, ToolContext, ToolEndpoint, ToolOutput, ToolRoute, ToolSettings
from modelmux.translate.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicPlan,
    AnthropicStream,
    from_anthropic,
    thinking_budget,
    to_anthropic,
    usage_from_anthropic,
)
from modelmux.translate.chunks import Chunks
from modelmux.translate.unsupported import (
    UNSUPPORTED_UNLESS_DEFAULT,
    refuse_tool_choice_without_tools,
    refuse_unsupported,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "UNSUPPORTED_UNLESS_DEFAULT",
    "AnthropicPlan",
    "AnthropicStream",
    "Cache",
    "Check",
    "Chunks",
    "Completion",
    "DictEventStream",
    "EmbeddingCallSettings",
    "ErrorMapper",
    "EventStream",
    "Host",
    "Image",
    "ImageFetcher",
    "InvalidRequestError",
    "KeyValueStore",
    "ModelMuxError",
    "NotFoundError",
    "PresetRender",
    "Provider",
    "ProviderSettings",
    "RateLimitError",
    "RawEventStream",
    "RegisterCache",
    "RegisterPreset",
    "RegisterProvider",
    "RegisterStateStore",
    "RegisterTool",
    "RequestImages",
    "SSEEvent",
    "SSEParser",
    "StateStore",
    "StoreSettings",
    "StreamFilter",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolEndpoint",
    "ToolOutput",
    "ToolRoute",
    "ToolSettings",
    "UpstreamAuthError",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamRequestError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "batches",
    "check_embedding_calls",
    "embedding_inputs",
    "embedding_response",
    "embedding_texts",
    "encode_base64",
    "error_from_status",
    "error_message",
    "estimate_tokens",
    "from_anthropic",
    "gather_bounded",
    "get_json",
    "hookimpl",
    "open_upstream",
    "parse_data_url",
    "per_request",
    "probe_timeout",
    "raw_stream",
    "read_body",
    "read_completion",
    "redact",
    "refuse_tool_choice_without_tools",
    "refuse_unsupported",
    "request_body",
    "request_data",
    "retry_after",
    "thinking_budget",
    "timeout_for",
    "to_anthropic",
    "upstream_errors",
    "usage_from_anthropic",
]
