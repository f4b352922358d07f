// Tool calling: the model asks for a function, we run it and send back the result,
// until the model answers in text.
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";

const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL ?? "http://127.0.0.1:3000/v1",
  apiKey: process.env.OPENAI_API_KEY ?? "unused",
});
const model = process.env.OPENAI_MODEL ?? "echo";

function getWeather({ city }: { city: string }): string {
  return `It is 18 °C and sunny in ${city}.`; // a real app would call a weather service
}

const functions: Record<string, (args: { city: string }) => string> = { get_weather: getWeather };
const tools: ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The current weather in a city.",
      parameters: {
        type: "object",
        properties: { city: { type: "string", description: "the city name, e.g. Paris" } },
        required: ["city"],
        additionalProperties: false,
      },
      strict: true,
    },
  },
];
const messages: ChatCompletionMessageParam[] = [
  { role: "user", content: "Use get_weather to look up the weather in Paris" },
];

for (let turn = 0; turn < 5; turn++) { // a bound, in case the model keeps calling tools
  const message = (await client.chat.completions.create({ model, messages, tools })).choices[0].message;
  if (!message.tool_calls?.length) {
    console.log(`answer: ${message.content}`);
    break;
  }
  messages.push(message); // the assistant turn with its tool calls goes back too
  for (const call of message.tool_calls) {
    if (call.type !== "function") continue;
    const args = JSON.parse(call.function.arguments);
    const result = functions[call.function.name](args);
    console.log(`tool call: ${call.function.name}(${call.function.arguments}) -> ${result}`);
    messages.push({ role: "tool", tool_call_id: call.id, content: result });
  }
}
