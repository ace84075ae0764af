// Shared helpers for the dashboard pages: fetching, formatting, building elements, charts (uPlot).
"use strict";

const DASH = "\u2014"; // shown for any value that is absent
const EXTRA_COLOURS = ["#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
// Each registered method's colour and label, as the registry (arena.methods) serves them at GET /methods:
// filled before any api() call answers, so every chart drawn from API data has them. Never copied here.
const METHOD_INFO = {};
const methodsLoaded = fetch("/methods", withKey())
  .then((response) => (response.ok ? response.json() : {}))
  .then((methods) => Object.assign(METHOD_INFO, methods))
  .catch(() => {}); // no colours: charts fall back to EXTRA_COLOURS
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
  await methodsLoaded;
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

// The one number format of every verdict, as the CLI prints it (arena/cli/output.py `short`, `with_interval`):
// 950, 3,858, 12.3k, 1.25M; seconds with 3 significant digits; "3,858 [3,059-4,633]"; "10/10 [72%-100%]".
function fmtShort(value, seconds = false) {
  if (!present(value)) return "?";
  if (seconds) return Number(value.toPrecision(3)).toString();
  const size = Math.abs(value);
  const sig3 = (v) => Number(v.toPrecision(3)).toString();
  if (size >= 1e6) return `${sig3(value / 1e6)}M`;
  if (size >= 1e4) return `${sig3(value / 1e3)}k`;
  return size >= 10 ? Math.round(value).toLocaleString("en") : sig3(value);
}

function fmtInterval(estimate, interval, seconds = false) {
  if (!present(estimate)) return DASH;
  if (!Array.isArray(interval)) return fmtShort(estimate, seconds);
  return `${fmtShort(estimate, seconds)} [${fmtShort(interval[0], seconds)}-${present(interval[1]) ? fmtShort(interval[1], seconds) : "inf"}]`;
}

function fmtRate(solved, runs, interval) {
  const text = `${fmt(solved)}/${fmt(runs)}`;
  return Array.isArray(interval) ? `${text} [${fmtPercent(interval[0])}-${fmtPercent(interval[1])}]` : text;
}

// What each statistic's name means: a dotted underline with the words on hover (the CLI prints the same legend).
const GLOSSARY = {
  ERT: "Expected running time: evaluations spent by all runs / runs solved, with a 95% bootstrap interval",
  KM: "Kaplan-Meier: the proportion of runs solved by each number of evaluations; unsolved runs count as censored",
  dup: "Repeated (configuration, seed) runs, counted once",
  "P(first better)": "Probability that a run of the first method needs less than a run of the second, with a 95% interval",
  solved: "Seeds solved / seeds, with the 95% interval of the success rate",
  tie: "Cannot be told apart from the row above",
};
function term(name, text) { return h("abbr", { title: GLOSSARY[name] || name, class: "term" }, text || name); }

// The verdict in one plain sentence (arena/service/headline.py, served as `headline`).
function headline(text) { return text ? h("p", { class: "headline", id: "headline" }, text) : null; }

// A run that used its whole budget without solving is "finished, not solved", not "succeeded".
function statusWords(status, solved) { return status === "succeeded" && solved === false ? "finished, not solved" : status; }

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

function statusBadge(status, solved) {
  const words = statusWords(status, solved);
  return h("span", { class: `status ${words === status ? status : "unsolved"}` }, words || DASH);
}

function table(headers, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", { class: title.num ? "num" : null }, title.label ?? title)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { class: headers[i].num ? "num" : null }, cell))))));
}

function colourOf(name, index) {
  const method = String(name).split(" ")[0];
  return (METHOD_INFO[method] || {}).colour || EXTRA_COLOURS[index % EXTRA_COLOURS.length];
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
    scales: { x: { time: false, distr: spec.logX ? 3 : 1 }, y: { distr: logY ? 3 : 1, ...(spec.yRange ? { range: spec.yRange } : {}) } },
    // short tick labels (10k, 1M) so that large counts (car agent-steps) never run into each other
    axes: [{ label: spec.xLabel, size: 50, values: (u, ticks) => ticks.map((v) => (present(v) ? fmtShort(v) : "")) }, { label: spec.yLabel, size: 70 }],
    legend: { live: true },
  };
  const holder = h("div", {});
  box.append(holder);
  if (bands.length) box.append(h("p", { class: "muted" }, "Lines: median across seeds; shaded: 25th to 75th percentile. " +
    "A run that stopped (solved or out of budget) keeps its last value, so every point rests on all the runs that had started."));
  requestAnimationFrame(() => {
    options.width = Math.max(320, Math.min(box.clientWidth || 560, 900));
    // for tests: the y axis range shown, once uPlot has set its scales
    const drawn = window.arenaCharts.find((c) => c.id === spec.id);
    options.hooks = { setScale: [(u, key) => { if (key === "y" && drawn) drawn.y = [u.scales.y.min, u.scales.y.max]; }] };
    const chart = new uPlot(options, data, holder);
    // the band edges are series too; keep them out of the legend
    chart.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => { if (hidden.has(i)) row.style.display = "none"; });
  });
  window.arenaCharts.push({ id: spec.id, points });
  return box;
}

function nav() {
  const links = [["/", "Jobs"], ["/ui/leaderboard", "Leaderboard"], ["/ui/summary", "Summary"], ["/docs", "API docs"], ["/redoc", "ReDoc"]];
  if (!document.body) return;
  document.body.prepend(h("header", {}, h("a", { class: "brand", href: "/" }, "Arena"), links.map(([href, text]) => h("a", { href }, text))));
}

document.addEventListener("DOMContentLoaded", nav);
