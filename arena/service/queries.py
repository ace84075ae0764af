"""All database access, in one place.

Every state change of a run is a conditional update, so concurrent workers, reconcilers and API
processes can race without harm:

- claim:     queued -> running, attempts + 1 (or take over a running run whose heartbeat went stale)
- heartbeat: only while running under the same attempt (otherwise the worker lost the run and stops)
- record:    running (same attempt) -> succeeded/failed/cancelled; a second completion changes nothing
- requeue:   running with a stale heartbeat -> queued (the reconciler then re-sends it)

Transactions that touch a job and its runs lock the job row first (PostgreSQL; SQLite serialises
writers anyway), always in that order, so they cannot deadlock and the job's status stays in step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from arena.service.tables import (
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Job,
    LeaderboardVersion,
    Run,
    RunOutput,
    utcnow,
)

RESULT_FIELDS = (
    "score",
    "solved",
    "evaluations_to_solve",
    "seconds_to_solve",
    "evaluations",
    "seconds",
    "cpu_seconds",
    "cpu_seconds_to_solve",
    "stopped",
    "metrics",
    "extra_parameters",
)


def settings_hash(spec: dict) -> str:
    """One configuration (task, method, architecture, settings, budget, options), whatever the seed."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- jobs -----------------------------------------------------------------------------------------


def create_job(session: Session, task: str, seeds: list[int], specs: dict[str, dict], request: dict) -> Job:
    """A job and one queued run per (method, seed). `specs` maps each method to its RunSpec dict."""
    now = utcnow()
    job = Job(task=task, status=QUEUED, methods=list(specs), seeds=list(seeds), request=request, created_at=now)
    session.add(job)
    for method, spec in specs.items():
        digest = settings_hash(spec)
        for seed in seeds:
            job.runs.append(
                Run(task=task, method=method, algorithm=spec.get("algorithm"), seed=seed, spec=spec, settings_hash=digest, status=QUEUED, attempts=0, created_at=now, sent_at=now)
            )
    session.flush()
    return job


def _lock_job(session: Session, job_id: int) -> Job | None:
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).one_or_none()


def get_job(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id)


def list_jobs(session: Session, task: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[Job], int]:
    """Newest first, with the total that matches the filters."""
    query = select(Job)
    if task is not None:
        query = query.where(Job.task == task)
    if status is not None:
        query = query.where(Job.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    jobs = session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)).all()
    return list(jobs), total or 0


def run_counts(session: Session, job_ids: list[int]) -> dict[int, dict[str, int]]:
    """{job_id: {status: count}} for a page of jobs, in one query."""
    counts: dict[int, dict[str, int]] = {job_id: {} for job_id in job_ids}
    if not job_ids:
        return counts
    rows = session.execute(
        select(Run.job_id, Run.status, func.count()).where(Run.job_id.in_(job_ids)).group_by(Run.job_id, Run.status)
    )
    for job_id, status, count in rows:
        counts[job_id][status] = count
    return counts


def job_runs(session: Session, job_id: int) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.job_id == job_id).order_by(Run.id)))


