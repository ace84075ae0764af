"""The HTTP API. Routes are thin: validation lives in schemas, database access in queries,
statistics in stats (over verdict), sending in arena.workers.send. This process never imports torch, PyGAD, pycma
or gymnasium.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import sys
import threading
from contextlib import asynccontextmanager
from typing import Iterator

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.orm import Session

from arena import __version__
from arena.errors import ArenaError
from arena.methods import METHODS, describe_settings, label
from arena.service import auth, schemas
from arena.store import queries
from arena.verdict import report as stats
from arena.store.db import get_engine, run_migrations, session_scope
from arena.service.renders import RenderCache, run_child
from arena.store.settings import Settings, get_settings
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


IDEMPOTENCY_HOURS = 24
MAX_SUMMARY_JOBS = 1000  # job ids one GET /summary?jobs= may name
# Every error a route can answer is declared in /openapi.json (tests/test_schemathesis.py checks the statuses
# answered against them); 422 (validation) is FastAPI's own on every route. No route answers 400.
_ERRORS = schemas.error_responses({
    401: "ARENA_AUTH=keys: no key, or an invalid or revoked one",
    403: "a cross-site request (see ARENA_CORS_ORIGINS), or another key's job",
    415: "not JSON",
    429: "over the key's rate or quota: retry after `Retry-After` seconds",
})  # fmt: skip
NO_JOB = schemas.error_responses({404: "no such job"})
NO_RUN = schemas.error_responses({404: "no such run"})
# ARENA_READS=keys: every API read needs a key too (added to every route of the app then, see create_app).
READ_ERRORS = schemas.error_responses({401: "ARENA_READS=keys: no key, or an invalid or revoked one"})


def submit_writer(request: Request, settings: Settings = Depends(settings_dependency)) -> auth.Caller:
    return auth.writer(request, settings, body_required=True)


def cancel_writer(request: Request, settings: Settings = Depends(settings_dependency)) -> auth.Caller:
    return auth.writer(request, settings, body_required=False)


@router.post(
    "/jobs", status_code=202, response_model=schemas.JobCreated, tags=["jobs"],
    responses={**_ERRORS, 200: {"model": schemas.JobCreated, "description": "the job stored earlier under this Idempotency-Key"},
               **schemas.error_responses({409: "a job with this Idempotency-Key is being stored"})},
)  # fmt: skip
def submit_job(
    body: schemas.JobCreate,
    response: Response,
    caller: auth.Caller = Depends(submit_writer),
    idempotency_key: str | None = Header(
        None, alias="Idempotency-Key", min_length=1, max_length=255,
        description=f"retry safely: the same key (per API key) within {IDEMPOTENCY_HOURS} h answers the first job (200) and stores nothing",
    ),
    settings: Settings = Depends(settings_dependency),
):  # fmt: skip
    """Store a job and its runs, then queue them (one message per run, or per batch of seeds). Nothing is stored on any 4xx.

    Refused with 422 naming the limit: a run over ARENA_MAX_POPULATION_PARAMETERS (parameters x population)
    or a job over ARENA_MAX_JOB_CPU_SECONDS; with 429 and `Retry-After`: over the key's quota of runs
    queued or running, or of CPU seconds queued."""
    from sqlalchemy.exc import IntegrityError

    from arena.workers.send import send_job_runs

    seeds, specs = body.resolve(settings)
    run_seconds = schemas.job_cost(seeds, specs, settings)
    request = body.model_dump(mode="json", exclude_none=True)
    request_hash = queries.settings_hash(request)
    scoped_key = f"{caller.idempotency_scope}:{idempotency_key}" if idempotency_key is not None else None
    try:
        with session_scope() as session:
            if caller.key_id is not None:
                queries.lock_api_key(session, caller.key_id)
            if scoped_key is not None:
                earlier = queries.idempotent_job(session, scoped_key, queries.seconds_ago(IDEMPOTENCY_HOURS * 3600))
                if earlier is not None:
                    return _replay(session, earlier, request_hash, response)
            if caller.key_id is not None:
                _check_quota(session, caller, len(seeds), run_seconds)
            job = queries.create_owned_job(
                session, body.task, seeds, specs, request, api_key_id=caller.key_id, run_cpu_seconds=run_seconds,
                idempotency_key=scoped_key, request_hash=request_hash,
            )  # fmt: skip
            created = _created(job.id, job.status, [(run.id, run.method, run.seed) for run in job.runs])
            to_send = [(run.id, run.method, run.spec["budget"].get("seconds"), run.spec.get("algorithm")) for run in job.runs]
    except IntegrityError:
        if scoped_key is None:
            raise
        # Another request with this Idempotency-Key stored its job first: answer that one.
        with session_scope() as session:
            earlier = queries.idempotent_job(session, scoped_key, queries.seconds_ago(IDEMPOTENCY_HOURS * 3600))
            if earlier is None:
                raise HTTPException(status_code=409, detail="a job with this Idempotency-Key is being stored: retry") from None
            return _replay(session, earlier, request_hash, response)
    send_job_runs(to_send, supervised=task_info(body.task).kind == "supervised")  # after the commit, so a worker always finds the run it is sent; batched where allowed
    return created


def _created(job_id: int, status: str, runs: list[tuple[int, str, int]]) -> schemas.JobCreated:
    return schemas.JobCreated(
        job_id=job_id, status=status, run_ids=[run_id for run_id, _, _ in runs],
        runs=[schemas.RunRef(id=run_id, method=method, seed=seed) for run_id, method, seed in runs],
    )  # fmt: skip


def _replay(session: Session, job, request_hash: str, response: Response) -> schemas.JobCreated:
    """The answer to a repeated Idempotency-Key: the first job, if the body is the same."""
    if job.request_hash != request_hash:
        message = f"this Idempotency-Key was used for job {job.id} with a different body: use a new key for a new job"
        raise RequestValidationError([{"loc": ("header", "Idempotency-Key"), "msg": message, "type": "value_error"}])
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    return _created(job.id, job.status, queries.job_run_refs(session, job.id))


def _check_quota(session: Session, caller: auth.Caller, seeds: int, run_seconds: dict[str, float]) -> None:
    """429 with Retry-After when the job would take the key over its quota; 422 when it never could."""
    runs = seeds * len(run_seconds)
    seconds = seeds * sum(run_seconds.values())
    if runs > caller.max_concurrent_runs or seconds > caller.max_queued_cpu_seconds:
        raise schemas.invalid(
            ("seeds",),
            f"this job has {runs} runs and may take {seconds:,.0f} CPU seconds; key {caller.name!r} may have at most "
            f"{caller.max_concurrent_runs} runs and {caller.max_queued_cpu_seconds:,.0f} CPU seconds queued or running",
        )
    usage = queries.key_usage(session, caller.key_id)
    retry = min(60.0, usage.shortest_run_seconds or 60.0)
    if usage.runs + runs > caller.max_concurrent_runs:
        raise auth.too_many(
            f"key {caller.name!r} has {usage.runs} runs queued or running; this job's {runs} would pass its quota of {caller.max_concurrent_runs}", retry
        )
    if usage.cpu_seconds + seconds > caller.max_queued_cpu_seconds:
        raise auth.too_many(
            f"key {caller.name!r} has {usage.cpu_seconds:,.0f} CPU seconds queued or running; this job's {seconds:,.0f} would pass "
            f"its quota of {caller.max_queued_cpu_seconds:,.0f}",
            retry,
        )


@router.get("/jobs", response_model=schemas.JobPage, tags=["jobs"])
def list_jobs(
    task: str | None = None,
    status: schemas.Status | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=schemas.MAX_ID),
    session: Session = Depends(database),
):
    """Newest first. Reads only the jobs' light columns and their run counts: never a request, spec or curve."""
    jobs, total = queries.list_jobs(session, task=task, status=status, limit=limit, offset=offset)
    counts = queries.run_counts(session, [job.id for job in jobs])
    return _json(
        schemas.JobPage, total=total, limit=limit, offset=offset,
        jobs=[{**_job_fields(job), "run_counts": counts[job.id]} for job in jobs],
    )


