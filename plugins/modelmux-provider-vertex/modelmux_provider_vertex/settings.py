"""``[providers.NAME]`` settings of a ``type = "vertex"`` provider."""

from __future__ import annotations

from pydantic import Field

from modelmux.plugin import DEFAULT_MAX_TOKENS, EmbeddingCallSettings, ProviderSettings


class VertexSettings(ProviderSettings, EmbeddingCallSettings):
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
