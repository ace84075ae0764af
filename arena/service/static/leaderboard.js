// A task's leaderboard: every configuration ranked, with its success rate and ERT intervals drawn.
"use strict";

const main = document.getElementById("main");
const LENS_NAMES = { reliability: "Reliability", evaluations: "Evaluations", cpu_seconds: "CPU seconds" };

// An interval as a small SVG: a line from low to high (to the edge when unbounded), a dot at the
// estimate, on a scale shared by the column. Built from markup: the HTML parser puts it in the SVG namespace.
function intervalSvg(estimate, low, high, scale) {
  const width = 200;
  let shapes = `<line x1="0" x2="${width}" y1="8" y2="8" stroke="#eef1f6" stroke-width="6"/>`;
  if (present(estimate)) {
    const x1 = scale(present(low) ? low : estimate), x2 = present(high) ? scale(high) : width;
    shapes += `<line x1="${x1}" x2="${x2}" y1="8" y2="8" stroke="#2556c4" stroke-width="2"/>`;
    shapes += `<circle cx="${scale(estimate)}" cy="8" r="4" fill="#1d2330"/>`;
  }
  const holder = document.createElement("span");
  holder.innerHTML = `<svg class="interval" width="${width}" height="16">${shapes}</svg>`;
  return holder.firstChild;
}

function linearScale(min, max) { return (v) => 4 + (192 * (v - min)) / (max - min || 1); }
function logScale(min, max) {
  const a = Math.log10(min), b = Math.log10(max);
  return (v) => 4 + (192 * (Math.log10(Math.max(v, min)) - a)) / (b - a || 1);
}

function render(board, tasks, task) {
  const select = h("select", { onchange: (e) => { location.search = `?task=${encodeURIComponent(e.target.value)}`; } },
    tasks.map((t) => h("option", { value: t.name, selected: t.name === task }, t.name)));
  const entries = (board && board.entries) || [];
  const erts = entries.flatMap((e) => [e.ert_evaluations, ...(e.ert_evaluations_ci || [])]).filter((v) => present(v) && v > 0);
  const ertScale = erts.length ? logScale(Math.min(...erts) / 1.2, Math.max(...erts) * 1.2) : null;
  const rateScale = linearScale(0, 1);
  const rows = entries.map((e) => [
    fmt(e.rank), e.label || e.method,
    h("span", { class: "configuration", title: `settings ${JSON.stringify(e.settings || {})} (hash ${String(e.settings_hash || DASH).slice(0, 10)})` }, e.configuration || String(e.settings_hash || DASH).slice(0, 10)),
    h("span", { class: "nowrap" }, intervalSvg(e.success_rate, ...(e.success_rate_ci || [null, null]), rateScale), " ", fmtRate(e.solved, e.runs, e.success_rate_ci)),
    h("span", { class: "nowrap" }, ertScale && present(e.ert_evaluations) ? intervalSvg(e.ert_evaluations, ...(e.ert_evaluations_ci || [null, null]), ertScale) : null,
      " ", fmtInterval(e.ert_evaluations, e.ert_evaluations_ci)),
    fmtInterval(e.ert_seconds, e.ert_seconds_ci, true),
    e.too_few_runs ? h("span", { class: "tie", title: "fewer than 5 distinct runs: never a method's best, in no verdict" }, "too few runs")
      : e.tied_with_previous ? h("span", { class: "tie", title: GLOSSARY.tie }, "= tied") : "",
  ]);
  const verdict = board && board.verdict;
  main.replaceChildren(
    h("h1", {}, "Leaderboard: ", select),
    board ? h("p", { class: "muted" }, `${board.score_name}, ${board.higher_is_better ? "higher" : "lower"} is better. Ranked by success rate, then `,
      term("ERT", "expected running time (ERT)"), " in evaluations; \"= tied\": cannot be told apart from the row above. Intervals are 95%; ERT on a log scale.") : null,
    verdict && typeof verdict === "object" ? h("section", { class: "card" }, h("h2", { style: "margin-top:0" }, "Best of each method, head to head"),
      headline(board.headline),
      h("ul", { class: "verdict" }, Object.entries(verdict).map(([lens, v]) => h("li", {}, h("span", { class: "lens" }, `${LENS_NAMES[lens] || lens}: `), (v && v.text) || DASH)))) : null,
    entries.length ? table([{ label: "Rank", num: true }, "Method", "Configuration", { label: term("solved", "Solved [95% CI]") },
      { label: term("ERT", "ERT evaluations [95% CI]") }, { label: term("ERT", "ERT CPU seconds [95% CI]") }, { label: term("tie", "Tie") }], rows)
      : h("p", { class: "muted" }, `No finished runs on ${task} yet.`));
}

async function load() {
  try {
    const tasks = (await api("/tasks")) || [];
    const task = param("task") || (tasks[0] && tasks[0].name);
    render(await apiOptional(`/leaderboard?task=${encodeURIComponent(task)}`), tasks, task);
  } catch (error) { showError(main, error); }
}

load();
