"""``POST /v1/embeddings``: checked here, then the pipeline's defaults (limits, cache, routing,
usage, metrics and the log line) with the providers' ``embeddings()`` method."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelmux import pipeline
from modelmux.context import RequestContext
from modelmux.embeddings import validate_embeddings
from modelmux.gateway import Gateway


class EmbeddingsExchange(pipeline.Exchange):
    api = "embeddings"


async def create_embeddings(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    body = await pipeline.read_json(gw, request, ctx)
    validate_embeddings(body)
    return await pipeline.run(EmbeddingsExchange(gw, request, ctx, body))
