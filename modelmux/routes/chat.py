"""``POST /v1/chat/completions``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelmux.routes.common import forward, read_json
from modelmux.schemas import validate_chat

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    body = await read_json(request)
    validate_chat(body)
    return await forward(request, "chat", body)
