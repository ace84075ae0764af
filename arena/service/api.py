"""The HTTP API. Routes are thin: validation lives in schemas, database access in queries,
statistics in stats (over verdict), sending in arena.workers.send. This process never imports torch, PyGAD, pycma
or gymnasium.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import threading
from contextlib import asynccontextmanager
from typing import Iterator

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from arena import __version__
from arena.errors import ArenaError
from arena.methods import METHODS, describe_settings
from arena.service import queries, schemas, stats
from arena.service.db import get_engine, run_migrations, session_scope
from arena.service.settings import Settings, get_settings
from arena.tasks import TASKS, task_info

logger = logging.getLogger("arena.service")


def database() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def settings_dependency() -> Settings:
    return get_settings()


def not_found(what: str, ident) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} {ident} not found")


def job_or_404(session: Session, job_id: int):
    job = queries.get_job(session, job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


def run_or_404(session: Session, run_id: int):
    run = queries.get_run(session, run_id)
    if run is None:
        raise not_found("run", run_id)
    return run


router = APIRouter()


@router.post("/jobs", status_code=202, response_model=schemas.JobCreated, tags=["jobs"])
def submit_job(body: schemas.JobCreate, settings: Settings = Depends(settings_dependency)):
    """Store a job and its runs, then queue one message per run. Nothing is stored on a 422."""
    from arena.workers.send import send_runs

    seeds, specs = body.resolve(settings)
    with session_scope() as session:
        job = queries.create_job(session, body.task, seeds, specs, body.model_dump(mode="json", exclude_none=True))
        created = schemas.JobCreated(
            job_id=job.id,
            status=job.status,
            run_ids=[run.id for run in job.runs],
            runs=[schemas.RunRef.model_validate(run) for run in job.runs],
        )
        to_send = [(run.id, run.method, run.spec["budget"].get("seconds")) for run in job.runs]
    send_runs(to_send)  # after the commit, so a worker always finds the run it is sent
    return created


@router.get("/jobs", response_model=schemas.JobPage, tags=["jobs"])
def list_jobs(
    task: str | None = None,
    status: schemas.Status | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=schemas.MAX_ID),
    session: Session = Depends(database),
):
    jobs, total = queries.list_jobs(session, task=task, status=status, limit=limit, offset=offset)
    counts = queries.run_counts(session, [job.id for job in jobs])
    return schemas.JobPage(
        total=total, limit=limit, offset=offset,
        jobs=[schemas.JobSummary.model_validate({**_job_fields(job), "run_counts": counts[job.id]}) for job in jobs],
    )


def _job_fields(job) -> dict:
    return {name: getattr(job, name) for name in schemas.JobSummary.model_fields if name != "run_counts"}


@router.get("/jobs/{job_id}", response_model=schemas.JobDetail, tags=["jobs"])
def get_job(job_id: schemas.JobId, session: Session = Depends(database)):
    job = job_or_404(session, job_id)
    runs = queries.job_runs(session, job_id)
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return schemas.JobDetail.model_validate(
        {**_job_fields(job), "request": job.request, "run_counts": counts, "runs": [schemas.RunSummary.model_validate(r) for r in runs]}
    )


@router.post("/jobs/{job_id}/cancel", response_model=schemas.JobSummary, tags=["jobs"])
def cancel_job(job_id: schemas.JobId, session: Session = Depends(database)):
    """Cancel queued runs now; running runs stop at their next heartbeat (about a second)."""
    job, already_finished = queries.cancel_job(session, job_id)
    if job is None:
        raise not_found("job", job_id)
    if already_finished:
        raise HTTPException(status_code=409, detail=f"job {job_id} already finished ({job.status})")
    counts = queries.run_counts(session, [job_id])[job_id]
    return schemas.JobSummary.model_validate({**_job_fields(job), "run_counts": counts})


@router.get("/jobs/{job_id}/comparison", response_model=schemas.Comparison, tags=["results"])
def job_comparison(job_id: schemas.JobId, session: Session = Depends(database)):
    """Each method's statistics on this job (distinct seeds; duplicates counted once) and every pair of
    methods head to head (one Holm family), with a verdict per lens in words."""
    job = job_or_404(session, job_id)
    info = task_info(job.task)
    result = stats.comparison(queries.job_stat_runs(session, job_id))
    return _json(
        schemas.Comparison, job_id=job_id, task=job.task, status=job.status, score_name=info.score_name,
        higher_is_better=info.higher_is_better, **result,
    )  # fmt: skip


def _json(model, **fields) -> Response:
    """Validate once against the response model and send the JSON (the same bytes a cache can keep)."""
    return Response(content=model.model_validate(fields).model_dump_json(), media_type="application/json")


@router.get("/runs/{run_id}", response_model=schemas.RunDetail, tags=["runs"])
def get_run(run_id: schemas.RunId, session: Session = Depends(database)):
    run = run_or_404(session, run_id)
    output = queries.get_run_output(session, run_id)
    detail = schemas.RunDetail.model_validate(run)
    detail.curve = output.curve if output is not None else None
    return detail


@router.get("/runs/{run_id}/weights", response_model=schemas.RunWeights, tags=["runs"])
def get_run_weights(run_id: schemas.RunId, session: Session = Depends(database)):
    run = run_or_404(session, run_id)
    output = queries.get_run_output(session, run_id)
    if output is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} has no weights ({run.status})")
    return schemas.RunWeights(run_id=run_id, architecture=run.spec["architecture"], weights=output.weights)


@router.get("/runs/{run_id}/trajectory.png", tags=["runs"], response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"description": "not a car run, or no weights yet"}})
def get_run_trajectory(run_id: schemas.RunId, session: Session = Depends(database)):
    """The best network driving its car task's tracks (car runs only)."""
    run = run_or_404(session, run_id)
    info = TASKS.get(run.task)
    if info is None or info.family != "car":
        raise HTTPException(status_code=404, detail=f"run {run_id} is not a car run: no trajectory")
    output = queries.get_run_output(session, run_id)
    if output is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} has no weights yet ({run.status})")
    png = _trajectory_cache.get(run_id)
    if png is None:
        png = render_trajectory(run.task, output.weights, run.spec["architecture"], run.spec.get("task_options") or None)
        _trajectory_cache[run_id] = png
        while len(_trajectory_cache) > TRAJECTORY_CACHE_SIZE:
            _trajectory_cache.pop(next(iter(_trajectory_cache)))
    return Response(content=png, media_type="image/png")


