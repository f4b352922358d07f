"""Structured output: the answer is JSON that fits a schema, parsed into a Pydantic object."""

import os

from openai import OpenAI
from pydantic import BaseModel

client = OpenAI(
    base_url=os.getenv("OPENAI_BASE_URL", "http://127.0.0.1:3000/v1"),
    api_key=os.getenv("OPENAI_API_KEY", "unused"),
)
model = os.getenv("OPENAI_MODEL", "echo")


class City(BaseModel):
    name: str
    population: int


completion = client.chat.completions.parse(
    model=model,
    messages=[
        {"role": "system", "content": "Extract the city and its population."},
        {"role": "user", "content": "About 2100000 people live in Paris"},
    ],
    response_format=City,  # sent as a strict json_schema
)
city = completion.choices[0].message.parsed
print(f"JSON: {completion.choices[0].message.content}")
print(f"parsed: {city!r}")
