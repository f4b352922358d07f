"""``GET /v1/models`` and ``GET /v1/models/{model}`` in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelmux.context import RequestContext
from modelmux.gateway import Gateway
from modelmux.pipeline import json_response


def _entry(name: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owner}


async def list_models(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    created = int(gw.started_at)
    data = [_entry(name, m.targets()[0].provider, created) for name, m in sorted(gw.config.settings.models.items())]
    return json_response({"object": "list", "data": data})


async def retrieve_model(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    model: str = request.path_params["model"]
    configured = gw.config.settings.models.get(model)
    if configured is None:
        chain = gw.router.resolve(model)  # raises model_not_found with the list of names
        return json_response(_entry(model, chain[0].provider, int(gw.started_at)))
    return json_response(_entry(model, configured.targets()[0].provider, int(gw.started_at)))
