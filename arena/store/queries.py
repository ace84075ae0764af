"""All database access, in one place.

Every state change of a run is a conditional update, so concurrent workers, reconcilers and API
processes can race without harm:

- claim:     queued -> running, attempts + 1 (or take over a running run whose heartbeat went stale)
- heartbeat: only while running under the same attempt (otherwise the worker lost the run and stops)
- record:    running (same attempt) -> succeeded/failed/cancelled; a second completion changes nothing
- requeue:   running with a stale heartbeat -> queued (the reconciler then re-sends it)

Transactions that touch a job and its runs lock the job row first (PostgreSQL; SQLite serialises
writers anyway), always in that order, so they cannot deadlock and the job's status stays in step.

A run row's `spec` holds its task options (a car track: up to 10,000 points) as a reference to their one
stored copy (`stored_spec`); whatever executes or shows a run reads it whole (`full_spec`, done here by
`claim_run`, `get_run`, `configurations` and `export_runs`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Text, cast, func, insert, select, update
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from arena.store.tables import (
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    ApiKey,
    Job,
    LeaderboardVersion,
    Run,
    RunOutput,
    StoredTaskOptions,
    utcnow,
)

if TYPE_CHECKING:
    from arena.verdict.table import RunTable  # annotations only: imported where used

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


def content_hash(data) -> str:
    """SHA-256 of canonical JSON: equal for equal content, whatever the key order."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def settings_hash(spec: dict) -> str:
    """One configuration (task, method, architecture, settings, budget, options), whatever the seed.

    Always of the whole spec (task options included, never their reference): a run stored with its
    options referenced has the hash it had when every run held them inline."""
    return content_hash(spec)


def batched_settings_hash(spec: dict) -> str:
    """The configuration of a run trained in a batch of seeds (its result's `metrics["batched"]` > 1).

    A batched run's seconds are its share of the batch's time, so it is a configuration of its own:
    the leaderboard and the verdict group runs by `settings_hash`, and batched and unbatched timings
    are never pooled (a run of the same spec and seed run alone keeps `settings_hash(spec)`).
    """
    return settings_hash({**spec, "batched": True})


# --- task options, stored once (see tables.StoredTaskOptions) ------------------------------------------

OPTIONS_REF = "ref"  # a run row's spec["task_options"] == {"ref": hash}: not options a task accepts, so never run by mistake
LOADED_OPTIONS_LIMIT = 8  # stored options `full_spec` keeps at once for a caller reading many runs


def options_ref(spec: dict | None) -> str | None:
    """The hash a stored spec references its task options by, or None when it holds them inline (empty)."""
    options = (spec or {}).get("task_options")
    if isinstance(options, dict) and len(options) == 1 and isinstance(options.get(OPTIONS_REF), str):
        return options[OPTIONS_REF]
    return None


def store_task_options(session: Session, options: dict) -> str:
    """Store task options once (keyed by their content: the same track twice is one row); returns the key."""
    digest = content_hash(options)
    if session.scalar(select(func.count()).where(StoredTaskOptions.hash == digest)) == 0:
        row = {"hash": digest, "options": options, "created_at": utcnow()}
        dialect_insert = _dialect_insert(session)
        if dialect_insert is None:
            session.execute(insert(StoredTaskOptions).values(**row))
        else:  # another process may store the same options at the same moment
            session.execute(dialect_insert(StoredTaskOptions).values(**row).on_conflict_do_nothing(index_elements=["hash"]))
    return digest


def stored_spec(session: Session, spec: dict) -> dict:
    """What a run row keeps of a whole RunSpec dict: its task options, if any, stored once and referenced."""
    if not spec.get("task_options"):
        return spec
    return {**spec, "task_options": {OPTIONS_REF: store_task_options(session, spec["task_options"])}}


