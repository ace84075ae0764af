// A job: the verdict in words, learning curves per method (median and interquartile band across seeds),
// the proportion of runs solved against evaluations, per-method statistics and the runs.
"use strict";

const FINISHED = ["succeeded", "failed", "cancelled"];
const LENS_WORDS = { reliability: "Reliability", evaluations: "Evaluations to solve", cpu_seconds: "CPU seconds to solve" };
const main = document.getElementById("main");
const jobId = idFromPath();
let timer = null;

function verdictSection(comparison) {
  const verdict = comparison && comparison.verdict;
  if (!verdict || typeof verdict !== "object") return h("p", { class: "muted" }, `Verdict: ${DASH}`);
  const solvedAny = Object.values(comparison.methods || {}).some((m) => m.solved > 0);
  return h("ul", { class: "verdict" }, Object.entries(verdict).map(([lens, v]) =>
    h("li", {}, h("span", { class: "lens" }, `${LENS_WORDS[lens] || lens}: `),
      !solvedAny && lens !== "reliability" ? "not measurable: no method solved any run" : v && v.text ? v.text : DASH)));
}

// Car tasks: methods that stopped on the time cap far short of their agent-step budget got less experience.
function experienceWarning(job) {
  const budget = (job.request && job.request.budget) || {};
  const byMethod = {};
  for (const run of job.runs || []) {
    if (!present(run.evaluations)) continue;
    (byMethod[run.label || run.method] ||= []).push(run);
  }
  const short = Object.entries(byMethod).filter(([, runs]) => runs.some((r) => r.stopped === "seconds"))
    .map(([name, runs]) => [name, Math.max(...runs.map((r) => r.evaluations))]);
  if (!short.length || Object.keys(byMethod).length < 2) return null;
  const limit = budget.evaluations;
  const words = short.map(([name, most]) => `${name} reached at most ${fmtShort(most)}${limit ? ` of its ${fmtShort(limit)}` : ""} ${job.unit || "evaluations"}`);
  return h("p", { class: "warning", id: "experience-warning" }, `Unequal experience: the time cap stopped some runs early (${words.join("; ")}). ` +
    "The methods are compared at different amounts of experience; read speed verdicts with that in mind.");
}

function curveCharts(curves, steps) {
  const boxes = [];
  for (const [axis, unit] of [["evaluations", steps], ["seconds", "seconds (wall)"]]) {
    const data = curves.curves && curves.curves[axis];
    if (!data || !data.x || !data.x.length) continue;
    const methods = Object.keys(data.methods).sort();
    boxes.push(lineChart({
      id: `curve-${axis}`,
      title: `Best-so-far ${curves.score_name} against ${unit}: median and interquartile band`,
      x: data.x, logX: data.log_x, logY: !curves.higher_is_better, steps: true,
      xLabel: unit, yLabel: `${curves.score_name} (${curves.higher_is_better ? "higher" : "lower"} is better)`,
      threshold: curves.threshold,
      series: methods.map((m, i) => ({ label: `${m} (${data.methods[m].runs} runs)`, values: data.methods[m].median, colour: colourOf(m, i),
        band: [data.methods[m].q1, data.methods[m].q3] })),
    }));
  }
  return boxes;
}

// Kaplan-Meier from the comparison when it is there, else the proportion solved from curves.json.
function solvedChart(comparison, curves, unit) {
  const byMethod = {};
  for (const [name, stats] of Object.entries((comparison && comparison.methods) || {})) {
    const km = stats && stats.kaplan_meier && stats.kaplan_meier.evaluations;
    if (km && Array.isArray(km.curve)) byMethod[name] = km.curve;
  }
  if (!Object.keys(byMethod).length) Object.assign(byMethod, (curves && curves.proportion_solved) || {});
  const names = Object.keys(byMethod).sort();
  const xs = [...new Set(names.flatMap((n) => byMethod[n].map((p) => p.x)))].filter((x) => x > 0).sort((a, b) => a - b);
  if (!xs.length) return null;
  const series = names.map((name, i) => {
    const points = byMethod[name];
    let k = -1;
    const values = xs.map((x) => { while (k + 1 < points.length && points[k + 1].x <= x) k++; return k >= 0 ? points[k].solved : 0; });
    return { label: name, values, colour: colourOf(name, i) };
  });
  return lineChart({ id: "solved", title: `Proportion of runs solved against ${unit} (Kaplan-Meier)`, x: xs, logX: xs[xs.length - 1] / xs[0] > 50,
    steps: true, xLabel: unit, yLabel: "proportion solved", yRange: [0, 1], series });
}

