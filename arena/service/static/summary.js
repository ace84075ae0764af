// Across tasks: performance profiles and the won / lost / undecided table (GET /summary).
"use strict";

const main = document.getElementById("main");
const LENSES = { reliability: "reliability", evaluations: "evaluations", cpu_seconds: "CPU seconds" };

function profileChart(lens, profile) {
  const methods = Object.keys(profile).filter((k) => k !== "tau").sort();
  return lineChart({ id: `profile-${lens}`, title: `Performance profile: ERT in ${LENSES[lens] || lens}`, x: profile.tau, logX: true, steps: true,
    xLabel: "tau (ERT within this factor of the best)", yLabel: "fraction of tasks",
    series: methods.map((m, i) => ({ label: m, values: profile[m], colour: colourOf(m, i) })) });
}

function recordTable(methods) {
  const lenses = Object.keys(LENSES);
  const rows = Object.entries(methods || {}).map(([m, record]) => [m, ...lenses.map((lens) => {
    const r = record && record[lens];
    return r ? `${fmt(r.won)} won / ${fmt(r.lost)} lost / ${fmt(r.undecided)} undecided` : DASH;
  })]);
  return rows.length ? table(["Method", ...lenses.map((l) => LENSES[l])], rows) : h("p", { class: "muted" }, DASH);
}

function tasksTable(tasks) {
  const lenses = Object.keys(LENSES);
  const rows = Object.entries(tasks || {}).map(([task, t]) => [
    h("a", { href: `/ui/leaderboard?task=${encodeURIComponent(task)}` }, task),
    Object.entries((t && t.n) || {}).map(([m, n]) => `${m} ${fmt((t.solved || {})[m])}/${fmt(n)}`).join(", ") || DASH,
    ...lenses.map((lens) => {
      const v = t && t.verdict && t.verdict[lens];
      const winner = (v && v.winner) || (t && t.winner && t.winner[lens]);
      return h("span", { title: (v && v.text) || "" }, winner ? h("strong", {}, winner) : "undecided");
    }),
  ]);
  return rows.length ? table(["Task", "Solved / runs", ...lenses.map((l) => `Winner: ${LENSES[l]}`)], rows) : h("p", { class: "muted" }, DASH);
}

async function load() {
  try {
    const summary = await apiOptional("/summary");
    if (!summary) { main.replaceChildren(h("h1", {}, "Summary"), h("p", { class: "muted" }, `No summary available ${DASH} finish some jobs first.`)); return; }
    const profiles = summary.performance_profiles || {};
    main.replaceChildren(
      h("h1", {}, "Summary across tasks"),
      h("p", { class: "muted" }, "Each method's best configuration per task, compared head to head",
        summary.corrected_across_tasks ? " (one Holm correction across all tasks)." : "."),
      h("h2", {}, "Won / lost / undecided"), recordTable(summary.methods),
      h("h2", {}, "Performance profiles"),
      h("div", { class: "charts" }, Object.entries(profiles).filter(([, p]) => p && Array.isArray(p.tau)).map(([lens, p]) => profileChart(lens, p))),
      h("h2", {}, "Tasks"), tasksTable(summary.tasks));
  } catch (error) { showError(main, error); }
}

load();
