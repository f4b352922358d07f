"""Tool calling: the model asks for a function, we run it and send back the result,
until the model answers in text."""

import json
import os

from openai import OpenAI

client = OpenAI(
    base_url=os.getenv("OPENAI_BASE_URL", "http://127.0.0.1:3000/v1"),
    api_key=os.getenv("OPENAI_API_KEY", "unused"),
)
model = os.getenv("OPENAI_MODEL", "echo")


def get_weather(city: str) -> str:
    return f"It is 18 °C and sunny in {city}."  # a real app would call a weather service


functions = {"get_weather": get_weather}
tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "the city name, e.g. Paris"}},
                "required": ["city"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
]
messages = [{"role": "user", "content": "Use get_weather to look up the weather in Paris"}]

for _ in range(5):  # a bound, in case the model keeps calling tools
    message = client.chat.completions.create(model=model, messages=messages, tools=tools).choices[0].message
    if not message.tool_calls:
        break
    messages.append(message)  # the assistant turn with its tool calls goes back too
    for call in message.tool_calls:
        arguments = json.loads(call.function.arguments)
        result = functions[call.function.name](**arguments)
        print(f"tool call: {call.function.name}({arguments}) -> {result}")
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
print(f"answer: {message.content}")
