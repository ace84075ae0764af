"""Sending runs to their method's queue: the only part of the queue the HTTP API imports.

Messages are hints, the database is the ledger: a run is committed as queued before its message is
sent, and a message that never arrives is re-sent by the reconciler (arena/workers/reconcile.py).

Batches: `send_job_runs` sends a job's runs of one (method, configuration) whose budget has no seconds
limit and whose algorithm has a batched trainer (`train_seeds`) as `claim_and_run_batch` messages of at
most ARENA_BATCH_SEEDS runs each (balanced: 20 runs under a cap of 16 go as 10 + 10, so both pool
processes get work). A seconds budget is never batched: its result would depend on what it shared the
CPU with. The runs stay individual rows: a killed worker's batch is re-sent by the reconciler as batches
(arena/workers/reconcile.py), a lost queued message run by run.
"""

from __future__ import annotations

import logging
import time

from arena.store.settings import get_settings
from arena.workers.app import RUN_BATCH_TASK, RUN_TASK, app

logger = logging.getLogger("arena.workers")


def send_run(run_id: int, method: str, budget_seconds: float | None = None, priority: int | None = None) -> None:
    """Send one run to its method's queue, with time limits derived from its budget (`priority`: the
    reconciler's re-sends, ahead of new work; see arena/workers/app.py)."""
    soft, hard = get_settings().run_time_limit(budget_seconds)
    app.send_task(
        RUN_TASK,
        args=[run_id],
        queue=method,
        soft_time_limit=soft,
        time_limit=hard,
        retry=True,
        retry_policy=RETRY_POLICY,
        priority=priority,
    )


RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}


def send_batch(run_ids: list[int], method: str, priority: int | None = None) -> None:
    """Send runs of one job and configuration (no seconds budget) as one batched message."""
    soft, hard = get_settings().batch_time_limit(len(run_ids))
    app.send_task(
        RUN_BATCH_TASK, args=[list(run_ids)], queue=method, soft_time_limit=soft, time_limit=hard, retry=True, retry_policy=RETRY_POLICY,
        priority=priority,
    )  # fmt: skip


def batches(runs: list[tuple[int, str, float | None, str]], batch_seeds: int, supervised: bool = True) -> tuple[list[tuple[list[int], str]], list[tuple[int, str, float | None]]]:
    """Split (run_id, method, budget seconds, algorithm) into ([(run_ids, method)], [single runs]).

    Batched: runs of a supervised task (control tasks run seed after seed: one message would only take
    away the other pool processes) without a seconds budget whose algorithm has `train_seeds` (and does not
    set BATCH_MESSAGES = False), grouped by (method, algorithm) -- one job's runs of one method share one
    configuration -- in balanced chunks of at most `batch_seeds`. Everything else, and chunks of one, is
    sent run by run.
    """
    from arena.methods import ALGORITHMS

    groups: dict[tuple[str, str], list[int]] = {}
    singles: list[tuple[int, str, float | None]] = []
    for run_id, method, budget_seconds, algorithm in runs:
        module = ALGORITHMS.get(algorithm)
        batchable = module is not None and hasattr(module, "train_seeds") and getattr(module, "BATCH_MESSAGES", True)
        if supervised and batch_seeds > 1 and budget_seconds is None and batchable:
            groups.setdefault((method, algorithm), []).append(run_id)
        else:
            singles.append((run_id, method, budget_seconds))
    out: list[tuple[list[int], str]] = []
    for (method, _), ids in groups.items():
        count = -(-len(ids) // batch_seeds)  # chunks needed
        size = -(-len(ids) // count)  # balanced
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            if len(chunk) > 1:
                out.append((chunk, method))
            else:
                singles.append((chunk[0], method, None))
    return out, singles


# A POST must answer promptly whatever the broker's state: after one failed send, the API sends nothing
# for this long (the runs stay queued in the ledger, and the reconciler sends them), so a dead broker
# costs one request one send's retries (about 2 s), and the requests after it nothing.
BROKER_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


def broker_backing_off() -> bool:
    return time.monotonic() < _broker_down_until


def _broker_failed() -> None:
    global _broker_down_until
    _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS


def send_job_runs(runs: list[tuple[int, str, float | None, str]], supervised: bool = True) -> int:
    """Send one job's runs (run_id, method, budget seconds, algorithm) after their commit, batched where
    allowed (see `batches`); returns how many runs were sent. A failed send loses nothing: the reconciler
    re-sends queued runs (ARENA_REQUEUE_AFTER_SECONDS after they were stored). At the first failure, and
    while the broker is backing off (`BROKER_BACKOFF_SECONDS`), the rest is left to the reconciler."""
    if broker_backing_off():
        return 0
    grouped, singles = batches(runs, get_settings().batch_seeds, supervised)
    sent = 0
    for run_ids, method in grouped:
        try:
            send_batch(run_ids, method)
            sent += len(run_ids)
        except Exception:
            logger.exception("could not send runs %s; the reconciler will send them and the rest of the job", run_ids)
            _broker_failed()
            return sent
    return sent + send_runs(singles, stop_at_failure=True)


def send_runs(runs: list[tuple[int, str, float | None]], stop_at_failure: bool = False, priority: int | None = None) -> int:
    """Send (run_id, method, budget seconds) after their commit; returns how many were sent.

    A broker that is down loses nothing: the runs stay queued in the database and the reconciler
    re-sends them. `stop_at_failure` (the API): the first failure ends the sending, and starts the backoff.
    """
    sent = 0
    for run_id, method, budget_seconds in runs:
        try:
            send_run(run_id, method, budget_seconds, priority)
            sent += 1
        except Exception:
            logger.exception("could not send run %s; the reconciler will re-send it", run_id)
            if stop_at_failure:
                _broker_failed()
                break
    return sent
