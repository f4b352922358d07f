// Recent requests: this worker's last request log records (no message contents), filtered on the server.

import { getData } from "./api.js";
import { el, fill, fmtMs } from "./dom.js";

const $ = (id) => document.getElementById(id);

function setOptions(select, values) {
  const current = select.value;
  const wanted = ["", ...values];
  if (current && !wanted.includes(current)) wanted.push(current);
  const have = [...select.options].map((o) => o.value);
  if (have.join("\n") === wanted.join("\n")) return;
  select.replaceChildren(...wanted.map((v) => el("option", { value: v }, v || "any")));
  select.value = current;
}

function row(r) {
  const tokens = r.input_tokens != null || r.output_tokens != null ? `${r.input_tokens ?? "–"} / ${r.output_tokens ?? "–"}` : "";
  const where = [r.provider, r.deployment].filter(Boolean).join(" / ");
  return el("tr", { "data-status": r.status },
    el("td", { class: "mono nowrap", title: r.time }, r.time.slice(11, 23)),
    el("td", { class: "mono" }, `${r.method} ${r.endpoint}`),
    el("td", { class: r.status >= 400 ? "err" : "" }, r.status),
    el("td", { class: "nowrap" }, fmtMs(r.latency_ms)),
    el("td", {}, r.model ?? ""),
    el("td", {}, where),
    el("td", {}, tokens),
    el("td", {}, r.cache ?? ""),
    el("td", { class: "mono" }, r.key_id ?? ""),
    el("td", { class: "err" }, r.error ?? ""));
}

export async function refreshRequests(knownModels) {
  const params = { model: $("f-model").value, status: $("f-status").value.trim(), key_id: $("f-key").value, limit: 200 };
  let data;
  try {
    data = await getData("requests", params);
    $("requests-error").textContent = "";
  } catch (error) {
    if (error.name === "AuthError") throw error;
    $("requests-error").textContent = error.message;
    return;
  }
  setOptions($("f-model"), [...new Set([...knownModels, ...data.models])].sort());
  setOptions($("f-key"), data.key_ids);
  $("requests-count").textContent =
    `${data.matched} of ${data.total} kept (at most ${data.capacity} per worker)` + (data.matched > 200 ? ", newest 200 shown" : "");
  fill($("request-log").tBodies[0], data.records.map(row), data.capacity ? "No request yet." : "Recording is off (server.ui.recent_requests = 0).", 10);
}