TRAJECTORY_CACHE_SIZE = 64
_trajectory_cache: dict[int, bytes] = {}  # a finished run's picture never changes
_RENDER = (
    "import json, sys\n"
    "from arena.tasks.car.plot import plot_trajectories\n"
    "job = json.load(sys.stdin)\n"
    "sys.stdout.buffer.write(plot_trajectories(job['task'], job['weights'], job['architecture'], job['task_options']))\n"
)


def render_trajectory(task: str, weights: list, architecture: dict, task_options: dict | None) -> bytes:
    """Render in a child process: the plot replays episodes with the worker-side network code (torch),
    which must never be imported into the API process."""
    if importlib.util.find_spec("arena.tasks.car.plot") is None:
        raise HTTPException(status_code=404, detail="trajectory plots are not available in this build")
    job = json.dumps({"task": task, "weights": weights, "architecture": architecture, "task_options": task_options})
    try:
        done = subprocess.run([sys.executable, "-c", _RENDER], input=job.encode(), capture_output=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise HTTPException(status_code=503, detail="rendering the trajectory timed out") from None
    if done.returncode != 0 or not done.stdout.startswith(b"\x89PNG"):
        logger.error("trajectory of a %s run failed: %s", task, done.stderr.decode(errors="replace")[-2000:])
        raise HTTPException(status_code=500, detail="rendering the trajectory failed")
    return done.stdout


@router.get("/tasks", tags=["tasks"])
def list_tasks() -> list[dict]:
    """Every task, with its defaults, and each method's settings (default, choices or range).

    `settings` is keyed by method; each names the algorithm it runs on this task (backprop runs ppo on
    car tasks) and lists that algorithm's settings, with this task's tuned defaults.
    """
    listing = []
    for info in TASKS.values():
        entry = info.public()
        entry["method_defaults"] = info.method_defaults
        entry["settings"] = {}
        for name, method in METHODS.items():
            algorithm = method.algorithm(info.kind)
            tuned = info.method_defaults.get(algorithm.NAME, {})
            rows = [{**row, "default": tuned.get(row["name"], row["default"])} for row in describe_settings(algorithm)]
            entry["settings"][name] = {"algorithm": algorithm.NAME, "settings": rows}
        listing.append(entry)
    return listing


@router.get("/leaderboard", response_model=schemas.Leaderboard, tags=["results"])
def get_leaderboard(task: str, session: Session = Depends(database)):
    """One row per configuration (distinct seeds; duplicates counted once), ranked by success rate then
    ERT in evaluations, ties marked; each method's best configuration head to head, verdict per lens."""
    try:
        info = task_info(task)
    except ArenaError as error:
        raise HTTPException(status_code=404, detail=error.message) from None
    return _task_results(session, info, queries.leaderboard_version(session, task)).response


class _TaskResults:
    """A task's leaderboard, as sent, and each method's best configuration's runs (for the summary)."""

    def __init__(self, version: int, response: Response, best: dict[str, dict]):
        self.version, self.response, self.best = version, response, best


def _task_results(session: Session, info, version: int) -> _TaskResults:
    cached = _leaderboard_cache.get(info.name)
    if cached is not None and cached.version == version:
        return cached
    with _computing:  # one computation at a time: a burst of cold requests computes once
        cached = _leaderboard_cache.get(info.name)
        if cached is not None and cached.version == version:
            return cached
        runs = queries.task_runs(session, info.name)
        keys = {(run["method"], run["settings_hash"]) for run in runs if run["status"] == "succeeded"}
        body, best = stats.leaderboard(runs, queries.configurations(session, info.name, sorted(keys)))
        response = _json(schemas.Leaderboard, task=info.name, score_name=info.score_name, higher_is_better=info.higher_is_better, **body)
        results = _TaskResults(version, response, best)
        _leaderboard_cache[info.name] = results
        return results


# task -> its results at a leaderboard version. Recorded results never change, and every transaction that
# finishes a run bumps its task's version, so a cached leaderboard is exact until the version moves.
# Bootstraps (capped in verdict.py) therefore run once per task version.
_leaderboard_cache: dict[str, _TaskResults] = {}
_summary_cache: dict[object, Response] = {}  # key: every task's version (or the jobs asked for) -> response
_computing = threading.Lock()
SUMMARY_CACHE_SIZE = 16


@router.get("/summary", response_model=schemas.Summary, tags=["results"])
def get_summary(
    jobs: str | None = Query(None, description="comma-separated job ids: only their runs (default: every task's leaderboard)"),
    session: Session = Depends(database),
):
    """Across tasks, each method's best configuration per task: tasks won / lost / undecided per lens
    (one Holm family across all tasks), and performance profiles of ERT (Dolan and More) as data."""
    if jobs is not None:
        return _jobs_summary(session, jobs)
    versions = queries.task_versions(session)
    key = tuple(sorted(versions.items()))
    cached = _summary_cache.get(key)
    if cached is not None:
        return cached
    best_by_task = {}
    for task, version in sorted(versions.items()):
        info = TASKS.get(task)
        if info is not None:
            best_by_task[task] = _task_results(session, info, version).best
    response = _json(schemas.Summary, **stats.summary(best_by_task))
    _remember(_summary_cache, key, response)
    return response


def _jobs_summary(session: Session, jobs: str) -> Response:
    try:
        job_ids = sorted({int(part) for part in jobs.split(",") if part.strip()})
    except ValueError:
        raise HTTPException(status_code=422, detail=f"jobs must be comma-separated job ids, got {jobs!r}") from None
    if not job_ids or len(job_ids) > 1000:
        raise HTTPException(status_code=422, detail="jobs needs 1 to 1000 job ids")
    tasks = queries.job_tasks(session, job_ids)
    missing = [job_id for job_id in job_ids if job_id not in tasks]
    if missing:
        raise not_found("job", missing[0])
    # Finished runs only change while a job runs: key on the tasks' versions too.
    versions = queries.task_versions(session)
    key = ("jobs", tuple(job_ids), tuple(versions.get(task, 0) for task in sorted(set(tasks.values()))))
    cached = _summary_cache.get(key)
    if cached is not None:
        return cached
    by_task: dict[str, list[dict]] = {}
    for run in queries.jobs_stat_runs(session, job_ids):
        by_task.setdefault(run.pop("task"), []).append(run)
    best_by_task = {task: stats.best_runs(runs) for task, runs in sorted(by_task.items())}
    response = _json(schemas.Summary, **stats.summary(best_by_task), jobs=job_ids)
    _remember(_summary_cache, key, response)
    return response


def _remember(cache: dict, key, value) -> None:
    cache[key] = value
    while len(cache) > SUMMARY_CACHE_SIZE:
        cache.pop(next(iter(cache)))


@router.get("/health", response_model=schemas.Health, tags=["service"])
def health(response: Response, settings: Settings = Depends(settings_dependency)):
    """Database and broker reachable: 200, else 503."""
    database_state = broker_state = "ok"
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        database_state = f"unreachable: {type(error).__name__}"
    try:
        from arena.workers.app import app as celery

        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:
        broker_state = f"unreachable: {type(error).__name__}"
    healthy = database_state == broker_state == "ok"
    if not healthy:
        response.status_code = 503
    return schemas.Health(
        status="ok" if healthy else "degraded", database=database_state, broker=broker_state,
        mode="embedded" if settings.embedded else "production",
    )


@asynccontextmanager
async def lifespan(_app: FastAPI):
    run_migrations(get_settings().database_url)
    # scipy.stats takes about a second to import: warm it in the background, not in the first request.
    threading.Thread(target=importlib.import_module, args=("scipy.stats",), daemon=True).start()
    # statsmodels (the Newcombe interval) pulls in pandas, about a second more: warm it too.
    threading.Thread(target=importlib.import_module, args=("statsmodels.stats.proportion",), daemon=True).start()
    yield


def create_app() -> FastAPI:
    application = FastAPI(
        title="Arena",
        version=__version__,
        description="Neuroevolution (GA) against gradient descent (backprop): same network, same task, same budget.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served by the dashboard with vendored assets (offline)
        redoc_url=None,
    )
    from arena.service import dashboard

    application.include_router(router)
    application.include_router(dashboard.router)
    application.add_exception_handler(RequestValidationError, validation_error)
    return application


async def validation_error(request, error: RequestValidationError):
    """FastAPI's 422 body, with pydantic's "Extra inputs are not permitted" said in words: which key is
    unknown, the closest valid one, and the valid ones."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    from arena.validation import describe

    detail = []
    for item in error.errors():
        item = dict(item)
        location = tuple(item.get("loc", ()))
        if item.get("type") == "extra_forbidden" and location[:1] == ("body",):
            item["msg"] = describe({**item, "loc": location[1:]}, schemas.JobCreate)
        elif item.get("type") == "value_error":
            item["msg"] = str(item.get("msg", "")).removeprefix("Value error, ")
        elif "input" in item and location[:1] == ("body",) and not isinstance(item["input"], (dict, list)):
            item["msg"] = f"{item['msg']}; got {item['input']!r}"
        if isinstance((item.get("ctx") or {}).get("error"), Exception):  # a model validator's ValueError: not JSON
            item["ctx"] = {"error": str(item["ctx"]["error"])}
        detail.append(item)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


app = create_app()
