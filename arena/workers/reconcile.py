"""The reconciler: requeues runs whose worker died and re-sends runs whose message was lost.

It runs as a bootstep timer inside every worker, not as Celery beat: beat is one more process that
must run exactly once, while every action here is a conditional update that only one process can win,
so any number of workers can reconcile at once and recovery keeps working as long as one worker is
alive. The timer runs on the worker's main loop in the parent process: no thread exists there at
fork time.
"""

from __future__ import annotations

import logging
import time
from datetime import timezone

from celery import bootsteps

from arena.methods import METHODS
from arena.store import queries
from arena.store.db import session_scope
from arena.store.settings import get_settings
from arena.store.tables import CANCELLED, FAILED
from arena.workers.app import message_priorities
from arena.workers.send import batches, send_batch, send_runs

logger = logging.getLogger("arena.workers")


def reconcile(resend_queued_methods: list[str] | tuple[str, ...] = ()) -> dict:
    """One pass of the reconciler. Safe to run in many processes at once: each change is conditional.

    - running runs with a stale heartbeat: requeued and re-sent (or failed after ARENA_MAX_ATTEMPTS,
      or cancelled if their job was); a lost batch is re-sent as batches (see `resend_requeued`);
    - queued runs of `resend_queued_methods` not sent for ARENA_REQUEUE_AFTER_SECONDS: re-sent.

    Re-sent work goes ahead of newer work where the broker can order messages (`message_priorities`).
    """
    settings = get_settings()
    counts = {"requeued": 0, "resent": 0, "failed": 0, "cancelled": 0}
    requeued: list[queries.StaleRun] = []
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
                requeued.append(run)
    if resend_queued_methods:
        sent_before = queries.seconds_ago(settings.requeue_after_seconds)
        with session_scope() as session:
            lost = queries.lost_queued_runs(session, list(resend_queued_methods), sent_before)
        for run_id, method, budget_seconds in lost:
            with session_scope() as session:
                if queries.mark_resent(session, run_id, sent_before):
                    counts["resent"] += 1
                    to_send.append((run_id, method, budget_seconds))
    # After the commits: a worker must find the run queued when the message lands.
    priority = message_priorities(settings)[1]
    resend_requeued(requeued, priority)
    send_runs(to_send, priority=priority)
    if any(counts.values()):
        logger.warning("reconciler: %s", counts)
    return counts


def resend_requeued(runs: list[queries.StaleRun], priority: int | None = None) -> None:
    """Re-send requeued runs as the API first sent them: the runs of one job that were batched go as batches
    again (so a recovered batch is trained batched and stays in its configuration: batched runs are recorded
    under `batched_settings_hash`), split across the workers that can take them (`recovery_batch_seeds`)
    instead of waiting for one worker, or run by run as before (30 runs of a killed worker took 164 s)."""
    from arena.tasks.registry import task_info

    settings = get_settings()
    by_job: dict[int, list[queries.StaleRun]] = {}
    for run in runs:
        by_job.setdefault(run.job_id, []).append(run)
    for job_runs in by_job.values():
        try:
            supervised = job_runs[0].task is not None and task_info(job_runs[0].task).kind == "supervised"
        except Exception:  # a task this version does not know: run by run, as before
            supervised = False
        refs = [(run.run_id, run.method, run.budget_seconds, run.algorithm) for run in job_runs]
        grouped, singles = batches(refs, recovery_batch_seeds(len(refs), settings.batch_seeds, live_workers(job_runs[0].method)), supervised)
        for run_ids, method in grouped:
            try:
                send_batch(run_ids, method, priority)
            except Exception:  # the runs stay queued: the next pass re-sends them (lost queued runs)
                logger.exception("could not re-send runs %s; a later pass will", run_ids)
        send_runs(singles, priority=priority)


