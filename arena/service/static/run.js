// A run: its curve, settings, reproducibility record and weights; what the trained network does
// (function: target and output; logic: truth table; car: trajectory picture and an animated replay).
"use strict";

const main = document.getElementById("main");
const runId = idFromPath();

function kvTable(object) {
  const entries = Object.entries(object || {});
  if (!entries.length) return h("p", { class: "muted" }, DASH);
  return h("table", { class: "kv" }, h("tbody", {}, entries.map(([k, v]) =>
    h("tr", {}, h("td", {}, k), h("td", {}, v !== null && typeof v === "object" ? objectWords(v) : fmt(v, 6))))));
}

// {a: 1, b: {c: 2}} as "a 1 · b.c 2": wraps inside the page's width (raw JSON would scroll it sideways).
function objectWords(object, prefix = "") {
  return Object.entries(object).map(([k, v]) => v !== null && typeof v === "object" && !Array.isArray(v)
    ? objectWords(v, `${prefix}${k}.`) : `${prefix}${k} ${Array.isArray(v) ? v.map((x) => fmt(x, 6)).join(", ") : fmt(v, 6)}`).join(" \u00b7 ");
}

function curveCharts(run, info) {
  const curve = (run.curve || []).filter((p) => present(p.score));
  if (!curve.length) return [h("p", { class: "muted" }, `No curve ${DASH} the run has not recorded one yet.`)];
  const higher = info ? info.higher_is_better : true;
  const name = info ? info.score_name : "score";
  return ["evaluations", "seconds"].map((axis) => {
    const points = curve.filter((p) => present(p[axis])).sort((a, b) => a[axis] - b[axis]);
    // best-so-far holds until the run ended: extend the last value to the run's total
    const end = axis === "evaluations" ? run.evaluations : run.seconds;
    if (points.length && present(end) && end > points[points.length - 1][axis]) points.push({ [axis]: end, score: points[points.length - 1].score });
    const xs = points.map((p) => p[axis]);
    const positive = xs.filter((x) => x > 0);
    const logX = positive.length === xs.length && xs.length > 1 && xs[xs.length - 1] / xs[0] > 50;
    return lineChart({ id: `run-curve-${axis}`, title: `Best-so-far ${name} against ${axis}`, x: xs, logX, logY: !higher, steps: true,
      xLabel: axis, yLabel: name, threshold: run.threshold,
      series: [{ label: run.label || run.method, values: points.map((p) => p.score), colour: colourOf(run.method, 0) }] });
  });
}

function heatmap(title, values, n, low, high) {
  const canvas = h("canvas", { width: n, height: n, style: "width:220px;height:220px;image-rendering:pixelated;border:1px solid #d9dee7" });
  const context = canvas.getContext("2d");
  const image = context.createImageData(n, n);
  values.forEach((v, k) => {
    // inputs are ordered first variable slowest: row k / n is x, column k % n is y (drawn upwards)
    const i = Math.floor(k / n), j = k % n;
    const t = Math.max(0, Math.min(1, (v - low) / (high - low || 1)));
    const p = 4 * ((n - 1 - j) * n + i);
    image.data[p] = 255 * t; image.data[p + 1] = 80 + 100 * (1 - Math.abs(2 * t - 1)); image.data[p + 2] = 255 * (1 - t); image.data[p + 3] = 255;
  });
  context.putImageData(image, 0, 0);
  return h("div", { style: "display:inline-block;margin-right:1em" }, h("div", { class: "muted" }, title), canvas);
}

function functionSection(p) {
  const target = p.target.map((r) => r[0]), output = p.output.map((r) => r[0]);
  if (p.input_size === 1) {
    return lineChart({ id: "predictions", title: "Target and trained network output on the held-out grid", x: p.inputs.map((r) => r[0]),
      xLabel: "x", yLabel: "y", series: [{ label: "target", values: target, colour: "#444444", dash: [6, 4] },
        { label: "network", values: output, colour: "#d62728" }] });
  }
  const all = target.concat(output), low = Math.min(...all), high = Math.max(...all);
  const error = output.map((v, k) => Math.abs(v - target[k]));
  return h("div", {}, heatmap("target", target, p.grid_size, low, high), heatmap("network", output, p.grid_size, low, high),
    heatmap(`|error| (max ${fmt(Math.max(...error))})`, error, p.grid_size, 0, Math.max(...error)),
    h("p", { class: "muted" }, `x to the right, y upwards; colour from ${fmt(low)} (blue) to ${fmt(high)} (red).`));
}

