// A study (/ui/studies/ID), or the list of studies (/ui/studies): the curves (success rate and ERT with
// 95% intervals per method along the axis, drawn by the API as SVG), each crossover in words, and the
// cells underneath, each linking to its job.
"use strict";

const STUDY_FINISHED = ["succeeded", "failed", "cancelled"];
const main = document.getElementById("main");
const studyId = idFromPath();

function point(p) { return Object.entries(p).map(([k, v]) => `${k} ${v}`).join(", "); }

async function showList() {
  const body = await api("/studies");
  main.replaceChildren(h("h1", {}, "Studies"),
    body.studies.length ? table(["Study", "Name", "Status", "Cells", "Runs finished"], body.studies.map((s) => [
      h("a", { href: `/ui/studies/${s.id}` }, `#${s.id}`), s.name, statusBadge(s.status), `${s.cells_finished}/${s.cells}`, fmtPercent(s.progress)]))
      : h("p", { class: "muted" }, "No study yet: POST /studies or `arena study run network-size`."));
}

async function showStudy() {
  const body = await api(`/studies/${studyId}`);
  const parts = [
    h("h1", {}, `Study #${body.id}: ${body.name}`),
    h("p", {}, statusBadge(body.status), ` ${body.cells_finished}/${body.cells} cells finished, ${fmtPercent(body.progress)} of runs; methods ${body.methods.join(", ")}`),
    h("img", { id: "curves", src: `/studies/${studyId}/curves.svg?v=${body.cells_finished}`, alt: "success rate and ERT per method against the axis", style: "max-width:100%" }),
  ];
  for (const answer of body.answers) {
    const where = Object.entries(answer.slice).map(([k, v]) => ` (${k} ${v})`).join("");
    parts.push(h("h2", {}, `Crossovers along ${answer.axis}${where}`),
      h("ul", { class: "verdict", id: "crossovers" }, answer.crossovers.map((c) => h("li", {}, c.text))));
  }
  parts.push(h("h2", {}, "Cells"), table(["Cell", "Task", "Parameters", "Status", "Verdict", "Job"], body.cell_list.map((c) => [
    point(c.point), c.task, fmt(c.parameters), statusBadge(c.status), c.headline || DASH, h("a", { href: `/ui/jobs/${c.job_id}` }, `job ${c.job_id}`)])));
  parts.push(h("p", {}, "Export: ", ["runs.csv", "runs.jsonl", "runs.rliable.json", "runs.ioh.csv"].map((name) => [h("a", { href: `/studies/${studyId}/${name}` }, name), " "])));
  main.replaceChildren(...parts);
  if (!STUDY_FINISHED.includes(body.status)) setTimeout(() => showStudy().catch((e) => showError(main, e)), 3000);
}

(Number.isFinite(studyId) && studyId > 0 ? showStudy() : showList()).catch((error) => showError(main, error));
