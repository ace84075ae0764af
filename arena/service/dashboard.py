"""What the web dashboard's pages need besides the API's routes (the pages, their assets and the offline API
docs are served by arena/service/routes/pages.py).

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

Like the API's routes, this module never imports torch, PyGAD, pycma or gymnasium.
"""

from __future__ import annotations

import logging
from typing import Iterator

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy.orm import Session

from arena.methods import METHODS
from arena.models.architecture import numpy_forward  # the one numpy forward (tests import it from here too)
from arena.service import plots, schemas
from arena.store import queries
from arena.store.db import session_scope
from arena.service.renders import RenderCache, run_child
from arena.tasks import TASKS, make_task, task_info

logger = logging.getLogger("arena.service")

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


# The pages, their assets and the API docs: arena/service/routes/pages.py.


@router.get("/methods", tags=["tasks"])
def list_methods() -> dict[str, dict]:
    """Every registered method (arena.methods.METHODS) by name: its label, description, colour, the
    algorithm it runs per kind of task and the libraries whose versions its runs record. The dashboard's
    scripts draw each method in this colour (common.js), so a method registered with its one line is
    drawn in its own colour everywhere without a copy in JavaScript."""
    return {name: method.public() for name, method in METHODS.items()}


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
    "walls = lambda a: np.round(np.asarray(a, dtype=float), 2).tolist()\n"
    "shape = lambda t: {'name': t.name, 'left': walls(t.left), 'right': walls(t.right), 'centre': walls(t.centre)}\n"
    "episodes = [{'path': walls(p), 'track': int(task.eval_starts.track[k]), 'crashed': bool(r.crashed[k]), 'stalled': bool(r.stalled[k]),\n"
    "             'timed_out': bool(r.timed_out[k]), 'lap': bool(r.progress[k] >= r.lap_length[k]),\n"
    "             'lap_fraction': float(min(r.progress[k] / r.lap_length[k], 1.0)), 'steps': int(r.steps[k])}\n"
    "            for k, p in enumerate(r.trajectories)]\n"
    "tracks = [shape(t) for t in task.eval_tracks]\n"
    "json.dump({'track': tracks[0], 'tracks': tracks, 'dt': DT, 'episodes': episodes}, sys.stdout)\n"
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

    {"track": {"name", "left", "right", "centre": [[x, y], ...]}, "tracks": [every scoring track, the same
    shape; car-generalize scores on several], "dt": seconds per step, "episodes": [{"path": [[x, y], ...],
    "track": index in tracks, "crashed", "stalled", "timed_out", "lap", "lap_fraction", "steps"}]}.
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


# The exports (GET /runs.csv, /runs.jsonl): arena/service/routes/exports.py.
