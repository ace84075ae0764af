"""The queue side of a run: the Celery task that executes one run, sending runs, and reconciling.

Lifecycle of a run (the database is the ledger, messages are hints):

1. The API commits the job and its queued runs, then `send_run` sends one message per run.
2. `execute_run` claims the run with a conditional update (queued -> running, attempts + 1). A
   duplicate message, or one for a finished or cancelled run, claims nothing and is dropped.
3. While the trainer works, a monitor thread heartbeats and stores progress every ARENA_HEARTBEAT_SECONDS and
   reads the job's cancel flag; the progress callback hands the trainer the answer (True = stop).
4. The result, curve and weights are recorded in one transaction, only by the attempt that owns the
   run: a second completion changes nothing.
5. The reconciler (in every worker) requeues and re-sends runs whose heartbeat went stale (a killed
   worker), and re-sends queued runs whose message was lost. A run that lost its worker
   ARENA_MAX_ATTEMPTS times is marked failed.

Nothing here imports torch at module level: the API imports `send_run` from this module.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from arena.contract import Progress
from arena.service import queries
from arena.service.db import session_scope
from arena.service.settings import get_settings
from arena.service.tables import CANCELLED, FAILED, SUCCEEDED
from arena.workers.celery_app import EXECUTE_RUN, app

logger = logging.getLogger("arena.workers")
RECORD_RETRIES = 4


def send_run(run_id: int, method: str, budget_seconds: float | None = None) -> None:
    """Send one run to its method's queue, with time limits derived from its budget."""
    soft, hard = get_settings().run_time_limit(budget_seconds)
    app.send_task(
        EXECUTE_RUN,
        args=[run_id],
        queue=method,
        soft_time_limit=soft,
        time_limit=hard,
        retry=True,
        retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0},
    )


def send_runs(runs: list[tuple[int, str, float | None]]) -> int:
    """Send (run_id, method, budget seconds) after their commit; returns how many were sent.

    A broker that is down loses nothing: the runs stay queued in the database and the reconciler
    re-sends them.
    """
    sent = 0
    for run_id, method, budget_seconds in runs:
        try:
            send_run(run_id, method, budget_seconds)
            sent += 1
        except Exception:
            logger.exception("could not send run %s; the reconciler will re-send it", run_id)
    return sent


class RunMonitor:
    """Heartbeats, stores progress and reads the cancel flag, in a thread, while a run trains.

    The trainer's progress callback only records the latest Progress and returns the last answer, so
    training never waits on the database, and a long epoch or generation still heartbeats.
    """

    def __init__(self, run_id: int, attempt: int, interval: float):
        self.run_id = run_id
        self.attempt = attempt
        self.interval = interval
        self.latest: Progress | None = None
        self.written: Progress | None = None
        self.cancel = False  # the job was cancelled
        self.lost = False  # another attempt owns the run now (this worker was presumed dead)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"arena-heartbeat-{run_id}", daemon=True)

    def progress(self, update: Progress) -> bool:
        self.latest = update
        return self.cancel or self.lost

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        latest = self.latest
        try:
            with session_scope() as session:
                owned, cancel = queries.heartbeat(session, self.run_id, self.attempt, latest if latest is not self.written else None)
        except Exception:  # a missed beat is survivable; the next one retries
            logger.exception("heartbeat of run %s failed", self.run_id)
            return
        self.written = latest
        self.lost = self.lost or not owned
        self.cancel = self.cancel or cancel


