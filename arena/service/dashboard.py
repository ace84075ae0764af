"""The web dashboard and offline API docs, served by the API itself.

Pages are static HTML + one small script each (arena/service/static/), reading the JSON API in the
browser; nothing is loaded from another host (uPlot, Swagger UI and ReDoc are vendored from the npm
registry into static/vendor/). Besides the pages, this router adds the JSON and pictures the pages need:

- GET /jobs/{id}/curves.json: median and quartiles of best-so-far score across seeds, per method, against
  evaluations and seconds (arena.service.plots), plus the proportion of runs solved against evaluations;
- GET /jobs/{id}/curves.png and .svg: the same curves drawn by matplotlib (for scripts and `arena plot`);
- GET /runs/{id}/predictions: function and logic tasks, the target and the trained network's output on
  the task's held-out inputs, computed here with numpy from the stored weights (no torch);
- GET /runs/{id}/episodes.json: car tasks, the paths of all scoring episodes, replayed in a child
  process (the worker-side network code imports torch, which this process never does).

Like api.py, this module never imports torch, PyGAD, pycma or gymnasium.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterator

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session

from arena.service import plots, schemas
from arena.store import queries
from arena.store.db import session_scope
from arena.service.renders import RenderCache, run_child
from arena.tasks import TASKS, make_task, task_info

logger = logging.getLogger("arena.service")

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter()


def _database() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def _job(session: Session, job_id: int):
    job = queries.get_job(session, job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"job {job_id} not found")
    return job


def _run(session: Session, run_id: int):
    run = queries.get_run(session, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return run


def _output(session: Session, run):
    output = queries.get_run_output(session, run.id)
    if output is None:
        raise HTTPException(status_code=404, detail=f"run {run.id} has no weights yet ({run.status})")
    return output


# --- pages and assets -----------------------------------------------------------------------------


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / f"{name}.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False)
def jobs_page():
    return _page("jobs")


@router.get("/ui/jobs/{job_id}", include_in_schema=False)
def job_page(job_id: schemas.JobId):
    return _page("job")


@router.get("/ui/runs/{run_id}", include_in_schema=False)
def run_page(run_id: schemas.RunId):
    return _page("run")


@router.get("/ui/leaderboard", include_in_schema=False)
def leaderboard_page():
    return _page("leaderboard")


@router.get("/ui/summary", include_in_schema=False)
def summary_page():
    return _page("summary")


@router.get("/static/{path:path}", include_in_schema=False)
def static_file(path: str):
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/docs", include_in_schema=False)
def swagger_ui() -> HTMLResponse:
    return _api_docs(
        get_swagger_ui_html, "Swagger UI",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=DOCS_FAVICON,
        swagger_ui_parameters={"validatorUrl": None},  # the default validator is on another host
    )  # fmt: skip


@router.get("/redoc", include_in_schema=False)
def redoc() -> HTMLResponse:
    return _api_docs(get_redoc_html, "ReDoc", redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js", redoc_favicon_url=DOCS_FAVICON, with_google_fonts=False)


VENDOR = "/static/vendor"  # the docs pages' scripts, served from here: no CDN
DOCS_FAVICON = f"{VENDOR}/swagger-ui/favicon-32x32.png"


def _api_docs(page, name: str, **assets) -> HTMLResponse:
    """A page of FastAPI's (`get_swagger_ui_html`, `get_redoc_html`) on the API's OpenAPI schema."""
    return page(openapi_url="/openapi.json", title=f"Arena - {name}", **assets)


# --- learning curves ------------------------------------------------------------------------------


def solve_threshold(task: str) -> float | None:
    """The score a run must beat to be solved, when the solved rule is a threshold on the score."""
    from arena.tasks.supervised import FUNCTIONS

    info = TASKS.get(task)
    if info is not None and info.family == "function" and task in FUNCTIONS:
        return float(FUNCTIONS[task][2])
    return None


def job_curves(session: Session, job_id: int) -> dict:
    job = _job(session, job_id)
    info = task_info(job.task)
    runs = queries.job_runs(session, job_id)
    curves: dict[str, list] = {}
    for run in runs:
        output = queries.get_run_output(session, run.id)
        curves.setdefault(run.method, []).append(output.curve if output is not None else None)
    run_fields = [
        {name: getattr(run, name) for name in ("method", "status", "solved", "evaluations_to_solve", "evaluations")} for run in runs
    ]
    return {
        "job_id": job_id,
        "task": job.task,
        "status": job.status,
        "score_name": info.score_name,
        "higher_is_better": info.higher_is_better,
        "threshold": solve_threshold(job.task),
        "curves": plots.aggregate(curves),
        "proportion_solved": plots.proportion_solved(run_fields),
    }


NO_JOB = schemas.error_responses({404: "no such job"})


@router.get("/jobs/{job_id}/curves.json", tags=["results"], responses=NO_JOB)
def get_job_curves(job_id: schemas.JobId, session: Session = Depends(_database)) -> dict:
    """Best-so-far score across seeds per method: median and quartiles on a shared grid, against
    evaluations and against seconds; the solve threshold when the task has one; the proportion of
    finished runs solved against evaluations."""
    return job_curves(session, job_id)


def _curves_picture(job_id: schemas.JobId, session: Session, fmt: str) -> bytes:
    data = job_curves(session, job_id)
    title = f"job {job_id}: {data['task']} ({data['status']})"
    return plots.render_curves(data["curves"], title, data["score_name"], data["higher_is_better"], data["threshold"], fmt)


@router.get("/jobs/{job_id}/curves.png", tags=["results"], response_class=Response, responses={200: {"content": {"image/png": {}}}, **NO_JOB})
def get_job_curves_png(job_id: schemas.JobId, session: Session = Depends(_database)):
    """Learning curves (median and interquartile band per method against evaluations), PNG."""
    return Response(content=_curves_picture(job_id, session, "png"), media_type="image/png")


@router.get("/jobs/{job_id}/curves.svg", tags=["results"], response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}, **NO_JOB})
def get_job_curves_svg(job_id: schemas.JobId, session: Session = Depends(_database)):
    """Learning curves (median and interquartile band per method against evaluations), SVG."""
    return Response(content=_curves_picture(job_id, session, "svg"), media_type="image/svg+xml")


# --- what a trained network does --------------------------------------------------------------------

_HIDDEN = {
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0.0),
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "identity": lambda z: z,
}


def numpy_forward(weights, architecture: dict, x: np.ndarray) -> np.ndarray:
    """The network on inputs x (B, in) -> (B, out), from the flat weights: for each layer in order, its
    weight (out x in, row-major) then its bias (the layout of arena.models.architecture)."""
    sizes = [architecture["input_size"], *architecture.get("hidden_sizes", ()), architecture["output_size"]]
    flat = np.asarray(weights, dtype=np.float64)
    expected = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    if flat.size != expected:
        raise ValueError(f"{flat.size} weights for an architecture of {expected} parameters")
    hidden = _HIDDEN[architecture.get("hidden_activation", "tanh")]
    output = _HIDDEN[architecture.get("output_activation", "identity")]
    h = np.asarray(x, dtype=np.float64)
    offset = 0
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = flat[offset : offset + n_out * n_in].reshape(n_out, n_in)
        offset += n_out * n_in
        b = flat[offset : offset + n_out]
        offset += n_out
        h = h @ w.T + b
        h = output(h) if layer == len(sizes) - 2 else hidden(h)
    return h


def _rounded(values: np.ndarray, digits: int = 6) -> list:
    return np.round(np.asarray(values, dtype=float), digits).tolist()


@router.get("/runs/{run_id}/predictions", tags=["runs"], responses=schemas.error_responses({404: "no such run, not a function or logic run, or no weights yet"}))
def get_run_predictions(run_id: schemas.RunId, session: Session = Depends(_database)) -> dict:
    """Function and logic tasks: the held-out inputs, the target and the trained network's output.

    {"family": "function"|"logic", "input_size", "output_size", "inputs": [[...]], "target": [[...]],
    "output": [[...]], "threshold"}; for a function of two variables the inputs are a grid (`grid_size`
    points per axis, first variable slowest).
    """
    run = _run(session, run_id)
    info = TASKS.get(run.task)
    if info is None or info.family not in ("function", "logic"):
        raise HTTPException(status_code=404, detail=f"run {run_id} is not a function or logic run: no predictions")
    output = _output(session, run)
    task = make_task(run.task)  # supervised tasks: numpy data only
    x, y = task.x_test, task.y_test
    try:
        predicted = numpy_forward(output.weights, run.spec["architecture"], x)
    except (ValueError, KeyError) as error:
        raise HTTPException(status_code=500, detail=f"run {run_id}: {error}") from None
    body = {
        "run_id": run_id,
        "task": run.task,
        "family": info.family,
        "input_size": info.input_size,
        "output_size": info.output_size,
        "inputs": _rounded(x),
        "target": _rounded(y),
        "output": _rounded(predicted),
        "threshold": solve_threshold(run.task),
    }
    if info.family == "function" and info.input_size == 2:
        body["grid_size"] = int(round(len(x) ** 0.5))
    return body


# --- car episodes -------------------------------------------------------------------------------------

EPISODES_CACHE_SIZE = 32
_episodes_cache = RenderCache(EPISODES_CACHE_SIZE)  # a finished run's episodes never change; one replay per run at a time
_EPISODES = (
    "import json, sys\n"
    "import numpy as np\n"
    "from arena.models.architecture import Architecture\n"
    "from arena.models.network import PopulationForward\n"
    "from arena.tasks import make_task\n"
    "from arena.tasks.car.sim import DT\n"
    "from arena.tasks.car.task import run_episodes\n"
    "job = json.load(sys.stdin)\n"
    "task = make_task(job['task'], job['task_options'])\n"
    "forward = PopulationForward(Architecture.model_validate(job['architecture'])).numpy(np.asarray(job['weights'], dtype=np.float32)[None])\n"
    "r = run_episodes(task.eval_world, task.eval_starts, lambda x: forward(x)[0], stop_after_lap=True, record=True)\n"
    "track = task.eval_track\n"
    "walls = lambda a: np.round(np.asarray(a, dtype=float), 2).tolist()\n"
    "episodes = [{'path': walls(p), 'crashed': bool(r.crashed[k]), 'stalled': bool(r.stalled[k]),\n"
    "             'timed_out': bool(r.timed_out[k]), 'lap': bool(r.progress[k] >= r.lap_length[k]),\n"
    "             'lap_fraction': float(min(r.progress[k] / r.lap_length[k], 1.0)), 'steps': int(r.steps[k])}\n"
    "            for k, p in enumerate(r.trajectories)]\n"
    "json.dump({'track': {'name': track.name, 'left': walls(track.left), 'right': walls(track.right), 'centre': walls(track.centre)},\n"
    "           'dt': DT, 'episodes': episodes}, sys.stdout)\n"
)


def render_episodes(task: str, weights: list, architecture: dict, task_options: dict | None) -> bytes:
    """Replay in a child process: the episodes run the worker-side network code (torch), which must never
    be imported into the API process."""
    return run_child(
        _EPISODES, {"task": task, "weights": weights, "architecture": architecture, "task_options": task_options},
        module="arena.tasks.car.task", unavailable="car episodes are not available in this build",
        doing="replaying the episodes", what=f"episodes of a {task} run", starts_with=b"{",
    )  # fmt: skip


@router.get("/runs/{run_id}/episodes.json", tags=["runs"],
            responses=schemas.error_responses({404: "no such run, not a car run, no weights yet, or no replays in this build (the api image: no torch)", 503: "replaying timed out"}))
def get_run_episodes(run_id: schemas.RunId, session: Session = Depends(_database)):
    """Car runs: the trained network driving every scoring episode (the same starts the score used).

    {"track": {"name", "left", "right", "centre": [[x, y], ...]}, "dt": seconds per step, "episodes":
    [{"path": [[x, y], ...], "crashed", "stalled", "timed_out", "lap", "lap_fraction", "steps"}]}.
    """
    run = _run(session, run_id)
    info = TASKS.get(run.task)
    if info is None or info.family != "car":
        raise HTTPException(status_code=404, detail=f"run {run_id} is not a car run: no episodes")
    output = _output(session, run)
    session.commit()  # hand the connection back to the pool: a render may take seconds, waiting for it too
    body, how = _episodes_cache.get(
        run_id, lambda: render_episodes(run.task, output.weights, run.spec["architecture"], run.spec.get("task_options") or None)
    )
    return Response(content=body, media_type="application/json", headers={"X-Arena-Render": how})


# --- export -------------------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "run_id", "job_id", "task", "method", "algorithm", "label", "seed", "status", "solved", "score",
    "evaluations_to_solve", "seconds_to_solve", "cpu_seconds_to_solve", "evaluations", "seconds", "cpu_seconds",
    "stopped", "budget_evaluations", "budget_seconds", "stop_on_solve", "network", "architecture", "settings",
    "task_options", "settings_hash", "metrics", "attempts", "error", "created_at", "finished_at",
)  # fmt: skip
_JSON_FIELDS = ("architecture", "settings", "task_options", "metrics")


def export_record(row: dict) -> dict:
    """One run as a flat record: the spec's budget split into columns, its architecture also in words."""
    from arena.methods import label

    spec = row.get("spec") or {}
    budget = spec.get("budget") or {}
    architecture = spec.get("architecture") or None
    network = None
    if architecture:
        sizes = [architecture.get("input_size"), *architecture.get("hidden_sizes", ()), architecture.get("output_size")]
        network = "-".join(map(str, sizes)) + f" {architecture.get('hidden_activation')}/{architecture.get('output_activation')}"
    record = {
        **{name: row.get(name) for name in EXPORT_FIELDS if name in row},
        "run_id": row["id"],
        "label": label(row["method"], row.get("algorithm")),
        "budget_evaluations": budget.get("evaluations"),
        "budget_seconds": budget.get("seconds"),
        "stop_on_solve": budget.get("stop_on_solve"),
        "network": network,
        "architecture": architecture,
        "settings": spec.get("settings") or {},
        "task_options": spec.get("task_options") or None,
    }
    for name in ("created_at", "finished_at"):
        if record.get(name) is not None:
            record[name] = record[name].isoformat()
    ordered = {name: record.get(name) for name in EXPORT_FIELDS}
    if "curve" in row:
        ordered["curve"] = row["curve"]
    return ordered


