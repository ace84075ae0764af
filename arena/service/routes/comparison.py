"""GET /jobs/{id}/comparison: the methods of one job head to head, cached until the job's runs change."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from arena.service import schemas
from arena.service.deps import NO_JOB, database, json_response, not_found
from arena.service.headline import job_headline
from arena.service.results import comparison_cache, computing, freeze_heap_once, remember
from arena.store import queries
from arena.tasks import task_info
from arena.verdict import report as stats

router = APIRouter()

COMPARISON_CACHE_SIZE = 64  # jobs' comparisons kept (each tens of kB): memory stays bounded under load


@router.get("/jobs/{job_id}/comparison", response_model=schemas.Comparison, tags=["results"], responses=NO_JOB)
def job_comparison(job_id: schemas.JobId, session: Session = Depends(database)):
    """Each method's statistics on this job (distinct seeds; duplicates counted once) and every pair of
    methods head to head (one Holm family), with a verdict per lens in words."""
    job = queries.get_job_light(session, job_id)
    if job is None:
        raise not_found("job", job_id)
    # Exact until one of the job's runs changes state: every finished run bumps its task's version, and a
    # cancel changes the job's counts and status.
    counts = queries.run_counts(session, [job_id])[job_id]
    key = (job_id, queries.leaderboard_version(session, job.task), job.status, tuple(sorted(counts.items())))
    cached = comparison_cache.get(key)
    if cached is not None:
        return cached
    with computing:  # one computation at a time: a burst of cold requests for one job computes once
        cached = comparison_cache.get(key)
        if cached is not None:
            return cached
        info = task_info(job.task)
        freeze_heap_once()
        result = stats.comparison(queries.job_stat_runs(session, job_id))
        response = json_response(
            schemas.Comparison, job_id=job_id, task=job.task, status=job.status, score_name=info.score_name,
            higher_is_better=info.higher_is_better, headline=job_headline({"task": job.task, **result}), **result,
        )  # fmt: skip
        for earlier in [k for k in comparison_cache if k[0] == job_id]:
            comparison_cache.pop(earlier)  # a job's older comparisons are never asked for again
        remember(comparison_cache, key, response, COMPARISON_CACHE_SIZE)
        return response
