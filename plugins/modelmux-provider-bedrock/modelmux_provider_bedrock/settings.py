"""The ``[providers.NAME]`` table of a ``type = "bedrock"`` provider."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from modelmux.plugin import EmbeddingCallSettings, ProviderSettings


class BedrockSettings(ProviderSettings, EmbeddingCallSettings):
    """Every AWS Bedrock chat model through the Converse API (docs/providers/bedrock.md)."""

    type: str = "bedrock"
    region: str | None = Field(
        None, description="AWS region; else AWS_REGION, AWS_DEFAULT_REGION or the profile's region"
    )
    endpoint_url: str | None = Field(
        None, description="override of https://bedrock-runtime.{region}.amazonaws.com (VPC endpoints, tests)"
    )
    profile: str | None = Field(None, description="AWS shared-config profile; else AWS_PROFILE or the default chain")
    aws_access_key_id: str | None = Field(
        None, description="explicit access key (with aws_secret_access_key); unset: the AWS credential chain"
    )
    aws_secret_access_key: SecretStr | None = Field(None, description="the secret of aws_access_key_id")
    aws_session_token: SecretStr | None = Field(None, description="session token of temporary keys")
    api_key: SecretStr | None = Field(
        None,
        description="a Bedrock API key sent as 'Authorization: Bearer', instead of SigV4; "
        "else AWS_BEARER_TOKEN_BEDROCK",
    )

    @field_validator("region", "endpoint_url", "profile", "aws_access_key_id")
    @classmethod
    def _empty_str_is_unset(cls, value: str | None) -> str | None:
        # ``${VAR:-}`` expands to "": treat it as "not configured".
        return value or None

    @field_validator("aws_secret_access_key", "aws_session_token", "api_key")
    @classmethod
    def _empty_secret_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> BedrockSettings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError(
                "aws_access_key_id and aws_secret_access_key go together: set both, or neither to use "
                "the AWS credential chain (environment, profile, SSO, instance role)"
            )
        return self
