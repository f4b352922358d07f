"""``POST /v1/chat/completions``: the pipeline's defaults (the upstream's answer, passed on)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelmux import pipeline
from modelmux.context import RequestContext
from modelmux.gateway import Gateway
from modelmux.schemas import validate_chat


class ChatExchange(pipeline.Exchange):
    api = "chat"


async def chat_completions(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    body = await pipeline.read_json(gw, request, ctx)
    validate_chat(body)
    return await pipeline.run(ChatExchange(gw, request, ctx, body))