def _job_fields(job) -> dict:
    return {name: getattr(job, name) for name in schemas.JobSummary.model_fields if name != "run_counts"}


@router.get("/jobs/{job_id}", response_model=schemas.JobDetail, tags=["jobs"], responses=NO_JOB)
def get_job(job_id: schemas.JobId, session: Session = Depends(database)):
    """The job, its request as accepted, and each run's status and result (no spec, curve or weights:
    GET /runs/{id} has those)."""
    job = queries.get_job_light(session, job_id)
    if job is None:
        raise not_found("job", job_id)
    runs = queries.job_runs(session, job_id)
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    # Built as JobDetail's JSON (its fields in order: the summary's, request, runs) with the request spliced
    # in as the database stored it: a request holding a 10,000-point track is sent, not parsed and re-encoded.
    summary = schemas.JobSummary.model_validate({**_job_fields(job), "run_counts": counts}).model_dump_json()
    rows = _RUN_LIST.dump_json(_RUN_LIST.validate_python([{**run._mapping, "label": label(run.method, run.algorithm)} for run in runs]))
    request = queries.job_request_json(session, job_id) or "{}"
    body = f'{summary[:-1]},"request":{request},"runs":'.encode() + rows + b"}"
    return Response(content=body, media_type="application/json")


_RUN_LIST = TypeAdapter(list[schemas.RunSummary])