def full_spec(session: Session, spec: dict | None, loaded: dict[str, dict] | None = None) -> dict | None:
    """A run's whole spec from its row's: referenced task options read back. `loaded` (hash -> options)
    saves reading the same options again across many runs; it is filled as options are read."""
    digest = options_ref(spec)
    if digest is None:
        return spec
    options = loaded.get(digest) if loaded is not None else None
    if options is None:
        options = session.scalar(select(StoredTaskOptions.options).where(StoredTaskOptions.hash == digest))
        if options is None:
            raise LookupError(f"the task options {digest} a run references are not stored")
        if loaded is not None:
            loaded[digest] = options
            while len(loaded) > LOADED_OPTIONS_LIMIT:  # runs come in order of id: a job's runs are together
                loaded.pop(next(iter(loaded)))
    return {**spec, "task_options": options}


# --- jobs -----------------------------------------------------------------------------------------


def create_job(session: Session, task: str, seeds: list[int], specs: dict[str, dict], request: dict) -> Job:
    """A job and one queued run per (method, seed). `specs` maps each method to its whole RunSpec dict;
    its task options (a track) are stored once, not once per run (`stored_spec`)."""
    now = utcnow()
    job = Job(task=task, status=QUEUED, methods=list(specs), seeds=list(seeds), request=request, created_at=now)
    session.add(job)
    for method, spec in specs.items():
        digest = settings_hash(spec)  # of the whole spec, as every run of this configuration
        row_spec = stored_spec(session, spec)
        for seed in seeds:
            job.runs.append(
                Run(task=task, method=method, algorithm=spec.get("algorithm"), seed=seed, spec=row_spec, settings_hash=digest, status=QUEUED, attempts=0, created_at=now, sent_at=now)
            )
    session.flush()
    return job


def _lock_job(session: Session, job_id: int) -> Job | None:
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).one_or_none()


# What a run's claim and record read of its job: never `request`, which may hold a 10,000-point track.
JOB_STATUS_COLUMNS = (Job.id, Job.task, Job.status, Job.cancel_requested, Job.finished_at)


def _lock_job_of_run(session: Session, run_id: int) -> Job | None:
    """The job of a run, locked, with the columns a status change needs: one round trip where reading the
    run's job id and then locking its job were two (each a wake-up of the database process, which is what
    a round trip costs on a loaded machine)."""
    return session.scalars(
        select(Job).join(Run, Run.job_id == Job.id).where(Run.id == run_id).options(load_only(*JOB_STATUS_COLUMNS)).with_for_update(of=Job)
    ).one_or_none()


def get_job(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id)


# What listings read: never `Job.request` (it may hold a 10,000-point track) nor `Run.spec` (not needed),
# nor a run's curve or weights (run_outputs).
JOB_LIGHT_COLUMNS = (Job.id, Job.task, Job.status, Job.created_at, Job.finished_at, Job.methods, Job.seeds, Job.cancel_requested)
RUN_LIGHT_COLUMNS = tuple(
    getattr(Run, name) for name in (
        "id", "job_id", "task", "method", "algorithm", "seed", "status", "attempts", "created_at", "started_at", "heartbeat_at",
        "finished_at", "progress_evaluations", "progress_seconds", "progress_score", "score", "solved", "evaluations_to_solve",
        "seconds_to_solve", "evaluations", "seconds", "cpu_seconds", "cpu_seconds_to_solve", "stopped", "error",
    )
)  # fmt: skip


def list_jobs(session: Session, task: str | None = None, status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list, int]:
    """Newest first, with the total that matches the filters: rows of JOB_LIGHT_COLUMNS (attribute access
    as on a Job), never the request."""
    conditions = []
    if task is not None:
        conditions.append(Job.task == task)
    if status is not None:
        conditions.append(Job.status == status)
    total = session.scalar(select(func.count(Job.id)).where(*conditions))
    page = select(*JOB_LIGHT_COLUMNS).where(*conditions).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)
    return list(session.execute(page)), total or 0


