// Shared helpers for the dashboard pages: fetching, formatting, building elements, charts (uPlot).
"use strict";

const DASH = "\u2014"; // shown for any value that is absent
const METHOD_COLOURS = { backprop: "#1f77b4", ga: "#d62728", cmaes: "#2ca02c" };
const EXTRA_COLOURS = ["#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
window.arenaCharts = []; // what each chart drew, for tests: {id, points: {series label: non-null points}}

// An API key (ARENA_AUTH=keys or ARENA_READS=keys), pasted once and kept in this browser's localStorage.
function withKey(options) {
  const key = localStorage.getItem("arenaApiKey");
  if (!key) return options;
  return { ...(options || {}), headers: { ...((options || {}).headers || {}), Authorization: `Bearer ${key}` } };
}

// A write: JSON (never a form), with the key; on a 401, ask for a key once, remember it and retry.
async function apiWrite(path, body) {
  const send = () => fetch(path, withKey({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) }));
  let response = await send();
  if (response.status === 401) {
    const key = window.prompt("This Arena service needs an API key for changes (arena keys create NAME). Paste it:");
    if (key) { localStorage.setItem("arenaApiKey", key.trim()); response = await send(); }
  }
  if (!response.ok) {
    const error = new Error(`${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

async function api(path, options) {
  const response = await fetch(path, withKey(options));
  if (!response.ok) {
    const error = new Error(`${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// api() that answers null for a 404/501 (an endpoint or a field not there yet) instead of failing.
async function apiOptional(path) {
  try { return await api(path); } catch (error) { if (error.status) return null; throw error; }
}

function present(value) { return value !== null && value !== undefined && !(typeof value === "number" && !isFinite(value)); }

function fmt(value, digits = 3) {
  if (!present(value)) return DASH;
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e7) return value.toLocaleString("en");
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e7)) return value.toExponential(2);
  return value.toPrecision(digits).replace(/\.?0+$/, "");
}

function fmtInterval(estimate, interval) {
  if (!present(estimate)) return DASH;
  if (!Array.isArray(interval)) return fmt(estimate);
  return `${fmt(estimate)} [${fmt(interval[0])}, ${present(interval[1]) ? fmt(interval[1]) : "\u221e"}]`;
}

function fmtPercent(value) { return present(value) ? `${Math.round(100 * value)}%` : DASH; }

function fmtTime(iso) { return iso ? new Date(iso).toLocaleString() : DASH; }

// h("a", {href: "/"}, "text", child, ...): an element; attributes starting with "on" are listeners.
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function statusBadge(status) { return h("span", { class: `status ${status}` }, status || DASH); }

function table(headers, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", { class: title.num ? "num" : null }, title.label ?? title)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { class: headers[i].num ? "num" : null }, cell))))));
}

function colourOf(name, index) {
  const method = String(name).split(" ")[0];
  return METHOD_COLOURS[method] || EXTRA_COLOURS[index % EXTRA_COLOURS.length];
}

function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function param(name) { return new URLSearchParams(location.search).get(name); }
function idFromPath() { return Number(location.pathname.split("/").filter(Boolean).pop()); }

function showError(where, error) {
  console.warn(error);
  where.replaceChildren(h("p", { class: "error" }, `Could not load: ${error.message}`));
}

// A line chart. spec: {id, title, x: [...], logX, logY, xLabel, yLabel, steps, series: [{label, values,
// colour, dash, band: [low values, high values]}], threshold}. Returns the container element.
function lineChart(spec) {
  const box = h("div", { class: "chart", id: spec.id }, h("h3", {}, spec.title));
  const data = [spec.x];
  const series = [{ label: spec.xLabel }];
  const bands = [];
  const points = {};
  const hidden = new Set();
  spec.series.forEach((s) => {
    data.push(s.values);
    series.push({
      label: s.label, stroke: s.colour, width: 2, dash: s.dash, spanGaps: false,
      paths: spec.steps ? uPlot.paths.stepped({ align: 1 }) : undefined,
      points: { show: s.values.filter(present).length <= 3, size: 8 },
    });
    points[s.label] = s.values.filter(present).length;
    if (s.band) {
      const low = data.length, high = data.length + 1;
      hidden.add(low).add(high);
      data.push(s.band[0], s.band[1]);
      for (const edge of ["25th percentile", "75th percentile"]) {
        series.push({ label: `${s.label} ${edge}`, stroke: withAlpha(s.colour, 0.35), width: 1, spanGaps: false,
          paths: spec.steps ? uPlot.paths.stepped({ align: 1 }) : undefined, points: { show: false } });
      }
      bands.push({ series: [high, low], fill: withAlpha(s.colour, 0.15) });
    }
  });
  if (present(spec.threshold)) {
    data.push(spec.x.map(() => spec.threshold));
    series.push({ label: "solved threshold", stroke: "#444", width: 1, dash: [6, 4], points: { show: false } });
  }
  const plotted = spec.logY ? data.slice(1).flat().filter(present) : [];
  const logY = spec.logY && plotted.length > 0 && plotted.every((v) => v > 0);
  const options = {
    width: 560, height: 300, series, bands, padding: [12, 36, 0, 0],
    scales: { x: { time: false, distr: spec.logX ? 3 : 1 }, y: { distr: logY ? 3 : 1 } },
    axes: [{ label: spec.xLabel, size: 50 }, { label: spec.yLabel, size: 70 }],
    legend: { live: true },
  };
  const holder = h("div", {});
  box.append(holder);
  if (bands.length) box.append(h("p", { class: "muted" }, "Lines: median across seeds; shaded: 25th to 75th percentile."));
  requestAnimationFrame(() => {
    options.width = Math.max(320, Math.min(box.clientWidth || 560, 900));
    const chart = new uPlot(options, data, holder);
    // the band edges are series too; keep them out of the legend
    chart.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => { if (hidden.has(i)) row.style.display = "none"; });
  });
  window.arenaCharts.push({ id: spec.id, points });
  return box;
}

function nav() {
  const links = [["/", "Jobs"], ["/ui/leaderboard", "Leaderboard"], ["/ui/summary", "Summary"], ["/docs", "API docs"], ["/redoc", "ReDoc"]];
  document.body.prepend(h("header", {}, h("a", { class: "brand", href: "/" }, "Arena"), links.map(([href, text]) => h("a", { href }, text))));
}

document.addEventListener("DOMContentLoaded", nav);
