"""The Responses API: the gateway keeps the conversation, so a follow-up only sends
the new input and previous_response_id."""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.getenv("OPENAI_BASE_URL", "http://127.0.0.1:3000/v1"),
    api_key=os.getenv("OPENAI_API_KEY", "unused"),
)
model = os.getenv("OPENAI_MODEL", "echo")

first = client.responses.create(model=model, input="My name is Ada. Please remember it.")
print(f"turn 1 {first.id}: {first.output_text}")

second = client.responses.create(model=model, input="What is my name?", previous_response_id=first.id)
print(f"turn 2 {second.id} (previous_response_id={second.previous_response_id}): {second.output_text}")

# The gateway replayed turn 1 to the model: turn 2 read more input than it sent.
if first.usage and second.usage:
    print(f"input tokens: turn 1 {first.usage.input_tokens}, turn 2 {second.usage.input_tokens}")
