// The jobs list: live status and progress (polled, no reload), cancel buttons, filters.
"use strict";

const FINISHED = ["succeeded", "failed", "cancelled"];
const main = document.getElementById("main");
const state = { task: param("task") || "", status: param("status") || "" };

function progressCell(job) {
  const counts = job.run_counts || {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const done = FINISHED.reduce((sum, s) => sum + (counts[s] || 0), 0);
  const ran = done - (counts.cancelled || 0); // cancelled runs never ran: the bar shows what was trained
  const parts = Object.entries(counts).map(([status, n]) => `${n} ${status}`).join(", ");
  const words = counts.cancelled ? `${ran}/${total} runs ran, ${counts.cancelled} cancelled` : `${done}/${total} runs`;
  return h("span", {}, h("span", { class: "bar", title: parts }, h("span", { style: `width:${total ? (100 * ran) / total : 0}%` })),
    " ", h("span", { class: "muted" }, words));
}

async function cancel(job, button) {
  button.disabled = true;
  try { await apiWrite(`/jobs/${job.id}/cancel`); } catch (error) { console.warn(error); }
  refresh();
}

function row(job) {
  const active = !FINISHED.includes(job.status);
  const button = active && !job.cancel_requested ? h("button", { class: "danger", onclick: (e) => cancel(job, e.target) }, "Cancel") : null;
  return [
    h("a", { href: `/ui/jobs/${job.id}` }, `#${job.id}`),
    h("a", { href: `/ui/leaderboard?task=${encodeURIComponent(job.task)}` }, job.task),
    statusBadge(job.cancel_requested && active ? "cancelling" : job.status),
    (job.methods || []).join(", "),
    (job.seeds || []).length,
    progressCell(job),
    fmtTime(job.created_at),
    button,
  ];
}

const HEADERS = ["Job", "Task", "Status", "Methods", { label: "Seeds", num: true }, "Progress", "Created", ""];
const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
let timer = null;

async function refresh() {
  clearTimeout(timer);
  const query = new URLSearchParams({ limit: "100" });
  if (state.task) query.set("task", state.task);
  if (state.status) query.set("status", state.status);
  try {
    const page = await api(`/jobs?${query}`);
    body.replaceChildren(
      page.jobs.length ? table(HEADERS, page.jobs.map(row)) : h("p", { class: "muted" }, "No jobs yet. Submit one with `arena submit --task xor`."),
      h("p", { class: "muted" }, `${page.jobs.length} of ${page.total} jobs; updated ${new Date().toLocaleTimeString()}`));
  } catch (error) { showError(body, error); }
  timer = setTimeout(refresh, 2000);
}

async function start() {
  const tasks = (await apiOptional("/tasks")) || [];
  const taskSelect = h("select", { onchange: (e) => { state.task = e.target.value; refresh(); } },
    h("option", { value: "" }, "all tasks"), tasks.map((t) => h("option", { value: t.name, selected: t.name === state.task }, t.name)));
  const statusSelect = h("select", { onchange: (e) => { state.status = e.target.value; refresh(); } },
    h("option", { value: "" }, "any status"), ["queued", "running", ...FINISHED].map((s) => h("option", { value: s, selected: s === state.status }, s)));
  main.replaceChildren(h("h1", {}, "Jobs"), h("p", {}, taskSelect, " ", statusSelect), body);
  refresh();
}

start();