function methodTable(comparison) {
  const methods = (comparison && comparison.methods) || {};
  const rows = Object.entries(methods).map(([name, m]) => {
    const km = m.kaplan_meier && m.kaplan_meier.evaluations && m.kaplan_meier.evaluations.median;
    return [name, fmt(m.runs), m.duplicates ? fmt(m.duplicates) : "", fmtRate(m.solved, m.runs, m.success_rate_ci),
      fmtInterval(m.ert_evaluations, m.ert_evaluations_ci), km ? fmtInterval(km.estimate, [km.low, km.high]) : DASH,
      fmtInterval(m.ert_seconds, m.ert_seconds_ci, true)];
  });
  if (!rows.length) return h("p", { class: "muted" }, DASH);
  return table(["Method", { label: "Runs", num: true }, { label: term("dup"), num: true }, { label: term("solved", "Solved [95% CI]") },
    { label: term("ERT", "ERT evaluations [95% CI]") }, { label: term("KM", "KM median evaluations [95% CI]") }, { label: term("ERT", "ERT CPU seconds [95% CI]") }], rows);
}

function runsTable(job) {
  const rows = job.runs.map((r) => [
    h("a", { href: `/ui/runs/${r.id}` }, `#${r.id}`), r.label || r.method, r.seed, statusBadge(r.status, r.solved),
    fmt(r.score ?? r.progress_score), fmt(r.solved), fmt(r.evaluations ?? r.progress_evaluations), fmt(r.evaluations_to_solve),
    fmt(r.seconds ?? r.progress_seconds), fmt(r.cpu_seconds), r.stopped || (r.error ? h("span", { class: "error", title: r.error }, "error") : ""),
  ]);
  return table(["Run", "Method", { label: "Seed", num: true }, "Status", { label: "Score", num: true }, "Solved",
    { label: "Evaluations", num: true }, { label: "Evals to solve", num: true }, { label: "Seconds", num: true },
    { label: "CPU s", num: true }, "Stopped"], rows);
}

async function cancel(button) {
  button.disabled = true;
  try { await apiWrite(`/jobs/${jobId}/cancel`); } catch (error) { console.warn(error); }
  load();
}

async function load() {
  clearTimeout(timer);
  try {
    const [job, comparison, curves] = await Promise.all([
      api(`/jobs/${jobId}`), apiOptional(`/jobs/${jobId}/comparison`), apiOptional(`/jobs/${jobId}/curves.json`)]);
    window.arenaCharts = [];
    const active = !FINISHED.includes(job.status);
    const steps = String(job.task).startsWith("car") ? "agent-steps" : "evaluations"; // the task's own unit
    const charts = curves ? curveCharts(curves, steps) : [];
    const solved = solvedChart(comparison, curves, steps);
    main.replaceChildren(
      h("h1", {}, `Job #${job.id}: `, h("a", { href: `/ui/leaderboard?task=${encodeURIComponent(job.task)}` }, job.task), " ",
        statusBadge(job.status, job.status === "succeeded" && job.runs.length ? job.runs.some((r) => r.solved) : undefined),
        active && !job.cancel_requested ? h("button", { class: "danger", style: "margin-left:1em", onclick: (e) => cancel(e.target) }, "Cancel") : null),
      h("p", { class: "muted" }, `${job.methods.join(", ")}; seeds ${job.seeds.join(", ")}; created ${fmtTime(job.created_at)}`,
        job.finished_at ? `; finished ${fmtTime(job.finished_at)}` : "", active ? " (updating…)" : ""),
      h("section", { class: "card" }, h("h2", { style: "margin-top:0" }, "Verdict"), headline(comparison && comparison.headline),
        experienceWarning(job), verdictSection(comparison)),
      h("h2", {}, "Learning curves"),
      charts.length ? h("div", { class: "charts" }, charts, solved) : h("p", { class: "muted" }, `No curves yet ${DASH} runs record them as they go.`),
      h("p", {}, h("a", { href: `/jobs/${jobId}/curves.png` }, "curves.png"), " · ", h("a", { href: `/jobs/${jobId}/curves.svg` }, "curves.svg"),
        " · ", h("a", { href: `/jobs/${jobId}/comparison` }, "comparison JSON")),
      h("h2", {}, "Methods"), methodTable(comparison),
      h("h2", {}, "Runs"), runsTable(job));
    if (active) timer = setTimeout(load, 3000);
  } catch (error) { showError(main, error); }
}

load();