def _csv_cell(name: str, value) -> object:
    if value is None:
        return ""
    if name in _JSON_FIELDS:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _export_lines(fmt: str, task: str | None, status: str | None, job: int | None, curves: bool) -> Iterator[bytes]:
    """The export, a chunk of rows at a time, from a session of its own (the response outlives the request's)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_FIELDS)
    pending = 0
    with session_scope() as session:
        for row in queries.export_runs(session, task=task, status=status, job_id=job, curves=curves):
            record = export_record(row)
            if writer is not None:
                writer.writerow([_csv_cell(name, record[name]) for name in EXPORT_FIELDS])
            else:
                buffer.write(json.dumps(record, separators=(",", ":")) + "\n")
            pending += 1
            if pending >= 200:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                pending = 0
    if buffer.tell():
        yield buffer.getvalue().encode()


def _export_filters(task: str | None) -> None:
    if task is not None and task not in TASKS:
        from arena.errors import ArenaError

        try:
            task_info(task)
        except ArenaError as error:  # "unknown task 'xr' (did you mean 'xor'?)"
            raise HTTPException(status_code=404, detail=error.message) from None


JobFilter = Query(None, ge=1, le=schemas.MAX_ID, description="only this job's runs")
_EXPORT_ERRORS = schemas.error_responses({404: "no such task"})


@router.get("/runs.csv", tags=["results"], response_class=Response, responses={200: {"content": {"text/csv": {}}}, **_EXPORT_ERRORS})
def export_runs_csv(task: str | None = None, status: schemas.Status | None = None, job: int | None = JobFilter):
    """Every run matching the filters (as GET /jobs: task, status; plus job), by id, as CSV streamed row by row:
    job, task, method, seed, status, results (score, solved, evaluations/seconds/CPU seconds and to solve),
    budget, network, settings (a JSON object per cell), task options, metrics. `status` is the run's."""
    _export_filters(task)
    return StreamingResponse(
        _export_lines("csv", task, status, job, False), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="arena-runs.csv"'},
    )  # fmt: skip


@router.get("/runs.jsonl", tags=["results"], response_class=Response, responses={200: {"content": {"application/x-ndjson": {}}}, **_EXPORT_ERRORS})
def export_runs_jsonl(task: str | None = None, status: schemas.Status | None = None, job: int | None = JobFilter, curves: bool = False):
    """The runs of GET /runs.csv as JSON lines (settings, architecture, metrics as objects); with `curves=1`
    each line also has the run's learning curve ([{evaluations, seconds, score}], null before it finished)."""
    _export_filters(task)
    return StreamingResponse(
        _export_lines("jsonl", task, status, job, curves), media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="arena-runs.jsonl"'},
    )  # fmt: skip
