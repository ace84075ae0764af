"""Jobs: submit (POST /jobs, with quotas and Idempotency-Key), list, read, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from arena.methods import label
from arena.service import auth, schemas
from arena.service.deps import (
    NO_JOB, WRITE_ERRORS, cancel_writer, database, job_or_404, json_response, not_found, settings_dependency, submit_writer,
)  # fmt: skip
from arena.service.guard import WriterRoute
from arena.store import queries
from arena.store.db import session_scope
from arena.store.settings import Settings
from arena.tasks import task_info

router = APIRouter(route_class=WriterRoute)  # a write's key is checked before its body is read

IDEMPOTENCY_HOURS = 24


@router.post(
    "/jobs", status_code=202, response_model=schemas.JobCreated, tags=["jobs"],
    responses={**WRITE_ERRORS, 200: {"model": schemas.JobCreated, "description": "the job stored earlier under this Idempotency-Key"},
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
    # After the commit, so a worker always finds the run it is sent; batched where allowed. A broker that does
    # not answer delays no one: what was not sent is said in the answer, and the reconciler sends it.
    sent = send_job_runs(to_send, supervised=task_info(body.task).kind == "supervised")
    created.deferred_runs = len(to_send) - sent
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
    return json_response(
        schemas.JobPage, total=total, limit=limit, offset=offset,
        jobs=[{**job_fields(job), "run_counts": counts[job.id]} for job in jobs],
    )


def job_fields(job) -> dict:
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
    summary = schemas.JobSummary.model_validate({**job_fields(job), "run_counts": counts}).model_dump_json()
    rows = _RUN_LIST.dump_json(_RUN_LIST.validate_python([{**run._mapping, "label": label(run.method, run.algorithm)} for run in runs]))
    request = queries.job_request_json(session, job_id) or "{}"
    body = f'{summary[:-1]},"request":{request},"runs":'.encode() + rows + b"}"
    return Response(content=body, media_type="application/json")


_RUN_LIST = TypeAdapter(list[schemas.RunSummary])


@router.post(
    "/jobs/{job_id}/cancel", response_model=schemas.JobSummary, tags=["jobs"],
    responses={**WRITE_ERRORS, **schemas.error_responses({404: "no such job", 409: "the job already finished"})},
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
    return schemas.JobSummary.model_validate({**job_fields(job), "run_counts": counts})
