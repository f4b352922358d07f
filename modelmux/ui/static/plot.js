// Line charts in plain SVG (no library): time on x, one or two series on y.

const NS = "http://www.w3.org/2000/svg";
const W = 600;
const H = 170;
const PAD = { left: 44, right: 10, top: 16, bottom: 22 };

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text != null) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/**
 * Draw ``series`` ([{name, points: [[unixSeconds, value|null], ...]}]) into ``svg``.
 * Gaps (null values) break the line; ``format`` labels the y axis.
 */
export function lineChart(svg, series, format = (v) => String(v)) {
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const nodes = [];
  const all = series.flatMap((s) => s.points);
  const times = all.map((p) => p[0]);
  const values = all.map((p) => p[1]).filter((v) => v != null);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  nodes.push(svgEl("line", { class: "axis", x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }));
  if (times.length < 1) {
    nodes.push(svgEl("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" }, "collecting samples…"));
    svg.replaceChildren(...nodes);
    return;
  }
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1);
  const top = niceMax(Math.max(0, ...values));
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    nodes.push(svgEl("line", { class: "axis", x1: PAD.left, y1: y(value), x2: W - PAD.right, y2: y(value) }));
    nodes.push(svgEl("text", { class: "tick", x: PAD.left - 4, y: y(value) + 3, "text-anchor": "end" }, format(value)));
  }
  nodes.push(svgEl("text", { class: "tick", x: PAD.left, y: H - 6 }, clock(t0)));
  nodes.push(svgEl("text", { class: "tick", x: W - PAD.right, y: H - 6, "text-anchor": "end" }, clock(t1)));
  series.forEach((s, index) => {
    let d = "";
    s.points.forEach(([t, v], i) => {
      if (v == null) return;
      const before = i > 0 && s.points[i - 1][1] != null;
      const after = i + 1 < s.points.length && s.points[i + 1][1] != null;
      d += `${before ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      // A point without neighbours draws no line: a dot instead.
      if (!before && !after) nodes.push(svgEl("circle", { class: `f${index}`, cx: x(t), cy: y(v), r: 3 }));
    });
    if (d) nodes.push(svgEl("path", { class: `line s${index}`, d, fill: "none" }));
    if (series.length > 1) {
      const lx = W - PAD.right - 70 * (series.length - index);
      nodes.push(svgEl("rect", { class: `f${index}`, x: lx, y: 3, width: 10, height: 3 }));
      nodes.push(svgEl("text", { class: "tick", x: lx + 14, y: 8 }, s.name));
    }
  });
  svg.replaceChildren(...nodes);
}
