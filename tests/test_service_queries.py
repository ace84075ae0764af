"""The run lifecycle's conditional updates, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from arena.contract import Progress
from arena.runspec import resolve
from arena.store import queries
from arena.store.db import session_scope
from arena.store.tables import utcnow

RESULT = {
    "score": 0.01, "solved": True, "evaluations_to_solve": 800, "seconds_to_solve": 0.2, "evaluations": 800,
    "seconds": 0.25, "stopped": "solved", "metrics": {"margin": 0.1}, "extra_parameters": 0,
    "curve": [{"evaluations": 800, "seconds": 0.25, "score": 0.01}], "weights": [0.5] * 17,
}
FUTURE = utcnow() + timedelta(days=1)  # "stale before" a time that has not come: every heartbeat is stale
PAST = utcnow() - timedelta(days=1)  # no heartbeat is that old


def make_job(url, seeds=(0, 1), methods=("backprop", "ga")) -> tuple[int, list[int]]:
    specs = {m: resolve("xor", m, {"evaluations": 10_000}).to_dict() for m in methods}
    with session_scope(url) as session:
        job = queries.create_job(session, "xor", list(seeds), specs, {"task": "xor"})
        return job.id, [run.id for run in job.runs]


def claim(url, run_id, stale_before=PAST, max_attempts=3):
    with session_scope(url) as session:
        return queries.claim_run(session, run_id, "w", stale_before, max_attempts)


def record(url, run_id, attempt, status="succeeded", result=RESULT):
    with session_scope(url) as session:
        return queries.record_result(session, run_id, attempt, status, result=result, library_versions={"arena": "0"})


def job_status(url, job_id):
    with session_scope(url) as session:
        return queries.get_job(session, job_id).status


def test_claim_is_exclusive_and_record_is_idempotent(migrated_database):
    url = migrated_database
    job_id, run_ids = make_job(url, seeds=(0,), methods=("ga",))
    first = claim(url, run_ids[0])
    assert first is not None and first.attempt == 1 and first.seed == 0 and first.spec["method"] == "ga"
    assert claim(url, run_ids[0]) is None  # a duplicate message claims nothing
    assert job_status(url, job_id) == "running"

    assert record(url, run_ids[0], 1) is True
    assert record(url, run_ids[0], 1, status="failed", result=None) is False  # a second completion changes nothing
    with session_scope(url) as session:
        run = queries.get_run(session, run_ids[0])
        assert (run.status, run.score, run.solved, run.attempts, run.error) == ("succeeded", 0.01, True, 1, None)
        assert queries.get_run_output(session, run_ids[0]).weights == [0.5] * 17
    assert job_status(url, job_id) == "succeeded"
    assert claim(url, run_ids[0], stale_before=FUTURE) is None  # finished runs are never claimed again


def test_stale_run_is_taken_over_and_the_old_attempt_loses_it(migrated_database):
    url = migrated_database
    _, run_ids = make_job(url, seeds=(0,), methods=("backprop",))
    run_id = run_ids[0]
    assert claim(url, run_id).attempt == 1
    with session_scope(url) as session:
        assert queries.heartbeat(session, run_id, 1, Progress(100, 0.1, 0.2, False, 1)) == (True, False)
    with session_scope(url) as session:
        stale = queries.stale_runs(session, FUTURE)
        assert [(s.run_id, s.attempts, s.method) for s in stale] == [(run_id, 1, "backprop")]
        assert queries.requeue_stale_run(session, run_id, 1, FUTURE) is True
        assert queries.requeue_stale_run(session, run_id, 1, FUTURE) is False  # only one reconciler wins
    assert claim(url, run_id).attempt == 2
    with session_scope(url) as session:
        assert queries.heartbeat(session, run_id, 1) == (False, False)  # attempt 1 learns it lost the run
    assert record(url, run_id, 1) is False  # and cannot record
    assert record(url, run_id, 2) is True
    # A redelivered message may also take over a stale running run directly, up to the attempt limit.
    _, (other,) = make_job(url, seeds=(5,), methods=("ga",))
    assert claim(url, other).attempt == 1
    assert claim(url, other, stale_before=FUTURE).attempt == 2
    assert claim(url, other, stale_before=FUTURE, max_attempts=2) is None


def test_cancel_and_job_status(migrated_database):
    url = migrated_database
    job_id, run_ids = make_job(url)
    running = claim(url, run_ids[0])
    with session_scope(url) as session:
        job, already_finished = queries.cancel_job(session, job_id)
        assert (job.status, job.cancel_requested, already_finished) == ("running", True, False)
    assert claim(url, run_ids[1]) is None  # queued runs were cancelled with the job
    with session_scope(url) as session:
        assert queries.heartbeat(session, run_ids[0], running.attempt) == (True, True)  # the running one is told
    assert record(url, run_ids[0], running.attempt, status="cancelled") is True
    assert job_status(url, job_id) == "cancelled"
    with session_scope(url) as session:
        assert queries.cancel_job(session, job_id)[1] is True  # finished: the API answers 409
        assert queries.run_counts(session, [job_id]) == {job_id: {"cancelled": 4}}


def test_failed_run_fails_the_job_and_lost_queued_runs_are_found(migrated_database):
    url = migrated_database
    job_id, run_ids = make_job(url, seeds=(0,))
    with session_scope(url) as session:
        lost = queries.lost_queued_runs(session, ["ga"], FUTURE)
        assert (run_ids[1], "ga", None) in lost and run_ids[0] not in [run_id for run_id, _, _ in lost]
        assert queries.mark_resent(session, run_ids[1], FUTURE) is True
        assert run_ids[1] not in [run_id for run_id, _, _ in queries.lost_queued_runs(session, ["ga"], PAST)]
    for run_id, status in zip(run_ids, ("succeeded", "failed")):
        attempt = claim(url, run_id).attempt
        assert record(url, run_id, attempt, status=status, result=RESULT if status == "succeeded" else None)
    assert job_status(url, job_id) == "failed"
    with session_scope(url) as session:
        jobs, total = queries.list_jobs(session, task="xor", status="failed")
        assert job_id in [job.id for job in jobs] and total >= 1
