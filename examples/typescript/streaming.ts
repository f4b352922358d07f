// Streaming: print the answer as it arrives, piece by piece.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL ?? "http://127.0.0.1:3000/v1",
  apiKey: process.env.OPENAI_API_KEY ?? "unused",
});
const model = process.env.OPENAI_MODEL ?? "echo";

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Count from one to ten in words, please." }],
  stream: true,
  stream_options: { include_usage: true }, // one last chunk with the token counts
});
let pieces = 0;
for await (const chunk of stream) {
  const content = chunk.choices[0]?.delta.content;
  if (content) {
    pieces += 1;
    process.stdout.write(content);
  }
  if (chunk.usage) {
    console.log(`\n[${pieces} pieces, ${chunk.usage.completion_tokens} completion tokens]`);
  }
}
