"""GET /summary: across tasks, each method's best configuration per task, cached per task versions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from arena.service import schemas
from arena.service.headline import with_task_headlines
from arena.service.deps import database, json_response, not_found
from arena.service.results import remember, summary_cache, task_results
from arena.store import queries
from arena.tasks import TASKS
from arena.verdict import report as stats

router = APIRouter()

MAX_SUMMARY_JOBS = 1000  # job ids one GET /summary?jobs= may name
JOB_IDS_PATTERN = r"^ *[1-9][0-9]{0,9} *(, *[1-9][0-9]{0,9} *)*,? *$"  # the schema says what is accepted: `jobs=` is not


@router.get("/summary", response_model=schemas.Summary, tags=["results"], responses=schemas.error_responses({404: "a job in `jobs` does not exist"}))
def get_summary(
    jobs: str | None = Query(
        None, pattern=JOB_IDS_PATTERN, max_length=12 * MAX_SUMMARY_JOBS,
        description=f"comma-separated job ids (1 to {MAX_SUMMARY_JOBS}): only their runs (default: every task's leaderboard)",
    ),
    session: Session = Depends(database),
):
    """Across tasks, each method's best configuration per task: tasks won / lost / undecided per lens
    (one Holm family across all tasks), and performance profiles of ERT (Dolan and More) as data."""
    if jobs is not None:
        return _jobs_summary(session, jobs)
    versions = queries.task_versions(session)
    key = tuple(sorted(versions.items()))
    cached = summary_cache.get(key)
    if cached is not None:
        return cached
    best_by_task = {}
    for task, version in sorted(versions.items()):
        info = TASKS.get(task)
        if info is not None:
            best_by_task[task] = task_results(session, info, version).best
    response = json_response(schemas.Summary, **with_task_headlines(stats.summary(best_by_task)))
    remember(summary_cache, key, response)
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
    cached = summary_cache.get(key)
    if cached is not None:
        return cached
    by_task: dict[str, list[dict]] = {}
    for run in queries.jobs_stat_runs(session, job_ids):
        by_task.setdefault(run.pop("task"), []).append(run)
    best_by_task = {task: stats.best_runs(runs) for task, runs in sorted(by_task.items())}
    response = json_response(schemas.Summary, **with_task_headlines(stats.summary(best_by_task)), jobs=job_ids)
    remember(summary_cache, key, response)
    return response
