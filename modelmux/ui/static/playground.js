// The playground: one message to /v1/chat/completions, the answer streamed into "Response".
// It is an ordinary API call: with a client key the user types, or with the admin session
// when the operator allows it (server.ui.playground_admin_key).

import { ROOT, adminKey } from "./api.js";

const $ = (id) => document.getElementById(id);
let running = null;

function events(buffer, onData) {
  // SSE frames end with a blank line; returns what is left of an incomplete frame.
  let cut;
  while ((cut = buffer.indexOf("\n\n")) >= 0) {
    const frame = buffer.slice(0, cut);
    buffer = buffer.slice(cut + 2);
    for (const line of frame.split("\n")) {
      if (line.startsWith("data:")) onData(line.slice(5).trim());
    }
  }
  return buffer;
}

async function send(session) {
  const output = $("pg-response");
  const status = $("pg-status");
  output.textContent = "";
  status.textContent = "sending…";
  const headers = { "Content-Type": "application/json" };
  const key = session.playground_admin_key && $("pg-admin").checked ? adminKey() : $("pg-key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  const body = {
    model: $("pg-model").value.trim(),
    messages: [{ role: "user", content: $("pg-message").value }],
    stream: true,
    stream_options: { include_usage: true },
  };
  running = new AbortController();
  $("pg-send").disabled = true;
  $("pg-stop").disabled = false;
  const started = performance.now();
  try {
    const response = await fetch(new URL("v1/chat/completions", ROOT), {
      method: "POST", headers, body: JSON.stringify(body), signal: running.signal,
    });
    if (!response.ok) {
      const error = await response.json().catch(() => null);
      status.textContent = `${response.status}: ${error?.error?.message || response.statusText}`;
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let usage = null;
    let failure = null;
    status.textContent = "streaming…";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = events(buffer + value, (data) => {
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) failure = chunk.error.message;
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) output.textContent += delta;
        if (chunk.usage) usage = chunk.usage;
      });
    }
    const took = `${Math.round(performance.now() - started)} ms`;
    const tokens = usage ? `, ${usage.prompt_tokens} in / ${usage.completion_tokens} out tokens` : "";
    status.textContent = failure ? `stream ended with an error: ${failure}` : `done in ${took}${tokens}`;
  } catch (error) {
    status.textContent = error.name === "AbortError" ? "stopped" : `failed: ${error.message}`;
  } finally {
    running = null;
    $("pg-send").disabled = false;
    $("pg-stop").disabled = true;
  }
}

export function setupPlayground(session) {
  const list = $("pg-models");
  list.replaceChildren(...session.models.map((name) => Object.assign(document.createElement("option"), { value: name })));
  if (!$("pg-model").value && session.models.length) $("pg-model").value = session.models[0];
  $("pg-key-row").hidden = !session.client_keys_required;
  $("pg-admin-row").hidden = !(session.client_keys_required && session.playground_admin_key);
  $("pg-form").onsubmit = (event) => {
    event.preventDefault();
    if (!running) send(session);
  };
  $("pg-stop").onclick = () => running?.abort();
}