def get_job_light(session: Session, job_id: int):
    """A job's JOB_LIGHT_COLUMNS row (no request), or None."""
    return session.execute(select(*JOB_LIGHT_COLUMNS).where(Job.id == job_id)).one_or_none()


def job_request_json(session: Session, job_id: int) -> str | None:
    """The job's request as the JSON text stored (not parsed: it may hold a 10,000-point track, and the
    API sends it as it is)."""
    return session.scalar(select(cast(Job.request, Text)).where(Job.id == job_id))


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


def job_runs(session: Session, job_id: int) -> list:
    """A job's runs as rows of RUN_LIGHT_COLUMNS (attribute access as on a Run): no spec, no output."""
    return list(session.execute(select(*RUN_LIGHT_COLUMNS).where(Run.job_id == job_id).order_by(Run.id)))


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
    """The run, its `spec` whole (task options read back). The row keeps its reference: the whole spec is
    set as the loaded value, not as a change the session would write."""
    run = session.get(Run, run_id)
    if run is not None:
        whole = full_spec(session, run.spec)
        if whole is not run.spec:
            set_committed_value(run, "spec", whole)
    return run


def get_run_output(session: Session, run_id: int) -> RunOutput | None:
    return session.get(RunOutput, run_id)


@dataclass(frozen=True)
class Claim:
    run_id: int
    job_id: int
    attempt: int
    method: str
    seed: int
    spec: dict  # whole: what the run executes (RunSpec.from_dict)


def claim_run(session: Session, run_id: int, worker: str, stale_before: datetime, max_attempts: int) -> Claim | None:
    """Take a run for this worker: queued -> running with attempts + 1, or None if someone else has it.

    A running run whose heartbeat is older than `stale_before` is taken over too (its worker died and
    the broker redelivered the message). A run that used up its attempts is left to the reconciler.
    """
    job = _lock_job_of_run(session, run_id)
    if job is None:
        return None
    if job.cancel_requested:
        return None  # queued runs were cancelled with the job; a stale running one is the reconciler's
    now = utcnow()
    claimable = (Run.status == QUEUED) | ((Run.status == RUNNING) & (Run.heartbeat_at < stale_before))
    run = session.execute(
        update(Run)
        .where(Run.id == run_id, claimable, Run.attempts < max_attempts)
        .values(status=RUNNING, attempts=Run.attempts + 1, started_at=now, heartbeat_at=now, worker=worker)
        .returning(Run.attempts, Run.method, Run.seed, Run.spec)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if run is None:
        return None
    if job.status == QUEUED:
        job.status = RUNNING
    return Claim(run_id, job.id, run.attempts, run.method, run.seed, full_spec(session, run.spec))


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
    settings_hash: str | None = None,
) -> bool:
    """Finish a run in one transaction: its result, curve and weights, and its job's status.

    Only the attempt that owns the run may finish it, once: a second completion (a redelivered
    message, a worker that lost its claim) matches no row and changes nothing. Returns whether it
    recorded. `settings_hash`, when given, replaces the run's configuration (a batched run: see
    `batched_settings_hash`).
    """
    assert status in FINISHED
    job = _lock_job_of_run(session, run_id)
    if job is None:
        return False
    values: dict = {"status": status, "finished_at": utcnow(), "error": error, "library_versions": library_versions}
    if settings_hash is not None:
        values["settings_hash"] = settings_hash
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
    algorithm: str | None = None  # with the task, what the reconciler needs to re-send a batch as a batch
    task: str | None = None


def stale_runs(session: Session, stale_before: datetime, limit: int = 100) -> list[StaleRun]:
    """Running runs whose worker stopped heartbeating."""
    rows = session.execute(
        select(Run.id, Run.job_id, Run.method, Run.attempts, Run.spec, Job.cancel_requested, Run.algorithm, Job.task)
        .join(Job, Job.id == Run.job_id)
        .where(Run.status == RUNNING, Run.heartbeat_at < stale_before)
        .order_by(Run.id)
        .limit(limit)
    )
    return [StaleRun(r.id, r.job_id, r.method, r.attempts, _budget_seconds(r.spec), bool(r.cancel_requested), r.algorithm, r.task) for r in rows]


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