def recovery_batch_seeds(runs: int, batch_seeds: int, workers: int) -> int:
    """The batch size for `runs` recovered runs: spread over `workers` workers (at least 2 runs a batch, so a
    batch stays batched; never more than ARENA_BATCH_SEEDS)."""
    return max(2, min(batch_seeds, -(-runs // max(1, workers))))


def live_workers(method: str) -> int:
    """Workers of `method`'s queue known alive: those heartbeating a run now, plus this one (idle or not,
    it reconciles). An estimate: idle workers leave no trace in the ledger."""
    from sqlalchemy import distinct, func, select

    from arena.store.tables import RUNNING, Run

    fresh_after = queries.seconds_ago(get_settings().stale_after_seconds)
    with session_scope() as session:
        busy = session.scalar(
            select(func.count(distinct(Run.worker))).where(Run.status == RUNNING, Run.method == method, Run.heartbeat_at >= fresh_after)
        )  # fmt: skip
    return (busy or 0) + 1


def waiting_messages(app, queue: str) -> int | None:
    """How many messages of `queue` the broker still holds for delivery (None: it could not say).

    Redis counts its list; the SQLAlchemy transport counts visible rows (a message taken by a worker
    that was then killed stays invisible for good: it is lost, and not counted here).
    """
    try:
        with app.connection_for_read() as connection:
            try:
                return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
            except connection.channel_errors:  # Redis: an empty queue's list does not exist
                return 0
    except Exception:
        logger.warning("could not count the messages waiting in %s", queue, exc_info=True)
        return None


def next_stale_in(stale_after: float, url: str | None = None) -> float | None:
    """Seconds until the running run with the oldest heartbeat turns stale (0 if one is stale already); None
    if nothing is running. The threshold is the same one `reconcile` applies: this only says when to look."""
    from sqlalchemy import func, select

    from arena.store.tables import RUNNING, Run, utcnow

    with session_scope(url) as session:
        oldest = session.scalar(select(func.min(Run.heartbeat_at)).where(Run.status == RUNNING))
    if oldest is None:
        return None
    if oldest.tzinfo is None:  # SQLite keeps no zone: the ledger's times are UTC
        oldest = oldest.replace(tzinfo=timezone.utc)
    return max(0.0, stale_after - (utcnow() - oldest).total_seconds())


class Reconciler(bootsteps.StartStopStep):
    """Every ARENA_RECONCILE_SECONDS: requeue runs whose heartbeat went stale, re-send lost messages.

    Two extra passes, neither with a lower threshold (a run is still presumed lost only after
    ARENA_STALE_AFTER_SECONDS of silence, so a heartbeat made late by a loaded machine requeues nothing it
    did not requeue before), only looking at the right moment:

    - at start-up, as soon as the worker consumes (ReconcileAtStart): a worker started to replace one that
      was killed finds its stale runs at once, not one period later (ARENA_RECONCILE_SECONDS, 10 s by
      default, was on the path of every whole-worker recovery);
    - when the oldest heartbeat of a running run turns stale, if that comes before the next periodic pass:
      a run whose worker died is requeued ARENA_STALE_AFTER_SECONDS after its last heartbeat, not up to
      one period later.
    """

    requires = {"celery.worker.components:Timer"}
    EARLY_MARGIN = 0.05  # seconds after the computed moment: stale means strictly older than the threshold

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_ref = None
        self.early_ref = None  # the one pending pass scheduled at a heartbeat's staleness
        self.early_at: float | None = None  # its time.monotonic()

    def start(self, worker):
        interval = get_settings().reconcile_seconds
        worker.arena_reconciler = self  # ReconcileAtStart (a consumer step) finds it here
        self.timer_ref = worker.timer.call_repeatedly(interval, self.tick, (worker,), priority=10)

    def stop(self, worker):
        for ref in (self.timer_ref, self.early_ref):
            if ref is not None:
                ref.cancel()
        self.timer_ref = self.early_ref = None

    def tick(self, worker, early: bool = False):
        from celery.worker import state

        if early:
            self.early_ref = self.early_at = None
        try:
            consumed = [name for name in worker.app.amqp.queues.consume_from or {} if name in METHODS]
            # Queued runs are only re-sent by a worker with a free slot on their queue, and only while
            # the broker holds no message for that queue: a run that waited longer than
            # ARENA_REQUEUE_AFTER_SECONDS is lost only if nothing is left to deliver. A worker between
            # two polls looks idle, and after a restart every message is still queued: re-sending then
            # multiplied work (one re-send per waiting run) without saving any.
            idle = len(state.reserved_requests) < (worker.concurrency or 1)
            reconcile([queue for queue in consumed if waiting_messages(worker.app, queue) in (0, None)] if idle else [])
            self._schedule_early(worker)
        except Exception:  # a database or broker hiccup must not stop the worker's loop
            logger.exception("reconciler tick failed")

    def _schedule_early(self, worker) -> None:
        """One pass when the oldest running heartbeat turns stale, if that is before the next periodic pass."""
        settings = get_settings()
        delay = next_stale_in(settings.stale_after_seconds)
        # Nothing running, or a run still stale right after a pass (it is left to the periodic passes: no
        # busy loop), or the periodic pass comes first anyway.
        if delay is None or delay <= 0 or delay + self.EARLY_MARGIN >= settings.reconcile_seconds:
            return
        at = time.monotonic() + delay + self.EARLY_MARGIN
        if self.early_ref is not None and self.early_at is not None and self.early_at <= at + self.EARLY_MARGIN:
            return  # one is already due then or sooner (the two clocks read apart by a few microseconds)
        if self.early_ref is not None:
            self.early_ref.cancel()
        self.early_at = at
        self.early_ref = worker.timer.call_after(delay + self.EARLY_MARGIN, self.tick, (worker, True), priority=10)


class ReconcileAtStart(bootsteps.StartStopStep):
    """A consumer step: one reconciler pass as the worker starts to consume, before its first message.

    A consumer step, not a worker step, because the consumer starts after the pool has forked its
    processes: the pass (database and broker work) never runs while the pool forks at start-up. It runs
    in the consumer's own thread, at once: a timer entry could wait up to the worker's timer precision
    (1 s) on the embedded broker's timer thread. It runs again whenever the consumer restarts (after the
    broker connection was lost), which is as welcome. A failed pass is logged and changes nothing.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer):
        reconciler = getattr(consumer.controller, "arena_reconciler", None)
        if reconciler is not None:
            reconciler.tick(consumer.controller)
