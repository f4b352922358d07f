"""``[providers.NAME]`` settings of a ``type = "vertex"`` provider."""

from __future__ import annotations

from pydantic import Field

from modelmux.plugin import DEFAULT_MAX_TOKENS, ProviderSettings


class VertexSettings(ProviderSettings):
    """Claude (Anthropic publisher models) on Google Vertex AI (docs/providers/vertex.md)."""

    type: str = "vertex"
    project: str | None = Field(None, description="GCP project; else from the credentials or GOOGLE_CLOUD_PROJECT")
    region: str = Field("us-east5", min_length=1, description='Vertex AI region, or "global"')
    credentials_file: str | None = Field(
        None, description="service-account JSON key; Application Default Credentials when absent"
    )
    base_url: str | None = Field(None, description="override of https://{region}-aiplatform.googleapis.com")
    default_max_tokens: int = Field(
        DEFAULT_MAX_TOKENS,
        ge=1,
        description="max_tokens sent when the client gives neither max_tokens nor max_completion_tokens",
    )
    embedding_concurrency: int = Field(
        4, ge=1, le=64, description="/v1/embeddings: upstream calls of one request sent at the same time"
    )
    embedding_max_calls: int = Field(
        256,
        ge=1,
        description="/v1/embeddings: most upstream calls one request may need (inputs / the model's per-call "
        "limit); more is a 400 naming this setting",
    )
