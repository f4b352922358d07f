"""Chat Completions fields a translating provider cannot honour: one list, one wording.

Providers that translate a Chat Completions body into another API (Claude through
Anthropic Messages, Bedrock Converse) call these before translating, so the same
request is refused the same way whichever of them serves it: a 400
``invalid_request_error`` naming the field and saying what to send instead, never a
field silently dropped. Passthrough providers do not call them: their upstream judges.
"""

from __future__ import annotations

from typing import Any

from modelmux.errors import InvalidRequestError

#: Accepted only at their "off" value (no translating upstream has an equivalent),
#: with what the client can do instead.
UNSUPPORTED_UNLESS_DEFAULT: dict[str, tuple[tuple[Any, ...], str]] = {
    "logprobs": ((None, False), "omit it or set it to false"),
    "top_logprobs": ((None, 0), "omit it or set it to 0"),
    "presence_penalty": ((None, 0, 0.0), "omit it or set it to 0"),
    "frequency_penalty": ((None, 0, 0.0), "omit it or set it to 0"),
    "logit_bias": ((None, {}), "omit it"),
    "audio": ((None,), "omit it; answers are text only"),
    "prediction": ((None,), "omit it"),
    # `{}` switches OpenAI's built-in search on, so only an absent value is "off".
    "web_search_options": ((None,), "omit it, or offer a search function of your own in tools"),
    "functions": ((None, []), "use tools and tool_choice"),
    "function_call": ((None,), "use tools and tool_choice"),
}


def refuse_unsupported(body: dict[str, Any], upstream: str) -> None:
    """Raise a 400 for the first field ``upstream`` (e.g. "Claude") cannot honour."""
    n = body.get("n")
    if n not in (None, 1):
        raise InvalidRequestError(
            f"n: {upstream} returns one choice per request; set n to 1 (or omit it)",
            param="n",
            code="unsupported_value",
        )
    for key, (defaults, instead) in UNSUPPORTED_UNLESS_DEFAULT.items():
        if body.get(key) not in defaults:
            raise InvalidRequestError(
                f"{key}: not supported by {upstream}; {instead}", param=key, code="unsupported_parameter"
            )
    if body.get("modalities") not in (None, ["text"]):
        raise InvalidRequestError(
            f'modalities: {upstream} answers with text only; use ["text"] (or omit it)',
            param="modalities",
            code="unsupported_value",
        )


def refuse_tool_choice_without_tools(choice: Any, has_tools: bool) -> None:
    """OpenAI refuses ``tool_choice`` without ``tools``; so do the translators, rather than drop it."""
    if choice is not None and not has_tools:
        raise InvalidRequestError(
            "tool_choice is only allowed when tools are specified; send tools or leave tool_choice out",
            param="tool_choice",
            code="invalid_value",
        )
