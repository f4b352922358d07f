"""ModelMux provider for Azure OpenAI: type ``azure``."""

from modelmux_provider_azure.provider import AzureProvider, AzureSettings

__all__ = ["AzureProvider", "AzureSettings"]
