"""The worker side of a run: the Celery task that claims, executes and records one run.

Lifecycle of a run (the database is the ledger, messages are hints):

1. The API commits the job and its queued runs, then arena.workers.send sends one message per run, or
   one `claim_and_run_batch` message per batch of seeds (below: each run is still claimed, heartbeated
   and recorded on its own).
2. `claim_and_run` claims the run with a conditional update (queued -> running, attempts + 1). A
   duplicate message, or one for a finished or cancelled run, claims nothing and is dropped.
3. While the trainer works, a monitor thread heartbeats and stores progress every ARENA_HEARTBEAT_SECONDS and
   reads the job's cancel flag; the progress callback hands the trainer the answer (True = stop).
4. The result, curve and weights are recorded in one transaction, only by the attempt that owns the
   run: a second completion changes nothing.
5. The reconciler (arena/workers/reconcile.py, in every worker) requeues and re-sends runs whose
   heartbeat went stale (a killed worker), and re-sends queued runs whose message was lost.

torch and the trainers are imported by the worker's parent before it forks its pool (arena/workers/app.py:
no torch work there); every run happens in a pool child.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from arena.contract import Progress
from arena.store import queries
from arena.store.db import session_scope
from arena.store.settings import get_settings
from arena.store.tables import CANCELLED, FAILED, SUCCEEDED
from arena.workers.app import RUN_BATCH_TASK, RUN_TASK, app

logger = logging.getLogger("arena.workers")
# Recording retries while the database is unreachable, for up to the stale threshold (ARENA_STALE_AFTER_SECONDS):
# until then no reconciler can requeue the run, so a result that lands within it is kept. It was 4 tries (about
# 7 s): a 20 s PostgreSQL restart threw away every result that finished meanwhile, and the runs ran again.
RECORD_RETRY_MAX_SLEEP = 2.0


class _Heartbeat:
    """A daemon thread that calls `beat()` every `interval` seconds, from `start()` until `stop()`."""

    def __init__(self, interval: float, name: str):
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        raise NotImplementedError


class RunMonitor(_Heartbeat):
    """Heartbeats, stores progress and reads the cancel flag, in a thread, while a run trains.

    The trainer's progress callback only records the latest Progress and returns the last answer, so
    training never waits on the database, and a long epoch or generation still heartbeats.
    """

    def __init__(self, run_id: int, attempt: int, interval: float):
        super().__init__(interval, name=f"arena-heartbeat-{run_id}")
        self.run_id = run_id
        self.attempt = attempt
        self.latest: Progress | None = None
        self.written: Progress | None = None
        self.cancel = False  # the job was cancelled
        self.lost = False  # another attempt owns the run now (this worker was presumed dead)

    def progress(self, update: Progress) -> bool:
        self.latest = update
        return self.cancel or self.lost

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


def _claim(run_id: int, hostname: str | None) -> queries.Claim | None:
    settings = get_settings()
    with session_scope() as session:
        return queries.claim_run(
            session, run_id, worker=hostname or "worker",
            stale_before=queries.seconds_ago(settings.stale_after_seconds), max_attempts=settings.max_attempts,
        )  # fmt: skip


@app.task(name=RUN_TASK, bind=True)
def claim_and_run(self, run_id: int) -> str:
    settings = get_settings()
    claim = _claim(run_id, self.request.hostname)
    if claim is None:
        return "not claimed"  # finished, cancelled, or running elsewhere: this message was a duplicate

    from arena.runner import execute, library_versions  # torch: only in the worker child
    from arena.runspec import RunSpec

    monitor = RunMonitor(run_id, claim.attempt, settings.heartbeat_seconds)
    monitor.start()
    versions = None
    try:
        versions = library_versions()
        result = execute(RunSpec.from_dict(claim.spec), claim.seed, monitor.progress)
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


class BatchMonitor(_Heartbeat):
    """RunMonitor for the runs of one batch (one job): one thread heartbeats all of them (their own
    threads are never started).

    `progress(seed, Progress)` is the callback of `execute_seeds`; it answers per run (that run was lost)
    and per job (cancelled).
    """

    def __init__(self, claims: list[queries.Claim], interval: float):
        super().__init__(interval, name="arena-heartbeat-batch")
        self.monitors = {claim.seed: RunMonitor(claim.run_id, claim.attempt, interval) for claim in claims}

    def progress(self, seed: int, update: Progress) -> bool:
        return self.monitors[seed].progress(update)

    def beat(self) -> None:
        cancel = False
        for monitor in self.monitors.values():
            monitor.beat()
            cancel = cancel or monitor.cancel
        for monitor in self.monitors.values():  # one job: a cancel seen by one run stops them all
            monitor.cancel = monitor.cancel or cancel


@app.task(name=RUN_BATCH_TASK, bind=True)
def claim_and_run_batch(self, run_ids: list[int]) -> dict:
    """Claim each run of a batch (one job, one configuration; runs it cannot claim are skipped), train
    the claimed ones with `execute_seeds` and record each run in its own transaction, as `claim_and_run`.

    A run trained truly batched (`metrics["batched"]` > 1) is recorded under `batched_settings_hash`:
    its seconds are a share of the batch's. A worker killed mid-batch leaves its claimed runs running;
    their heartbeats go stale and the reconciler requeues them and re-sends them as batches again.
    """
    settings = get_settings()
    claims = [claim for claim in (_claim(run_id, self.request.hostname) for run_id in run_ids) if claim is not None]
    outcome: dict[int, str] = {run_id: "not claimed" for run_id in run_ids}
    if not claims:
        return outcome
    # One execute_seeds per (spec, distinct seeds): a batch message holds one job's runs of one
    # configuration, so this is one group unless the message was forged or seeds repeat.
    groups: list[list[queries.Claim]] = []
    for claim in claims:
        group = next((g for g in groups if g[0].spec == claim.spec and all(c.seed != claim.seed for c in g)), None)
        if group is None:
            groups.append([claim])
        else:
            group.append(claim)
    for group in groups:
        outcome.update(_run_batch(group, settings))
    return outcome


def _run_batch(claims: list[queries.Claim], settings) -> dict[int, str]:
    from arena.runner import execute_seeds, library_versions  # torch: only in the worker child
    from arena.runspec import RunSpec

    monitor = BatchMonitor(claims, settings.heartbeat_seconds)
    monitor.start()
    versions = None
    try:
        versions = library_versions()
        results = execute_seeds(RunSpec.from_dict(claims[0].spec), [claim.seed for claim in claims], monitor.progress)
    except SoftTimeLimitExceeded:
        monitor.stop()
        return {claim.run_id: _record(claim, FAILED, error="the batch exceeded its time limit", versions=versions) for claim in claims}
    except Exception:
        monitor.stop()
        error = traceback.format_exc(limit=20)
        return {claim.run_id: _record(claim, FAILED, error=error, versions=versions) for claim in claims}
    monitor.stop()
    outcome = {}
    for claim, result in zip(claims, results):
        if monitor.monitors[claim.seed].lost:
            outcome[claim.run_id] = "lost"
            continue
        status = CANCELLED if result.stopped == "cancelled" else SUCCEEDED
        batched = (result.metrics or {}).get("batched", 1) > 1
        digest = queries.batched_settings_hash(claim.spec) if batched else None
        outcome[claim.run_id] = _record(claim, status, result=result.to_dict(), versions=versions, settings_hash=digest)
    return outcome


def _record(
    claim: queries.Claim, status: str, result: dict | None = None, error: str | None = None, versions: dict | None = None,
    settings_hash: str | None = None,
) -> str:  # fmt: skip
    deadline = time.monotonic() + get_settings().stale_after_seconds
    retry = 0
    while True:
        try:
            with session_scope() as session:
                recorded = queries.record_result(
                    session, claim.run_id, claim.attempt, status, result=result, error=error, library_versions=versions, settings_hash=settings_hash,
                )  # fmt: skip
            break
        except OperationalError:  # the database restarting, unreachable or busy: keep the result while it can still count
            pause = min(RECORD_RETRY_MAX_SLEEP, 0.25 * 2**retry)
            if time.monotonic() + pause > deadline:
                raise  # the run stays running, its heartbeat stops, and the reconciler runs it again
            logger.warning("recording run %s failed (try %d); retrying", claim.run_id, retry + 1, exc_info=retry == 0)
            time.sleep(pause)
            retry += 1
    # One line per completion: tests (and operators) count these to see a run finish exactly once.
    logger.info("run %s attempt %s %s", claim.run_id, claim.attempt, f"recorded {status}" if recorded else "was already finished: nothing recorded")
    return status if recorded else "already recorded"
