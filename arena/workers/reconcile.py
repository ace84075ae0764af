"""The reconciler: requeues runs whose worker died and re-sends runs whose message was lost.

It runs as a bootstep timer inside every worker, not as Celery beat: beat is one more process that
must run exactly once, while every action here is a conditional update that only one process can win,
so any number of workers can reconcile at once and recovery keeps working as long as one worker is
alive. The timer runs on the worker's main loop in the parent process: no thread exists there at
fork time.
"""

from __future__ import annotations

import logging

from celery import bootsteps

from arena.methods import METHODS
from arena.service import queries
from arena.service.db import session_scope
from arena.service.settings import get_settings
from arena.service.tables import CANCELLED, FAILED
from arena.workers.send import send_runs

logger = logging.getLogger("arena.workers")


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


class Reconciler(bootsteps.StartStopStep):
    """Every ARENA_RECONCILE_SECONDS: requeue runs whose heartbeat went stale, re-send lost messages."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_ref = None

    def start(self, worker):
        interval = get_settings().reconcile_seconds
        self.timer_ref = worker.timer.call_repeatedly(interval, self.tick, (worker,), priority=10)

    def stop(self, worker):
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None

    def tick(self, worker):
        from celery.worker import state

        try:
            consumed = [name for name in worker.app.amqp.queues.consume_from or {} if name in METHODS]
            # Queued runs are only re-sent by a worker with a free slot on their queue, and only while
            # the broker holds no message for that queue: a run that waited longer than
            # ARENA_REQUEUE_AFTER_SECONDS is lost only if nothing is left to deliver. A worker between
            # two polls looks idle, and after a restart every message is still queued: re-sending then
            # multiplied work (one re-send per waiting run) without saving any.
            idle = len(state.reserved_requests) < (worker.concurrency or 1)
            reconcile([queue for queue in consumed if waiting_messages(worker.app, queue) in (0, None)] if idle else [])
        except Exception:  # a database or broker hiccup must not stop the worker's loop
            logger.exception("reconciler tick failed")