@router.post(
    "/jobs/{job_id}/cancel", response_model=schemas.JobSummary, tags=["jobs"],
    responses={**_ERRORS, **schemas.error_responses({404: "no such job", 409: "the job already finished"})},
)  # fmt: skip
def cancel_job(job_id: schemas.JobId, caller: auth.Caller = Depends(cancel_writer), session: Session = Depends(database)):
    """Cancel queued runs now; running runs stop at their next heartbeat (about a second).

    With ARENA_AUTH=keys a key cancels its own jobs (and jobs stored without a key), not another key's."""
    if caller.key_id is not None:
        owner = job_or_404(session, job_id).api_key_id
        if owner is not None and owner != caller.key_id:
            raise HTTPException(status_code=403, detail=f"job {job_id} was submitted with another API key")
    job, already_finished = queries.cancel_job(session, job_id)
    if job is None:
        raise not_found("job", job_id)
    if already_finished:
        raise HTTPException(status_code=409, detail=f"job {job_id} already finished ({job.status})")
    counts = queries.run_counts(session, [job_id])[job_id]
    return schemas.JobSummary.model_validate({**_job_fields(job), "run_counts": counts})


@router.get("/jobs/{job_id}/comparison", response_model=schemas.Comparison, tags=["results"], responses=NO_JOB)
def job_comparison(job_id: schemas.JobId, session: Session = Depends(database)):
    """Each method's statistics on this job (distinct seeds; duplicates counted once) and every pair of
    methods head to head (one Holm family), with a verdict per lens in words."""
    job = job_or_404(session, job_id)
    info = task_info(job.task)
    _freeze_heap_once()
    result = stats.comparison(queries.job_stat_runs(session, job_id))
    return _json(
        schemas.Comparison, job_id=job_id, task=job.task, status=job.status, score_name=info.score_name,
        higher_is_better=info.higher_is_better, **result,
    )  # fmt: skip


def _json(model, **fields) -> Response:
    """Validate once against the response model and send the JSON (the same bytes a cache can keep)."""
    return Response(content=model.model_validate(fields).model_dump_json(), media_type="application/json")


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


@router.get("/leaderboard", response_model=schemas.Leaderboard, tags=["results"], responses=schemas.error_responses({404: "no such task"}))
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
        _freeze_heap_once()
        # Columns per configuration (numpy arrays, no dict per run): the cold path at 100,000 runs.
        tables = queries.task_run_tables(session, info.name)
        body, best = stats.leaderboard(tables, queries.configurations(session, info.name, sorted(tables)))
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
_heap_frozen = False


def _freeze_heap_once() -> None:
    """Before the first statistics: import scipy and statsmodels (deferred so that start-up stays
    light), collect, and move every object alive to the garbage collector's permanent generation
    (`gc.freeze`). Those modules bring ~150,000 long-lived objects; without this, each full collection
    walks them all, and one lands every few cold leaderboards, adding ~0.1-0.3 s to that request."""
    global _heap_frozen
    if _heap_frozen:
        return
    import scipy.stats  # noqa: F401
    import statsmodels.stats.proportion  # noqa: F401

    gc.collect()
    gc.freeze()
    _heap_frozen = True


@router.get("/summary", response_model=schemas.Summary, tags=["results"], responses=schemas.error_responses({404: "a job in `jobs` does not exist"}))
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
        raise schemas.invalid_at(("query", "jobs"), f"jobs must be comma-separated job ids, got {jobs!r}") from None
    if not job_ids or len(job_ids) > MAX_SUMMARY_JOBS:
        raise schemas.invalid_at(("query", "jobs"), f"jobs needs 1 to {MAX_SUMMARY_JOBS} job ids; got {len(job_ids)}")
    if not all(1 <= job_id <= schemas.MAX_ID for job_id in job_ids):
        raise schemas.invalid_at(("query", "jobs"), f"job ids are from 1 to {schemas.MAX_ID}")
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


@router.get("/health", response_model=schemas.Health, tags=["service"],
            responses={503: {"model": schemas.Health, "description": "the database or the broker is unreachable"}})
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

    settings = get_settings()
    reads = READ_ERRORS if settings.reads == "keys" else None  # declared where the middleware below answers it
    application.include_router(router, responses=reads)
    application.include_router(dashboard.router, responses=reads)
    application.add_exception_handler(RequestValidationError, validation_error)
    if settings.reads == "keys":  # only then: a middleware costs every request something
        application.middleware("http")(_read_access)
    if settings.cors_origin_list:  # closed by default: no CORS headers at all
        from fastapi.middleware.cors import CORSMiddleware

        application.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"], max_age=600,
        )  # fmt: skip
    return application


async def _read_access(request: Request, call_next):
    """ARENA_READS=keys: every API read needs a key too (the dashboard's pages and /health stay open)."""
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    settings = get_settings()
    if request.method in ("GET", "HEAD") and not auth.read_is_open(request.url.path):
        try:
            await run_in_threadpool(auth.authenticate, request, settings)
        except HTTPException as error:
            return JSONResponse(status_code=error.status_code, content={"detail": error.detail}, headers=error.headers)
    return await call_next(request)


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
