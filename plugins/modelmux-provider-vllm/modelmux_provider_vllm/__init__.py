"""ModelMux provider for any OpenAI-compatible server (vLLM, llama.cpp, OpenAI): type ``openai_compatible``."""

from modelmux_provider_vllm.provider import OpenAICompatibleProvider, OpenAICompatibleSettings

__all__ = ["OpenAICompatibleProvider", "OpenAICompatibleSettings"]
