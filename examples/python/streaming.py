"""Streaming: print the answer as it arrives, piece by piece."""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.getenv("OPENAI_BASE_URL", "http://127.0.0.1:3000/v1"),
    api_key=os.getenv("OPENAI_API_KEY", "unused"),
)
model = os.getenv("OPENAI_MODEL", "echo")

stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Count from one to ten in words, please."}],
    stream=True,
    stream_options={"include_usage": True},  # one last chunk with the token counts
)
pieces = 0
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        pieces += 1
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage:
        print(f"\n[{pieces} pieces, {chunk.usage.completion_tokens} completion tokens]")
