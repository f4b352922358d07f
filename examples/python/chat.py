"""Basic chat: one question, one answer."""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.getenv("OPENAI_BASE_URL", "http://127.0.0.1:3000/v1"),
    api_key=os.getenv("OPENAI_API_KEY", "unused"),  # any value unless the gateway sets server.api_keys
)
model = os.getenv("OPENAI_MODEL", "echo")

completion = client.chat.completions.create(
    model=model,
    messages=[
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Say hello to ModelMux in one short sentence."},
    ],
)
print(completion.choices[0].message.content)
print(f"[model {completion.model}, {completion.usage.total_tokens if completion.usage else '?'} tokens]")
