"""The Celery application, configured from the service settings.

One queue per method (`backprop`, `ga`, `cmaes`: the names in arena.methods.METHODS; a run goes to its
method's queue), so each kind of worker can be scaled on its own. Messages are hints, the database is the ledger: late
acknowledgement plus `task_reject_on_worker_lost` keeps a message whose worker died, and the
reconciler below re-sends what a broker still loses (the embedded SQLAlchemy transport never
redelivers a message whose worker was killed).

The reconciler (arena/workers/reconcile.py) runs as a bootstep timer inside every worker, not as Celery beat: beat is one more
process that must run exactly once (and the embedded mode would need a third process to forget),
while every reconciler action is a conditional update that only one process can win, so any number
of workers can reconcile at once and recovery keeps working as long as one worker is alive. The
timer runs on the worker's main loop in the parent process: no Python thread exists there at fork time.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery, signals
from kombu import Exchange, Queue
from kombu.transport import sqlalchemy as kombu_sqlalchemy

from arena.methods import METHODS
from arena.service.settings import Settings, get_settings

logger = logging.getLogger("arena.workers")

DEFAULT_QUEUE = next(iter(METHODS))
RUN_TASK = "arena.claim_and_run"  # the Celery task name (arena/workers/worker.py)
RUN_BATCH_TASK = "arena.claim_and_run_batch"  # several runs of one job and configuration, batched


# How often an idle worker polls the embedded (SQLite) broker: Kombu's default of 1 s kept a run waiting
# about 0.8 s in the queue; 50 ms costs an idle worker a cheap indexed SELECT 20 times a second.
EMBEDDED_POLLING_INTERVAL = 0.05
EMBEDDED_TRANSPORT = "arena.workers.app:EmbeddedTransport"


class _EmbeddedChannel(kombu_sqlalchemy.Channel):
    """Kombu's SQLAlchemy channel, minus two pitfalls:

    - it hands every transport option to create_engine, so `polling_interval` (read by the virtual
      transport) would make create_engine fail;
    - it keeps one SQLAlchemy session per channel, used from every thread: when a pool process is
      killed, the worker's task-handler thread rejects (requeues) the lost message while the consumer
      polls, and the shared session failed with IllegalStateChangeError, which stopped the whole worker
      (a fault test found it). Here each thread gets its own session.
    """

    @property
    def session(self):
        sessions = self.__dict__.setdefault("_thread_sessions", threading.local())
        if getattr(sessions, "session", None) is None:
            _, make_session = self._open()
            sessions.session = make_session()
        return sessions.session

    def _engine_from_config(self):
        from sqlalchemy import create_engine

        conninfo = self.connection.client
        options = {key: value for key, value in conninfo.transport_options.items() if key not in _NOT_ENGINE_OPTIONS}
        return create_engine(conninfo.hostname, **options)


_NOT_ENGINE_OPTIONS = {
    "polling_interval", "queue_tablename", "message_tablename", "callback", "errback", "max_retries",
    "interval_start", "interval_step", "interval_max", "retry_errors",
}


class EmbeddedTransport(kombu_sqlalchemy.Transport):
    """The embedded broker's transport: Kombu's SQLAlchemy transport that accepts `polling_interval`."""

    Channel = _EmbeddedChannel


def broker_connection(settings: Settings) -> tuple[str, str | None]:
    """(broker URL, transport) for Celery: the embedded `sqla+sqlite` URL goes through EmbeddedTransport."""
    url = settings.broker_url
    if url.startswith("sqla+sqlite"):
        return url[len("sqla+") :], EMBEDDED_TRANSPORT
    return url, None


def broker_transport_options(settings: Settings) -> dict:
    url = settings.broker_url
    if url.startswith(("redis://", "rediss://", "sentinel://")):
        # Redis redelivers an unacknowledged message after this; it must exceed the longest run.
        return {"visibility_timeout": settings.broker_visibility_timeout}
    if url.startswith("sqla+sqlite"):
        # Engine arguments, plus the polling interval that EmbeddedTransport keeps from create_engine.
        return {"connect_args": {"timeout": 30}, "polling_interval": EMBEDDED_POLLING_INTERVAL}
    return {}


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    broker_url, transport = broker_connection(settings)
    celery = Celery("arena", broker=broker_url, include=["arena.workers.worker"])
    celery.conf.update(
        broker_transport=transport,
        # Each queue its own exchange and key: a bare Queue(name) binds to the default exchange and
        # key, and every queue would receive every message.
        task_queues=[Queue(method, Exchange(method, type="direct"), routing_key=method) for method in METHODS],
        task_default_queue=DEFAULT_QUEUE,
        task_default_exchange=DEFAULT_QUEUE,
        task_default_routing_key=DEFAULT_QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a long run must not hold messages other workers could take
        task_ignore_result=True,  # results go to the database, not to a result backend
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        # A broker blip must not kill hours of training: the run records to the database, not the broker.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    # By name: reconcile.py imports the send functions, which import this module.
    celery.steps["worker"].add("arena.workers.reconcile:Reconciler")
    return celery


# Modules every run needs, imported once in the worker's parent process before it forks its pool.
WARM_MODULES = (
    "torch", "torch.nn.functional", "pygad", "cma", "arena.runner", "arena.runspec", "arena.models.network",
    "arena.tasks.car.task",
)


def warm_imports() -> None:
    """Import what a run needs: in the worker's parent, before the pool forks (see _import_before_fork).

    Importing is not torch work: it creates no tensor and starts no intra-op thread pool (libgomp's
    threads start at the first parallel op; measured: after these imports the process has 3 threads,
    numpy's and SciPy's OpenBLAS servers, both fork-safe through pthread_atfork, and numpy alone,
    which the parent imported already, has 2). Each child still sets its own thread count.
    """
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)


def _get_payload_without_holding_the_lock(self):
    """billiard's SimpleQueue.get_payload, minus its deadlock: wait for a message WITHOUT the shared read
    lock, then take the lock only to read it.

    The embedded broker (Kombu's SQLAlchemy transport) cannot drive Celery's event loop, so the worker
    uses billiard's blocking pool: every pool process reads one shared pipe, and the stock get_payload
    holds the pipe's read lock (a process-shared semaphore) while it blocks waiting for the next task, so
    an idle pool process always holds it. SIGKILL that process (the OOM killer, an operator) and the lock
    is never released: every replacement blocks on it forever and the worker runs nothing again, silently
    (reproduced: kill both pool processes of an idle embedded worker; the replacements sit in
    futex_wait). Here the lock is held only for the microseconds of reading a message already in the pipe.
    The Redis transport uses Celery's AsynPool (one pipe per process) and never reaches this path.
    """
    while True:
        if not self._reader.poll(1.0):
            continue
        if not self._rlock.acquire(True, 1.0):
            continue
        try:
            if self._reader.poll(0):  # another process may have read it first
                return self._reader.recv_bytes()
        finally:
            self._rlock.release()


@signals.worker_init.connect
def _import_before_fork(**_):
    """Recovery under load: a replacement pool process must start within Celery's start-up timeout
    (`worker_proc_alive_timeout`, 4 s). Importing torch, PyGAD, pycma and the trainers in each child
    is what made replacements die again and again (21 failed start-ups, one recovery of 84 s in the
    audit). Measured with benchmarks/bench_child_start.py on 2 cores shared with other work (load
    average 6.7): a child of a cold parent took 5.8 s (median) to start with no extra load and 29.9 s
    (max 37.6 s) with two busy loops; a child of a parent that imported them here took 0.009 s and
    0.015 s. Raising the timeout instead would have had to exceed 40 s, and each replacement would
    still spend half a minute of a loaded CPU importing. So the parent imports them once, the children
    inherit them by fork, and the timeout stays at its default.
    """
    from billiard import queues

    queues.SimpleQueue.get_payload = _get_payload_without_holding_the_lock  # before the pool forks: children inherit it
    warm_imports()


@signals.worker_process_init.connect
def _init_worker_child(**_):
    """In each prefork child: no pooled connection from the parent, and single-threaded torch."""
    from arena.service.db import dispose_engines

    dispose_engines(close=False)
    import torch  # already imported by the parent (no torch work there): this is a dictionary lookup

    torch.set_num_threads(1)
    # Warm anything a parent started without _import_before_fork (a solo pool, a test) still imports.
    warm_imports()


app = make_celery()
