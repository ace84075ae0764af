"""Runs: one run with its spec and curve, its weights, and the picture of a car run's trajectory."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy.orm import Session

from arena.service import schemas
from arena.service.deps import NO_RUN, database, run_or_404
from arena.service.renders import RenderCache, run_child
from arena.store import queries
from arena.tasks import TASKS

router = APIRouter()


@router.get("/runs/{run_id}", response_model=schemas.RunDetail, tags=["runs"], responses=NO_RUN)
def get_run(run_id: schemas.RunId, session: Session = Depends(database)):
    """The run, its whole spec (task options included) and its curve."""
    run = run_or_404(session, run_id)
    output = queries.get_run_output(session, run_id)
    detail = schemas.RunDetail.model_validate(run)
    detail.curve = output.curve if output is not None else None
    return detail


@router.get("/runs/{run_id}/weights", response_model=schemas.RunWeights, tags=["runs"],
            responses=schemas.error_responses({404: "no such run, or no weights yet"}))
def get_run_weights(run_id: schemas.RunId, session: Session = Depends(database)):
    run = run_or_404(session, run_id)
    output = queries.get_run_output(session, run_id)
    if output is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} has no weights ({run.status})")
    return schemas.RunWeights(run_id=run_id, architecture=run.spec["architecture"], weights=output.weights)


@router.get("/runs/{run_id}/trajectory.png", tags=["runs"], response_class=Response,
            responses={200: {"content": {"image/png": {}}},
                       **schemas.error_responses({404: "no such run, not a car run, no weights yet, or no renders in this build (the api image: no torch)", 503: "rendering timed out"})})  # fmt: skip
def get_run_trajectory(run_id: schemas.RunId, session: Session = Depends(database)):
    """The best network driving its car task's tracks (car runs only)."""
    run = run_or_404(session, run_id)
    info = TASKS.get(run.task)
    if info is None or info.family != "car":
        raise HTTPException(status_code=404, detail=f"run {run_id} is not a car run: no trajectory")
    output = queries.get_run_output(session, run_id)
    if output is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} has no weights yet ({run.status})")
    # One render per run at a time (concurrent requests wait for it), at most RENDER_LIMIT at once.
    session.commit()  # hand the connection back to the pool: a render may take seconds, waiting for it too
    title = {"method": run.label, "seed": run.seed, "run_id": run.id, "score": run.score}
    png, how = _trajectory_cache.get(
        run_id, lambda: render_trajectory(run.task, output.weights, run.spec["architecture"], run.spec.get("task_options") or None, title)
    )
    return Response(content=png, media_type="image/png", headers={"X-Arena-Render": how})


TRAJECTORY_CACHE_SIZE = 64
_trajectory_cache = RenderCache(TRAJECTORY_CACHE_SIZE)  # a finished run's picture never changes
_RENDER = (
    "import json, sys\n"
    "from arena.tasks.car.plot import plot_trajectories\n"
    "job = json.load(sys.stdin)\n"
    "sys.stdout.buffer.write(plot_trajectories(job['task'], job['weights'], job['architecture'], job['task_options'], title_info=job['title_info']))\n"
)


def render_trajectory(task: str, weights: list, architecture: dict, task_options: dict | None, title_info: dict | None = None) -> bytes:
    """Render in a child process: the plot replays episodes with the worker-side network code (torch),
    which must never be imported into the API process."""
    return run_child(
        _RENDER, {"task": task, "weights": weights, "architecture": architecture, "task_options": task_options, "title_info": title_info},
        module="arena.tasks.car.plot", unavailable="trajectory plots are not available in this build",
        doing="rendering the trajectory", what=f"trajectory of a {task} run", starts_with=b"\x89PNG",
    )  # fmt: skip
