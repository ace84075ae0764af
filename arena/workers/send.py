"""Sending runs to their method's queue: the only part of the queue the HTTP API imports.

Messages are hints, the database is the ledger: a run is committed as queued before its message is
sent, and a message that never arrives is re-sent by the reconciler (arena/workers/reconcile.py).
"""

from __future__ import annotations

import logging

from arena.service.settings import get_settings
from arena.workers.app import RUN_TASK, app

logger = logging.getLogger("arena.workers")


def send_run(run_id: int, method: str, budget_seconds: float | None = None) -> None:
    """Send one run to its method's queue, with time limits derived from its budget."""
    soft, hard = get_settings().run_time_limit(budget_seconds)
    app.send_task(
        RUN_TASK,
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