@app.task(name=EXECUTE_RUN, bind=True)
def execute_run(self, run_id: int) -> str:
    settings = get_settings()
    with session_scope() as session:
        claim = queries.claim_run(
            session, run_id, worker=self.request.hostname or "worker",
            stale_before=queries.seconds_ago(settings.stale_after_seconds), max_attempts=settings.max_attempts,
        )
    if claim is None:
        return "not claimed"  # finished, cancelled, or running elsewhere: this message was a duplicate

    from arena.runspec import RunSpec
    from arena.workers.runner import execute, library_versions  # torch: only in the worker child

    monitor = RunMonitor(run_id, claim.attempt, settings.heartbeat_seconds)
    monitor.start()
    versions = None
    try:
        versions = library_versions()
        result = execute(RunSpec.from_dict(claim.settings), claim.seed, monitor.progress)
    except SoftTimeLimitExceeded:
        monitor.stop()
        return _record(claim, FAILED, error="the run exceeded its time limit", versions=versions)
    except Exception:
        monitor.stop()
        return _record(claim, FAILED, error=traceback.format_exc(limit=20), versions=versions)
    monitor.stop()
    if monitor.lost:
        return "lost"  # the reconciler gave the run to another attempt; its result is that attempt's
    status = CANCELLED if result.stopped == "cancelled" else SUCCEEDED
    return _record(claim, status, result=result.to_dict(), versions=versions)


def _record(claim: queries.Claim, status: str, result: dict | None = None, error: str | None = None, versions: dict | None = None) -> str:
    for retry in range(RECORD_RETRIES):
        try:
            with session_scope() as session:
                recorded = queries.record_result(session, claim.run_id, claim.attempt, status, result=result, error=error, library_versions=versions)
            break
        except OperationalError:  # the database restarting or busy: worth a few tries before losing the result
            if retry == RECORD_RETRIES - 1:
                raise  # the run stays running, its heartbeat stops, and the reconciler runs it again
            logger.warning("recording run %s failed; retrying", claim.run_id, exc_info=True)
            time.sleep(2**retry)
    # One line per completion: tests (and operators) count these to see a run finish exactly once.
    logger.info("run %s attempt %s %s", claim.run_id, claim.attempt, f"recorded {status}" if recorded else "was already finished: nothing recorded")
    return status if recorded else "already recorded"


def reconcile(resend_queued_methods: list[str] | tuple[str, ...] = ()) -> dict:
    """One pass of the reconciler. Safe to run in many processes at once: each change is conditional.

    - running runs with a stale heartbeat: requeued and re-sent (or failed after ARENA_MAX_ATTEMPTS,
      or cancelled if their job was);
    - queued runs of `resend_queued_methods` not sent for ARENA_REQUEUE_AFTER_SECONDS: re-sent.
    """
    settings = get_settings()
    counts = {"requeued": 0, "resent": 0, "failed": 0, "cancelled": 0}
    to_send: list[tuple[int, str, float | None]] = []
    stale_before = queries.seconds_ago(settings.stale_after_seconds)
    with session_scope() as session:
        stale = queries.stale_runs(session, stale_before)
    for run in stale:
        with session_scope() as session:
            if run.cancel_requested:
                if queries.finish_stale_run(session, run.run_id, run.attempts, stale_before, CANCELLED, "cancelled while its worker was lost"):
                    counts["cancelled"] += 1
            elif run.attempts >= settings.max_attempts:
                error = f"lost its worker {run.attempts} times (killed, out of memory, or over its time limit); gave up"
                if queries.finish_stale_run(session, run.run_id, run.attempts, stale_before, FAILED, error):
                    counts["failed"] += 1
            elif queries.requeue_stale_run(session, run.run_id, run.attempts, stale_before):
                counts["requeued"] += 1
                to_send.append((run.run_id, run.method, run.budget_seconds))
    if resend_queued_methods:
        sent_before = queries.seconds_ago(settings.requeue_after_seconds)
        with session_scope() as session:
            lost = queries.lost_queued_runs(session, list(resend_queued_methods), sent_before)
        for run_id, method, budget_seconds in lost:
            with session_scope() as session:
                if queries.mark_resent(session, run_id, sent_before):
                    counts["resent"] += 1
                    to_send.append((run_id, method, budget_seconds))
    send_runs(to_send)  # after the commits: a worker must find the run queued when the message lands
    if any(counts.values()):
        logger.warning("reconciler: %s", counts)
    return counts
