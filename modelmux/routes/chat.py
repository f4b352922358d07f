"""``POST /v1/chat/completions``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelmux.routes.common import DirectRoute, forward, read_json
from modelmux.schemas import validate_chat

router = APIRouter()


async def chat_completions(request: Request) -> Response:
    body = await read_json(request)
    validate_chat(body)
    return await forward(request, "chat", body)


# The hottest route: no per-request dependency solving (see DirectRoute).
router.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"], route_class_override=DirectRoute)