function logicSection(p) {
  const inputs = p.inputs[0].map((_, k) => `in ${k + 1}`);
  const outputs = p.target[0].map((_, k) => k);
  const rows = p.inputs.map((row, r) => [
    ...row.map((v) => fmt(v)),
    ...outputs.flatMap((k) => {
      const wrong = (p.output[r][k] > 0.5) !== (p.target[r][k] > 0.5);
      return [fmt(p.target[r][k]), h("span", { class: wrong ? "wrong" : null }, p.output[r][k].toFixed(4), wrong ? " \u2717" : "")];
    }),
  ]);
  const headers = [...inputs, ...outputs.flatMap((k) => [`target ${k + 1}`, { label: `network ${k + 1}`, num: false }])];
  const wrongRows = p.inputs.filter((_, r) => outputs.some((k) => (p.output[r][k] > 0.5) !== (p.target[r][k] > 0.5))).length;
  return h("div", {}, h("p", {}, `${p.inputs.length - wrongRows}/${p.inputs.length} rows on the right side of 0.5.`), table(headers, rows));
}

// Every scoring track (car-generalize scores on several), each replayed with its own episodes: a picker.
function replayTracks(data) {
  const tracks = data.tracks || [data.track];
  const episodesOf = (k) => data.episodes.filter((e) => (e.track ?? 0) === k);
  const holder = h("div", {});
  const show = (k) => holder.replaceChildren(replaySection({ ...data, track: tracks[k], episodes: episodesOf(k) }, tracks.length));
  window.arenaTracks = tracks.map((t, k) => ({ name: t.name, episodes: episodesOf(k).length }));
  const picker = tracks.length > 1 ? h("p", {}, `${data.episodes.length} scoring episodes on ${tracks.length} tracks; showing `,
    h("select", { id: "track-picker", onchange: (e) => show(Number(e.target.value)) },
      tracks.map((t, k) => h("option", { value: k }, `${t.name} (${episodesOf(k).length} episodes)`)))) : null;
  show(0);
  return h("div", {}, picker, holder);
}

// The animated replay of one track's scoring episodes: all cars drive at once, leaving their paths behind.
function replaySection(data, trackCount = 1) {
  const walls = [data.track.left, data.track.right];
  const everything = walls.flat().concat(data.episodes.flatMap((e) => e.path));
  const xs = everything.map((p) => p[0]), ys = everything.map((p) => p[1]);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const size = 820, pad = 16, scale = (size - 2 * pad) / Math.max(maxX - minX, maxY - minY);
  const width = Math.ceil((maxX - minX) * scale + 2 * pad), height = Math.ceil((maxY - minY) * scale + 2 * pad);
  const canvas = h("canvas", { class: "replay", id: "replay", width, height });
  const context = canvas.getContext("2d");
  const X = (p) => pad + (p[0] - minX) * scale, Y = (p) => height - pad - (p[1] - minY) * scale;
  const frames = Math.max(...data.episodes.map((e) => e.path.length));
  const colours = data.episodes.map((_, k) => `hsl(${(k * 137.5) % 360}, 65%, 45%)`);
  const clock = h("span", { class: "muted" });
  const replay = (window.arenaReplay = { frame: 0, frames, playing: true, drawn: 0, track: data.track.name, episodes: data.episodes.length });
  const speed = h("select", {}, [1, 2, 4, 8].map((s) => h("option", { value: s, selected: s === 2 }, `${s}x`)));

  function line(points, colour, widthPx, closed) {
    context.beginPath(); context.strokeStyle = colour; context.lineWidth = widthPx;
    points.forEach((p, k) => (k ? context.lineTo(X(p), Y(p)) : context.moveTo(X(p), Y(p))));
    if (closed) context.closePath();
    context.stroke();
  }
  function mark(p, symbol, colour) {
    context.fillStyle = colour; context.strokeStyle = colour; context.lineWidth = 2;
    const x = X(p), y = Y(p);
    if (symbol === "x") { context.beginPath(); context.moveTo(x - 5, y - 5); context.lineTo(x + 5, y + 5); context.moveTo(x + 5, y - 5); context.lineTo(x - 5, y + 5); context.stroke(); }
    else { context.beginPath(); context.arc(x, y, symbol === "car" ? 4 : 3, 0, 2 * Math.PI); context.fill(); }
  }
  function draw() {
    context.clearRect(0, 0, width, height);
    walls.forEach((w) => line(w, "#333", 1.5, true));
    line(data.track.centre, "#ccc", 0.8, true);
    let driving = 0, crashed = 0, laps = 0;
    data.episodes.forEach((episode, k) => {
      const upto = Math.min(replay.frame, episode.path.length - 1);
      line(episode.path.slice(0, upto + 1), colours[k], 1.1, false);
      const ended = replay.frame >= episode.path.length - 1;
      if (!ended) { driving++; mark(episode.path[upto], "car", colours[k]); }
      else if (episode.crashed) { crashed++; mark(episode.path[upto], "x", "#b42318"); }
      else if (episode.lap) { laps++; mark(episode.path[upto], "dot", "#067647"); }
      else mark(episode.path[upto], "dot", "#999");
    });
    clock.textContent = ` t = ${(replay.frame * data.dt).toFixed(1)} s; ${driving} driving, ${laps} laps done, ${crashed} crashed (of ${data.episodes.length})`;
    replay.drawn++;
  }
  function tick() {
    if (window.arenaReplay !== replay) return; // another track was picked: this replay stops
    if (replay.playing) {
      replay.frame = Math.min(frames - 1, replay.frame + Number(speed.value));
      draw();
      if (replay.frame >= frames - 1) { replay.playing = false; button.textContent = "Replay"; }
    }
    requestAnimationFrame(tick);
  }
  const button = h("button", { onclick: () => {
    if (replay.frame >= frames - 1) replay.frame = 0;
    replay.playing = !replay.playing;
    button.textContent = replay.playing ? "Pause" : "Play";
  } }, "Pause");
  draw();
  requestAnimationFrame(tick);
  const totals = data.episodes.reduce((t, e) => ({ laps: t.laps + e.lap, crashes: t.crashes + e.crashed }), { laps: 0, crashes: 0 });
  return h("div", {},
    h("p", {}, `${trackCount > 1 ? "The" : "All"} ${data.episodes.length} scoring episodes on ${data.track.name}: ${totals.laps} laps completed, ${totals.crashes} crashes. `,
      h("span", { class: "muted" }, "Moving dot: driving; red \u00d7: crash; green dot: lap done; grey dot: time-out or stall.")),
    h("p", {}, button, " speed ", speed, clock), canvas);
}

