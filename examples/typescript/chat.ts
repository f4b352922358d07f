// Basic chat: one question, one answer.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL ?? "http://127.0.0.1:3000/v1",
  apiKey: process.env.OPENAI_API_KEY ?? "unused", // any value unless the gateway sets server.api_keys
});
const model = process.env.OPENAI_MODEL ?? "echo";

const completion = await client.chat.completions.create({
  model,
  messages: [
    { role: "system", content: "You are a concise assistant." },
    { role: "user", content: "Say hello to ModelMux in one short sentence." },
  ],
});
console.log(completion.choices[0].message.content);
console.log(`[model ${completion.model}, ${completion.usage?.total_tokens} tokens]`);
