// The overview: gateway status, live traffic, providers, models, the state store and the cache.

import { getData } from "./api.js";
import { badge, el, fill, fmtMs, fmtNumber, fmtValue } from "./dom.js";
import { lineChart } from "./plot.js";

const $ = (id) => document.getElementById(id);
// Shown in their own columns; every other field of a provider's health goes under "Details".
const PROVIDER_COLUMNS = new Set(["type", "status", "circuit", "last_error", "last_error_message", "error"]);

function details(entries) {
  const shown = entries.filter(([, v]) => v != null && v !== "" && !(typeof v === "object" && !Object.keys(v).length));
  if (!shown.length) return "";
  return el("details", {}, el("summary", {}, `${shown.length} more`),
    el("dl", { class: "kv" }, shown.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, fmtValue(v))])));
}

function providerRow(name, info) {
  const health = typeof info === "object" && info ? info : { status: info };
  const lastError = health.last_error_message || health.error || "";
  const when = health.last_error && typeof health.last_error === "string" ? ` (${health.last_error})` : "";
  return el("tr", { "data-provider": name },
    el("td", {}, el("strong", {}, name)),
    el("td", {}, health.type ?? ""),
    el("td", {}, badge(health.status)),
    el("td", {}, health.circuit == null ? el("span", { class: "muted" }, "–") : badge(health.circuit)),
    el("td", { class: lastError ? "err" : "muted" }, lastError ? `${lastError}${when}` : "none"),
    el("td", {}, details(Object.entries(health).filter(([k]) => !PROVIDER_COLUMNS.has(k)))));
}

function modelRow(model) {
  const deployments = model.deployments.map((d) => {
    const notes = [];
    if (model.deployments.length > 1) notes.push(` ×${d.weight}`);
    if (d.circuit && d.circuit !== "closed") notes.push(" ", badge(d.circuit));
    if (d.cooling_down_seconds > 0) notes.push(` cooling down ${fmtNumber(d.cooling_down_seconds, 1)} s`);
    if (d.inflight) notes.push(` · ${d.inflight} in flight`);
    return el("div", { "data-deployment": `${d.provider}/${d.model}` }, el("code", {}, `${d.provider}/${d.model}`), notes);
  });
  return el("tr", { "data-model": model.name },
    el("td", {}, el("strong", {}, model.name)),
    el("td", {}, deployments),
    el("td", {}, model.deployments.length > 1 ? model.strategy : el("span", { class: "muted" }, "–")),
    el("td", {}, model.fallbacks.length ? model.fallbacks.join(", ") : el("span", { class: "muted" }, "none")),
    el("td", {}, model.cache ? "on" : "off"));
}

function storeRow(name, store) {
  const { backend, status, error, ...rest } = store;
  return el("tr", { "data-store": name },
    el("td", {}, el("strong", {}, name)),
    el("td", {}, backend),
    el("td", {}, badge(status)),
    el("td", { class: error ? "err" : "" }, error || details(Object.entries(rest))));
}

export function renderTraffic(traffic) {
  const now = traffic.last_minute || {};
  $("m-rate").textContent = fmtNumber(now.requests_per_second, 2);
  $("m-errors").textContent = now.error_rate == null ? "–" : `${fmtNumber(now.error_rate * 100, 1)} %`;
  $("m-p50").textContent = fmtMs(now.p50_ms);
  $("m-p95").textContent = fmtMs(now.p95_ms);
  $("m-tokens").textContent = fmtNumber(now.tokens_per_minute, 0);
  const window = traffic.window;
  $("traffic-note").textContent = window
    ? `Last minute of /v1 requests served by this worker; plots: one point every ${traffic.interval_seconds} s, ` +
      `${fmtNumber(window.requests, 0)} requests in the last ${fmtNumber(window.seconds / 60, 1)} min.`
    : "";
  const series = traffic.series;
  lineChart($("plot-rate"), [{ name: "req/s", points: series.map((p) => [p.time, p.requests_per_second]) }],
    (v) => fmtNumber(v, 2));
  lineChart($("plot-latency"), [
    { name: "p50", points: series.map((p) => [p.time, p.p50_ms]) },
    { name: "p95", points: series.map((p) => [p.time, p.p95_ms]) },
  ], (v) => fmtNumber(v, 0));
}

export async function refreshOverview() {
  const data = await getData("overview");
  const health = data.health;
  const status = $("gw-status");
  status.replaceWith(Object.assign(badge(health.status), { id: "gw-status" }));
  const uptime = health.uptime_seconds != null ? `up ${fmtNumber(health.uptime_seconds / 60, 1)} min` : "";
  $("gw-meta").textContent = [health.version && `version ${health.version}`, uptime,
    health.worker_pid && `worker ${health.worker_pid}`].filter(Boolean).join(" · ");
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  renderTraffic(data.traffic);
  const providers = Object.entries(data.providers || {}).sort(([a], [b]) => a.localeCompare(b));
  fill($("providers").tBodies[0], providers.map(([name, info]) => providerRow(name, info)), "No provider configured.", 6);
  const models = data.models.map(modelRow);
  if (data.default_provider) {
    models.push(el("tr", {}, el("td", { class: "muted" }, "any other name"),
      el("td", {}, el("code", {}, `${data.default_provider}/<name>`)), el("td", {}, "–"), el("td", {}, "router.default_provider"),
      el("td", {}, "")));
  }
  fill($("models").tBodies[0], models, "No model configured.", 5);
  fill($("stores").tBodies[0], Object.entries(data.stores).map(([n, s]) => storeRow(n, s)), "", 4);
}