# --- API keys, quotas and idempotency (see arena/service/auth.py) -----------------------------------


def create_api_key(session: Session, name: str, key_hash: str, prefix: str, max_concurrent_runs: int | None = None, max_queued_cpu_seconds: float | None = None) -> ApiKey:
    key = ApiKey(name=name, key_hash=key_hash, prefix=prefix, created_at=utcnow(), max_concurrent_runs=max_concurrent_runs, max_queued_cpu_seconds=max_queued_cpu_seconds)
    session.add(key)
    session.flush()
    return key


def api_key_named(session: Session, name: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.name == name)).one_or_none()


def api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, name: str) -> ApiKey | None:
    """Revoke a key by name (it stays listed, revoked); None if there is no such key."""
    key = api_key_named(session, name)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


def lock_api_key(session: Session, key_id: int) -> None:
    """Take the key's row for this transaction (a write: PostgreSQL locks the row, SQLite the database), so
    two submissions with one key check its quota one after the other."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()).execution_options(synchronize_session=False))


@dataclass(frozen=True)
class KeyUsage:
    runs: int  # queued or running
    cpu_seconds: float  # what those runs may still take
    shortest_run_seconds: float | None  # the cheapest of them: about when a place frees up


def key_usage(session: Session, key_id: int) -> KeyUsage:
    """The runs a key has queued or running and their CPU seconds (each job's per-method estimate)."""
    jobs = dict(
        session.execute(select(Job.id, Job.run_cpu_seconds).where(Job.api_key_id == key_id, Job.status.in_((QUEUED, RUNNING)))).tuples().all()
    )
    if not jobs:
        return KeyUsage(0, 0.0, None)
    rows = session.execute(
        select(Run.job_id, Run.method, func.count()).where(Run.job_id.in_(list(jobs)), Run.status.in_((QUEUED, RUNNING))).group_by(Run.job_id, Run.method)
    )
    runs, seconds, shortest = 0, 0.0, None
    for job_id, method, count in rows:
        each = float((jobs[job_id] or {}).get(method) or 0.0)
        runs += count
        seconds += each * count
        shortest = each if shortest is None else min(shortest, each)
    return KeyUsage(runs, seconds, shortest)


def create_owned_job(
    session: Session, task: str, seeds: list[int], specs: dict[str, dict], request: dict,
    api_key_id: int | None, run_cpu_seconds: dict[str, float], idempotency_key: str | None, request_hash: str | None,
) -> Job:  # fmt: skip
    """`create_job`, recording who submitted it, what each run may cost, and its idempotency key."""
    job = create_job(session, task, seeds, specs, request)
    job.api_key_id = api_key_id
    job.run_cpu_seconds = run_cpu_seconds
    job.idempotency_key = idempotency_key
    job.request_hash = request_hash
    session.flush()
    return job


def idempotent_job(session: Session, idempotency_key: str, since: datetime) -> Job | None:
    """The job stored under this (scoped) key since `since`; an older one gives its key up, so the key
    can be used again (the unique index holds one job per key)."""
    job = session.scalars(select(Job).where(Job.idempotency_key == idempotency_key)).one_or_none()
    if job is None:
        return None
    created = job.created_at if job.created_at.tzinfo is not None else job.created_at.replace(tzinfo=since.tzinfo)
    if created < since:
        job.idempotency_key = None
        session.flush()
        return None
    return job


def job_run_refs(session: Session, job_id: int) -> list[tuple[int, str, int]]:
    """(id, method, seed) of a job's runs, by id: what `POST /jobs` answers (no specs loaded)."""
    return list(session.execute(select(Run.id, Run.method, Run.seed).where(Run.job_id == job_id).order_by(Run.id)).tuples().all())


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


# What a RunTable is built from (`verdict.RunTable.ROW_FIELDS`, in that order): numbers only.
TABLE_COLUMNS = (
    Run.id, Run.seed, Run.solved, Run.evaluations, Run.seconds, Run.cpu_seconds, Run.evaluations_to_solve,
    Run.seconds_to_solve, Run.cpu_seconds_to_solve,
)  # fmt: skip


def task_run_tables(session: Session, task: str) -> dict[tuple[str, str], RunTable]:
    """A task's finished runs as columns: {(method, settings hash): RunTable of its succeeded runs,
    counting its failed and cancelled ones}, configurations with at least one succeeded run only,
    sorted by key. What the leaderboard reads (`task_runs` gives the same runs as dicts).

    One GROUP BY finds the configurations and their status counts (on ix_runs_leaderboard: (task,
    method, settings_hash, status)); then one indexed read per configuration fetches only numbers,
    straight into numpy: no Python dict (nor strings) per run, no ORDER BY (RunTable sorts by id).
    A run finishing between the two reads can show in one and not the other; its transaction also bumps
    the task's version, so the next request recomputes (the API caches under the version read first).
    """
    from arena.verdict.table import RunTable

    counts: dict[tuple[str, str], dict[str, int]] = {}
    grouped = select(Run.method, Run.settings_hash, Run.status, func.count()).where(Run.task == task, Run.status.in_(FINISHED))
    for method, digest, status, n in session.execute(grouped.group_by(Run.method, Run.settings_hash, Run.status)).tuples():
        counts.setdefault((method, digest), {})[status] = n
    connection = session.connection()  # Core: the ORM adds nothing to plain numbers
    tables = {}
    for (method, digest), by_status in sorted(counts.items()):
        if not by_status.get(SUCCEEDED):
            continue  # only failed or cancelled runs: nothing to rank
        result = connection.execute(
            select(*TABLE_COLUMNS).where(Run.task == task, Run.method == method, Run.settings_hash == digest, Run.status == SUCCEEDED)
        )
        try:
            # The driver's plain tuples of numbers (None, int, float, bool: numpy converts them all),
            # not SQLAlchemy Row objects: at 50,000 runs making Rows costs about as much as the read.
            rows = result.cursor.fetchall()
        finally:
            result.close()
        tables[(method, digest)] = RunTable.from_rows(rows, failed=by_status.get(FAILED, 0), cancelled=by_status.get(CANCELLED, 0))
    return tables


def configurations(session: Session, task: str, keys) -> dict[str, dict]:
    """{settings hash: whole RunSpec dict} for (method, settings hash) pairs: one indexed single-row read each.

    The spec's "algorithm" is the run's `algorithm` column (the same for every run of a configuration:
    it is part of the spec; runs from before specs named it had the column filled by migration 0003).
    """
    specs = {}
    for method, digest in keys:
        row = session.execute(
            select(Run.spec, Run.algorithm).where(Run.task == task, Run.method == method, Run.settings_hash == digest).limit(1)
        ).first()
        if row is None:
            specs[digest] = None
        else:
            spec, algorithm = row
            spec = full_spec(session, spec)
            specs[digest] = spec if spec is None or algorithm is None else {**spec, "algorithm": algorithm}
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


def _dialect_insert(session: Session):
    """The dialect's INSERT with ON CONFLICT (PostgreSQL, SQLite), or None."""
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        return None
    return dialect_insert


def bump_leaderboard(session: Session, task: str) -> None:
    """Called in the transaction that finishes runs of `task` (an upsert: the first finish creates the row)."""
    dialect_insert = _dialect_insert(session)
    if dialect_insert is not None:
        session.execute(
            dialect_insert(LeaderboardVersion)
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


# --- export (GET /runs.csv, /runs.jsonl; `arena export`) -----------------------------------------------

EXPORT_COLUMNS = (
    Run.id, Run.job_id, Run.task, Run.method, Run.algorithm, Run.seed, Run.status, Run.settings_hash, Run.spec,
    Run.score, Run.solved, Run.evaluations_to_solve, Run.seconds_to_solve, Run.cpu_seconds_to_solve, Run.evaluations,
    Run.seconds, Run.cpu_seconds, Run.stopped, Run.metrics, Run.attempts, Run.error, Run.created_at, Run.finished_at,
)  # fmt: skip


def export_runs(session: Session, task: str | None = None, status: str | None = None, job_id: int | None = None, curves: bool = False, batch: int = 500):
    """Runs matching the filters, by id, as dicts of EXPORT_COLUMNS (plus `curve` when asked), read in
    batches of `batch` rows so an export of any size streams in bounded memory. Each `spec` is whole
    (task options read back, each stored copy once per export)."""
    query = select(*EXPORT_COLUMNS)
    if curves:
        query = query.add_columns(RunOutput.curve).outerjoin(RunOutput, RunOutput.run_id == Run.id)
    if task is not None:
        query = query.where(Run.task == task)
    if status is not None:
        query = query.where(Run.status == status)
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    result = session.execute(query.order_by(Run.id).execution_options(yield_per=batch))
    loaded: dict[str, dict] = {}
    for row in result.mappings():
        record = dict(row)
        record["spec"] = full_spec(session, record["spec"], loaded)
        yield record


# --- studies (arena/studies; the routes in arena/service/routes/studies.py) -----------------------------


def create_study(session: Session, name: str, request: dict, axes: list, methods: list, cells: list[tuple[int, str, dict, Job]], api_key_id: int | None) -> "Study":
    """A study and its cells, each (position, task, point, the cell's job already created in this session)."""
    from arena.store.tables import Study, StudyCell

    study = Study(name=name, request=request, axes=axes, methods=methods, cancel_requested=False, api_key_id=api_key_id, created_at=utcnow())
    session.add(study)
    session.flush()
    for position, task, point, job in cells:
        session.add(StudyCell(study_id=study.id, position=position, job_id=job.id, task=task, point=point))
    session.flush()
    return study


def get_study(session: Session, study_id: int):
    from arena.store.tables import Study

    return session.get(Study, study_id)


def list_studies(session: Session, limit: int = 50, offset: int = 0) -> tuple[list, int]:
    from arena.store.tables import Study

    total = session.scalar(select(func.count(Study.id))) or 0
    rows = session.scalars(select(Study).order_by(Study.created_at.desc(), Study.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def study_cell_jobs(session: Session, study_ids: list[int]) -> dict[int, list[tuple]]:
    """{study id: [(position, task, point, job id, job status)]} in cell order, one query."""
    from arena.store.tables import StudyCell

    out: dict[int, list[tuple]] = {study_id: [] for study_id in study_ids}
    rows = session.execute(
        select(StudyCell.study_id, StudyCell.position, StudyCell.task, StudyCell.point, StudyCell.job_id, Job.status)
        .join(Job, Job.id == StudyCell.job_id).where(StudyCell.study_id.in_(study_ids)).order_by(StudyCell.study_id, StudyCell.position)
    )
    for study_id, position, task, point, job_id, status in rows.tuples():
        out[study_id].append((position, task, point, job_id, status))
    return out


def cancel_study(session: Session, study_id: int) -> list[int]:
    """Flag the study and cancel every unfinished cell job (`cancel_job`); the ids of the jobs cancelled."""
    study = get_study(session, study_id)
    study.cancel_requested = True
    cancelled = []
    for _, _, _, job_id, status in study_cell_jobs(session, [study_id])[study_id]:
        if status not in FINISHED:
            cancel_job(session, job_id)
            cancelled.append(job_id)
    return cancelled
