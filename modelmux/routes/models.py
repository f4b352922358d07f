"""``GET /v1/models`` and ``GET /v1/models/{model}`` in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modelmux.routes.common import gateway, json_response

router = APIRouter()


def _entry(name: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owner}


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    gw = gateway(request)
    created = int(gw.started_at)
    data = [_entry(name, m.targets()[0].provider, created) for name, m in sorted(gw.config.settings.models.items())]
    return json_response({"object": "list", "data": data})


@router.get("/v1/models/{model:path}")
async def retrieve_model(model: str, request: Request) -> Response:
    gw = gateway(request)
    configured = gw.config.settings.models.get(model)
    if configured is None:
        chain = gw.router.resolve(model)  # raises model_not_found with the list of names
        return json_response(_entry(model, chain[0].provider, int(gw.started_at)))
    return json_response(_entry(model, configured.targets()[0].provider, int(gw.started_at)))
