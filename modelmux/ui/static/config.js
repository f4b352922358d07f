// The effective configuration, each value with its source; secrets arrive as *** already.

import { getData } from "./api.js";
import { el, fill, fmtValue } from "./dom.js";

const $ = (id) => document.getElementById(id);
let rows = [];

function render() {
  const needle = $("config-filter").value.trim().toLowerCase();
  const shown = rows.filter((r) => !needle || r.key.toLowerCase().includes(needle));
  fill($("config-table").tBodies[0], shown.map((r) =>
    el("tr", { "data-key": r.key },
      el("td", { class: "mono" }, r.key),
      el("td", { class: "mono" }, fmtValue(r.value)),
      el("td", { class: `src-${r.source}`, title: r.origin }, r.origin === r.source ? r.source : `${r.source}: ${r.origin.slice(r.source.length + 1)}`))),
  "No setting matches.", 3);
}

export async function refreshConfig() {
  const data = await getData("config");
  rows = data.settings;
  $("config-path").textContent = data.path ? `File: ${data.path}.` : "No configuration file: defaults and environment only.";
  render();
}

export function setupConfig() {
  $("config-filter").addEventListener("input", render);
}