def cancel_job(session: Session, job_id: int) -> tuple[Job | None, bool]:
    """Set the job's cancel flag and cancel its queued runs; running ones stop at their next heartbeat.

    Returns (job, whether it was already finished); (None, False) when it does not exist. A finished
    job is left unchanged.
    """
    job = _lock_job(session, job_id)
    if job is None or job.status in FINISHED:
        return job, job is not None
    now = utcnow()
    job.cancel_requested = True
    session.execute(
        update(Run)
        .where(Run.job_id == job_id, Run.status == QUEUED)
        .values(status=CANCELLED, stopped="cancelled", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    _finish_job_if_done(session, job)
    bump_leaderboard(session, job.task)
    return job, False


def _finish_job_if_done(session: Session, job: Job) -> None:
    """Called with the job row locked: settle the job's status once no run is left to do."""
    counts = dict(session.execute(select(Run.status, func.count()).where(Run.job_id == job.id).group_by(Run.status)).all())
    if counts.get(QUEUED, 0) or counts.get(RUNNING, 0):
        if job.status == QUEUED and counts.get(RUNNING, 0):
            job.status = RUNNING
        return
    # Read the flag again inside this transaction: on SQLite the job row was read before it began.
    if session.scalar(select(Job.cancel_requested).where(Job.id == job.id)):
        job.status = CANCELLED
    elif counts.get(FAILED, 0):
        job.status = FAILED
    else:
        job.status = SUCCEEDED
    job.finished_at = utcnow()


# --- runs -----------------------------------------------------------------------------------------


def get_run(session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id)


def get_run_output(session: Session, run_id: int) -> RunOutput | None:
    return session.get(RunOutput, run_id)


@dataclass(frozen=True)
class Claim:
    run_id: int
    job_id: int
    attempt: int
    method: str
    seed: int
    spec: dict


def claim_run(session: Session, run_id: int, worker: str, stale_before: datetime, max_attempts: int) -> Claim | None:
    """Take a run for this worker: queued -> running with attempts + 1, or None if someone else has it.

    A running run whose heartbeat is older than `stale_before` is taken over too (its worker died and
    the broker redelivered the message). A run that used up its attempts is left to the reconciler.
    """
    job_id = session.scalar(select(Run.job_id).where(Run.id == run_id))
    if job_id is None:
        return None
    job = _lock_job(session, job_id)
    if job.cancel_requested:
        return None  # queued runs were cancelled with the job; a stale running one is the reconciler's
    now = utcnow()
    claimable = (Run.status == QUEUED) | ((Run.status == RUNNING) & (Run.heartbeat_at < stale_before))
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, claimable, Run.attempts < max_attempts)
        .values(status=RUNNING, attempts=Run.attempts + 1, started_at=now, heartbeat_at=now, worker=worker)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    run = session.execute(select(Run.attempts, Run.method, Run.seed, Run.spec).where(Run.id == run_id)).one()
    if job.status == QUEUED:
        job.status = RUNNING
    return Claim(run_id, job_id, run.attempts, run.method, run.seed, run.spec)


def heartbeat(session: Session, run_id: int, attempt: int, progress=None) -> tuple[bool, bool]:
    """Mark the run alive and store its progress. Returns (still ours, cancel requested)."""
    values = {"heartbeat_at": utcnow()}
    if progress is not None:
        values.update(progress_evaluations=progress.evaluations, progress_seconds=progress.seconds, progress_score=progress.score)
    result = session.execute(
        update(Run).where(Run.id == run_id, Run.status == RUNNING, Run.attempts == attempt).values(**values).execution_options(synchronize_session=False)
    )
    owned = result.rowcount == 1
    cancel = bool(session.scalar(select(Job.cancel_requested).join(Run, Run.job_id == Job.id).where(Run.id == run_id)))
    return owned, cancel


def record_result(
    session: Session,
    run_id: int,
    attempt: int,
    status: str,
    result: dict | None = None,
    error: str | None = None,
    library_versions: dict | None = None,
) -> bool:
    """Finish a run in one transaction: its result, curve and weights, and its job's status.

    Only the attempt that owns the run may finish it, once: a second completion (a redelivered
    message, a worker that lost its claim) matches no row and changes nothing. Returns whether it
    recorded.
    """
    assert status in FINISHED
    job_id = session.scalar(select(Run.job_id).where(Run.id == run_id))
    if job_id is None:
        return False
    job = _lock_job(session, job_id)
    values: dict = {"status": status, "finished_at": utcnow(), "error": error, "library_versions": library_versions}
    if result is not None:
        values.update({name: result.get(name) for name in RESULT_FIELDS})
        values.update(progress_evaluations=result.get("evaluations"), progress_seconds=result.get("seconds"), progress_score=result.get("score"))
    updated = session.execute(
        update(Run).where(Run.id == run_id, Run.status == RUNNING, Run.attempts == attempt).values(**values).execution_options(synchronize_session=False)
    )
    if updated.rowcount != 1:
        return False
    if result is not None:
        session.add(RunOutput(run_id=run_id, curve=result.get("curve") or [], weights=result.get("weights") or []))
    session.flush()
    _finish_job_if_done(session, job)
    bump_leaderboard(session, job.task)
    return True


# --- the reconciler -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaleRun:
    run_id: int
    job_id: int
    method: str
    attempts: int
    budget_seconds: float | None
    cancel_requested: bool


def stale_runs(session: Session, stale_before: datetime, limit: int = 100) -> list[StaleRun]:
    """Running runs whose worker stopped heartbeating."""
    rows = session.execute(
        select(Run.id, Run.job_id, Run.method, Run.attempts, Run.spec, Job.cancel_requested)
        .join(Job, Job.id == Run.job_id)
        .where(Run.status == RUNNING, Run.heartbeat_at < stale_before)
        .order_by(Run.id)
        .limit(limit)
    )
    return [StaleRun(r.id, r.job_id, r.method, r.attempts, _budget_seconds(r.spec), bool(r.cancel_requested)) for r in rows]


def requeue_stale_run(session: Session, run_id: int, attempt: int, stale_before: datetime) -> bool:
    """running (stale, same attempt) -> queued. Only one reconciler wins; only the winner re-sends."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RUNNING, Run.attempts == attempt, Run.heartbeat_at < stale_before)
        .values(status=QUEUED, sent_at=utcnow(), worker=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def finish_stale_run(session: Session, run_id: int, attempt: int, stale_before: datetime, status: str, error: str | None) -> bool:
    """A stale run that must not be retried (its job was cancelled, or it used up its attempts)."""
    still_stale = session.scalar(
        select(func.count()).where(Run.id == run_id, Run.status == RUNNING, Run.attempts == attempt, Run.heartbeat_at < stale_before)
    )
    if not still_stale:
        return False
    return record_result(session, run_id, attempt, status, error=error)


def lost_queued_runs(session: Session, methods: list[str], sent_before: datetime, limit: int = 100) -> list[tuple[int, str, float | None]]:
    """Queued runs of these methods whose message was sent before `sent_before`: (id, method, budget seconds)."""
    if not methods:
        return []
    rows = session.execute(
        select(Run.id, Run.method, Run.spec)
        .where(Run.status == QUEUED, Run.method.in_(methods), Run.sent_at < sent_before)
        .order_by(Run.id)
        .limit(limit)
    )
    return [(r.id, r.method, _budget_seconds(r.spec)) for r in rows]


def mark_resent(session: Session, run_id: int, sent_before: datetime) -> bool:
    """queued and not re-sent since `sent_before` -> stamp it; only the winner re-sends."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == QUEUED, Run.sent_at < sent_before)
        .values(sent_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _budget_seconds(spec: dict | None) -> float | None:
    return ((spec or {}).get("budget") or {}).get("seconds")


# --- the leaderboard ------------------------------------------------------------------------------


# The light columns every statistic needs (never `spec`: it can be large).
STAT_COLUMNS = (
    Run.id, Run.method, Run.algorithm, Run.settings_hash, Run.seed, Run.status, Run.solved, Run.evaluations, Run.seconds,
    Run.cpu_seconds, Run.evaluations_to_solve, Run.seconds_to_solve, Run.cpu_seconds_to_solve,
)  # fmt: skip
STAT_NAMES = tuple(column.key for column in STAT_COLUMNS)


def _stat_rows(session: Session, *where) -> list[dict]:
    rows = session.execute(select(*STAT_COLUMNS).where(Run.status.in_(FINISHED), *where).order_by(Run.id))
    return [dict(zip(STAT_NAMES, row)) for row in rows.tuples()]


def task_runs(session: Session, task: str) -> list[dict]:
    """Every finished run of a task, light columns only (see `STAT_COLUMNS`), by id."""
    return _stat_rows(session, Run.task == task)


def job_stat_runs(session: Session, job_id: int) -> list[dict]:
    """A job's finished runs, light columns only."""
    return _stat_rows(session, Run.job_id == job_id)


def configurations(session: Session, task: str, keys) -> dict[str, dict]:
    """{settings hash: RunSpec dict} for (method, settings hash) pairs: one indexed single-row read each."""
    specs = {}
    for method, digest in keys:
        specs[digest] = session.scalar(
            select(Run.spec).where(Run.task == task, Run.method == method, Run.settings_hash == digest).limit(1)
        )
    return specs


def task_versions(session: Session) -> dict[str, int]:
    """{task: leaderboard version} of every task on which a run has finished."""
    return dict(session.execute(select(LeaderboardVersion.task, LeaderboardVersion.version).where(LeaderboardVersion.version > 0)).tuples().all())


def job_tasks(session: Session, job_ids: list[int]) -> dict[int, str]:
    """{job id: task} of the jobs that exist."""
    return dict(session.execute(select(Job.id, Job.task).where(Job.id.in_(job_ids))).tuples().all())


def jobs_stat_runs(session: Session, job_ids: list[int]) -> list[dict]:
    """The finished runs of several jobs, light columns plus the task."""
    rows = session.execute(select(Run.task, *STAT_COLUMNS).where(Run.status.in_(FINISHED), Run.job_id.in_(job_ids)).order_by(Run.id))
    return [dict(zip(("task",) + STAT_NAMES, row)) for row in rows.tuples()]


def leaderboard_version(session: Session, task: str) -> int:
    """Changes whenever a run of the task finishes (0: none has yet)."""
    return session.scalar(select(LeaderboardVersion.version).where(LeaderboardVersion.task == task)) or 0


def bump_leaderboard(session: Session, task: str) -> None:
    """Called in the transaction that finishes runs of `task` (an upsert: the first finish creates the row)."""
    dialect = session.bind.dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        session.execute(
            insert(LeaderboardVersion)
            .values(task=task, version=1)
            .on_conflict_do_update(index_elements=["task"], set_={"version": LeaderboardVersion.version + 1})
        )
        return
    bumped = session.execute(update(LeaderboardVersion).where(LeaderboardVersion.task == task).values(version=LeaderboardVersion.version + 1))
    if bumped.rowcount == 0:
        session.add(LeaderboardVersion(task=task, version=1))
        session.flush()


def seconds_ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
