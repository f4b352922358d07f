// Building DOM nodes from data: text only (textContent), never HTML from the server.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function fill(tbody, rows, emptyText, columns) {
  if (!rows.length) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: columns, class: "muted" }, emptyText)));
    return;
  }
  tbody.replaceChildren(...rows);
}

/** A status word as a coloured badge: ok / degraded / down and their relatives. */
export function badge(status) {
  const text = status == null ? "unknown" : String(status);
  const word = text.toLowerCase();
  let tone = "st-none";
  if (["ok", "ready", "closed", "up", "healthy"].includes(word)) tone = "st-ok";
  else if (["degraded", "half_open", "half-open", "cooling_down", "unused", "loopback"].includes(word)) tone = "st-warn";
  else if (["down", "error", "open", "failed", "not_ready"].includes(word)) tone = "st-bad";
  return el("span", { class: `badge ${tone}` }, text);
}

export function fmtNumber(value, digits = 1) {
  if (value == null || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function fmtMs(value) {
  if (value == null) return "–";
  return value >= 1000 ? `${fmtNumber(value / 1000, 2)} s` : `${fmtNumber(value, 1)} ms`;
}

export function fmtValue(value) {
  if (value == null) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
