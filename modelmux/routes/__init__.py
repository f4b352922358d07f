"""Every path ModelMux serves, in one table (``dispatch.Dispatcher`` serves it)."""

from __future__ import annotations

from modelmux.dispatch import Route
from modelmux.routes import chat, embeddings, health, models, responses

ROUTES = (
    Route.of("/v1/chat/completions", POST=chat.chat_completions),
    Route.of("/v1/responses", POST=responses.create_response),
    Route.of("/v1/responses/{response_id}", GET=responses.retrieve_response, DELETE=responses.delete_response),
    Route.of("/v1/responses/{response_id}/input_items", GET=responses.list_input_items),
    Route.of("/v1/embeddings", POST=embeddings.create_embeddings),
    Route.of("/v1/models", GET=models.list_models),
    Route.of("/v1/models/{model:path}", GET=models.retrieve_model),
    Route.of("/health", GET=health.health),
    Route.of("/health/live", GET=health.live),
    Route.of("/health/ready", GET=health.ready),
    Route.of("/metrics", GET=health.metrics_endpoint),
)