async function familySection(run, info) {
  if (!info || run.status !== "succeeded") return null;
  if (info.family === "function" || info.family === "logic") {
    const predictions = await apiOptional(`/runs/${run.id}/predictions`);
    if (!predictions) return null;
    return h("section", {}, h("h2", {}, info.family === "logic" ? "Truth table with the network's outputs" : "Target and network output"),
      info.family === "logic" ? logicSection(predictions) : functionSection(predictions));
  }
  if (info.family === "car") {
    const section = h("section", {}, h("h2", {}, "Replay of the scoring episodes"), h("p", { class: "muted" }, "Replaying the episodes…"));
    apiOptional(`/runs/${run.id}/episodes.json`).then((episodes) => {
      section.replaceChildren(h("h2", {}, "Replay of the scoring episodes"), episodes ? replayTracks(episodes) : h("p", { class: "muted" }, DASH),
        h("h2", {}, "Trajectory picture"), h("img", { src: `/runs/${run.id}/trajectory.png`, alt: "trajectories", style: "max-width:100%" }));
    }).catch((error) => showError(section, error));
    return section;
  }
  return null;
}

async function load() {
  try {
    const [run, tasks] = await Promise.all([api(`/runs/${runId}`), apiOptional("/tasks")]);
    const info = (tasks || []).find((t) => t.name === run.task);
    const spec = run.spec || {};
    const record = { task: run.task, method: run.method, seed: run.seed, settings_hash: run.settings_hash, spec, library_versions: run.library_versions, worker: run.worker };
    const family = await familySection(run, info);
    main.replaceChildren(
      h("h1", {}, `Run #${run.id}: ${run.label || run.method} on ${run.task}, seed ${run.seed} `, statusBadge(run.status)),
      h("p", {}, h("a", { href: `/ui/jobs/${run.job_id}` }, `job #${run.job_id}`), " · ",
        h("a", { href: `/runs/${run.id}/weights`, download: `arena-run-${run.id}-weights.json` }, "download weights (JSON)"), " · ",
        h("a", { href: `/runs/${run.id}` }, "run JSON")),
      h("section", { class: "card" }, kvTable({ score: run.score ?? run.progress_score, solved: run.solved, evaluations: run.evaluations ?? run.progress_evaluations,
        evaluations_to_solve: run.evaluations_to_solve, seconds: run.seconds, cpu_seconds: run.cpu_seconds, stopped: run.stopped, error: run.error,
        solved_rule: info ? info.solved_rule : null })),
      h("h2", {}, "Learning curve"), h("div", { class: "charts" }, curveCharts(run, info)),
      family,
      h("h2", {}, "Settings"), kvTable(spec.settings),
      h("h2", {}, "Architecture, budget, task options"), kvTable({ architecture: spec.architecture, budget: spec.budget, task_options: spec.task_options }),
      h("h2", {}, "Metrics"), kvTable(run.metrics),
      h("h2", {}, "Reproducibility record"), h("p", { class: "muted" }, "The spec with the seed reproduces the run; library versions as the worker ran it."),
      h("pre", {}, JSON.stringify(record, null, 2)));
  } catch (error) { showError(main, error); }
}

load();
