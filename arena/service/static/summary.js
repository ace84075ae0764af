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

// The registry's order (backprop, GA, CMA-ES, then plug-ins) on every row, as `arena summary` prints it.
function methodOrder(names) {
  const known = Object.keys(METHOD_INFO).filter((m) => names.includes(m));
  return [...known, ...names.filter((m) => !known.includes(m)).sort()];
}
function labelOf(name) { return (METHOD_INFO[name] || {}).label || name; }

// The pairs decided on one lens, in the words `arena summary` uses (arena/cli/formats.py CELL_WORDS).
const CELL_WORDS = {
  reliability: [(w) => `${w} most reliable`, (w, l) => `${w} more reliable than ${l}`],
  evaluations: [(w) => `${w} fewest`, (w, l) => `${w} fewer than ${l}`],
  cpu_seconds: [(w) => `${w} least CPU`, (w, l) => `${w} less CPU than ${l}`],
};
function pairsCell(t, pairs, lens) {
  const [every, one] = CELL_WORDS[lens];
  const names = Object.keys(t.n || {});
  if (lens !== "reliability" && names.length > 1 && !Object.values(t.solved || {}).some((n) => n > 0)) return "nothing solved";
  const winner = t.winner && t.winner[lens];
  if (winner) return h("strong", {}, every(labelOf(winner)));
  const beatenBy = {};
  for (const pair of pairs || []) {
    const won = pair.verdict && pair.verdict[lens] && pair.verdict[lens].winner;
    if (won) (beatenBy[won === pair.first ? pair.second : pair.first] ||= []).push(won);
  }
  const losers = methodOrder(Object.keys(beatenBy));
  if (losers.length) return losers.map((lost) => one(methodOrder(beatenBy[lost]).map(labelOf).join(", "), labelOf(lost))).join("; ");
  return names.length > 1 ? "no difference" : "(one method)";
}

function recordTable(methods) {
  const lenses = Object.keys(LENSES);
  const rows = methodOrder(Object.keys(methods || {})).map((m) => [m, methods[m]]).map(([m, record]) => [labelOf(m), ...lenses.map((lens) => {
    const r = record && record[lens];
    return r ? `${fmt(r.won)} won / ${fmt(r.lost)} lost / ${fmt(r.undecided)} undecided` : DASH;
  })]);
  return rows.length ? table(["Method", ...lenses.map((l) => LENSES[l])], rows) : h("p", { class: "muted" }, DASH);
}

function tasksTable(tasks, comparisons) {
  const lenses = Object.keys(LENSES);
  const rows = Object.entries(tasks || {}).map(([task, t]) => [
    h("a", { href: `/ui/leaderboard?task=${encodeURIComponent(task)}` }, task),
    methodOrder(Object.keys((t && t.n) || {})).map((m) => `${labelOf(m)} ${fmt((t.solved || {})[m])}/${fmt(t.n[m])}`).join(", ") || DASH,
    ...lenses.map((lens) => {
      const v = t && t.verdict && t.verdict[lens];
      return h("span", { title: (v && v.text) || "" }, pairsCell(t, (comparisons || {})[task], lens));
    }),
    h("span", { class: "muted" }, (t && t.headline) || ""),
  ]);
  return rows.length ? table(["Task", { label: term("solved", "Solved / seeds") }, ...lenses.map((l) => LENSES[l]), "In words"], rows) : h("p", { class: "muted" }, DASH);
}

async function load() {
  try {
    const summary = await apiOptional("/summary");
    if (!summary) { main.replaceChildren(h("h1", {}, "Summary"), h("p", { class: "muted" }, `No summary available ${DASH} finish some jobs first.`)); return; }
    const profiles = summary.performance_profiles || {};
    main.replaceChildren(
      h("h1", {}, "Summary across tasks"), headline(summary.headline),
      h("p", { class: "muted" }, "Each method's best configuration per task, compared head to head",
        summary.corrected_across_tasks ? " (one Holm correction across all tasks)." : "."),
      h("h2", {}, "Won / lost / undecided"), recordTable(summary.methods),
      h("h2", {}, "Performance profiles"),
      h("div", { class: "charts" }, Object.entries(profiles).filter(([, p]) => p && Array.isArray(p.tau)).map(([lens, p]) => profileChart(lens, p))),
      h("h2", {}, "Tasks"), tasksTable(summary.tasks, summary.comparisons),
      h("p", { class: "muted" }, "A cell: the method better than every other, or the pairs decided (\"backprop fewer than GA\": backprop needs fewer evaluations), or no detectable difference at that number of seeds."));
  } catch (error) { showError(main, error); }
}

load();
