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

import contextlib
import logging
import os
import sys
import time

from celery import Celery, bootsteps, signals
from kombu import Exchange, Queue

from arena.methods import METHODS
from arena.store.settings import Settings, get_settings
from arena.workers.embedded import EMBEDDED_POLLING_INTERVAL, EMBEDDED_TRANSPORT

logger = logging.getLogger("arena.workers")

DEFAULT_QUEUE = next(iter(METHODS))
RUN_TASK = "arena.claim_and_run"  # the Celery task name (arena/workers/worker.py)
RUN_BATCH_TASK = "arena.claim_and_run_batch"  # several runs of one job and configuration, batched


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


def message_priorities(settings: Settings) -> tuple[int | None, int | None]:
    """(new work, re-sent work) message priorities: a run the reconciler re-sends (its worker died, or its
    message was lost) goes ahead of the runs queued after it, instead of waiting at the back of the queue.

    Redis keeps one list per priority step (0, 3, 6, 9) and a worker empties the lower-numbered list first:
    new work is sent at 6 and re-sent work at 0. Other brokers: none (RabbitMQ would need `x-max-priority`
    on each queue, and redeclaring an existing queue with other arguments fails; the SQLite broker is FIFO).
    """
    if settings.broker_url.startswith(("redis://", "rediss://", "sentinel://")):
        return 6, 0
    return None, None


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
        task_default_priority=message_priorities(settings)[0],
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
    celery.steps["worker"].add("arena.workers.app:WarmImports")
    celery.steps["worker"].add("arena.workers.reconcile:Reconciler")
    celery.steps["consumer"].add("arena.workers.reconcile:ReconcileAtStart")
    return celery


# Modules a run needs, imported once in the worker's parent process before it forks its pool: those every
# run needs, and those of one method's queue (a queue per method: the method's WARM_IMPORTS in its modules,
# arena.methods), so that a worker of one queue does not spend its start-up (the path of its recovery)
# importing what only another method's runs use: a GA worker skips pycma and torch._dynamo (torch.optim's
# 1.0-1.2 s import at a process's first optimizer, which a backprop worker warms). Every run records the
# versions of every method's libraries from their metadata, without importing them.
WARM_COMMON = (
    "torch", "torch.nn.functional", "arena.runner", "arena.runspec", "arena.models.network", "arena.tasks.car.task",
)  # fmt: skip


def warm_by_queue() -> dict[str, tuple[str, ...]]:
    """{queue: the modules its method's worker warms}: read from the registry, so a method registered
    with its one line gets its own queue's warm imports."""
    return {name: method.warm_imports for name, method in METHODS.items()}


# What pycma imports at import time only to offer optional extras, each inside try/except ImportError:
# matplotlib.pyplot (cma.s, its interactive plotting shortcuts) and scipy.stats (Kendall's tau for its
# surrogate models, with a numpy fallback). Neither is used by a run (Arena never plots with pycma nor uses
# its surrogates; results are bit for bit the same: tested), and they were 1.2 s of the 3.1 s of CPU the warm
# imports took, on the path of every new worker's start-up and so of its recovery. They stay importable:
# they are only kept out while cma is imported (cma.s's shortcuts then say matplotlib is missing).
CMA_OPTIONAL_IMPORTS = ("matplotlib", "scipy.stats")
_warm_queues: tuple[str, ...] | None = None  # the queues the parent warmed for (its children inherit this)


def warm_modules(queues=None) -> tuple[str, ...]:
    """The modules to warm for a worker of `queues` (None, or a queue of no known method: all of them)."""
    by_queue = warm_by_queue()
    if queues is None or any(queue not in by_queue for queue in queues):
        queues = tuple(by_queue)
    return tuple(dict.fromkeys(WARM_COMMON + tuple(name for queue in by_queue if queue in queues for name in by_queue[queue])))


def warm_imports(queues=None) -> None:
    """Import what the runs of `queues` need (None: every queue): in the worker's parent, before the pool
    forks (see WarmImports).

    Importing is not torch work: it creates no tensor and starts no intra-op thread pool (libgomp's
    threads start at the first parallel op; measured: after these imports the process has 3 threads,
    numpy's OpenBLAS servers, fork-safe through pthread_atfork; torch._dynamo starts none). Each child
    still sets its own thread count.
    """
    import importlib

    for name in warm_modules(queues):
        if name == "cma" and name not in sys.modules:
            with _kept_out(CMA_OPTIONAL_IMPORTS):
                importlib.import_module(name)
        else:
            importlib.import_module(name)


@contextlib.contextmanager
def _kept_out(names):
    """While inside: `import NAME` raises ImportError for each of `names` not imported yet."""
    import warnings

    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # the import system's "not available" marker
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cma.s warns that plotting is unavailable
            yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


_START_UP: dict[str, tuple[float, float]] = {}  # phase -> (seconds, CPU seconds) of this worker's start-up


class WarmImports(bootsteps.Step):
    """A worker step: import what this worker's runs need, in the parent, before the pool forks.

    Recovery under load: a replacement pool process must start within Celery's start-up timeout
    (`worker_proc_alive_timeout`, 4 s). Importing torch, PyGAD, pycma and the trainers in each child
    is what made replacements die again and again (21 failed start-ups, one recovery of 84 s in the
    audit). Measured with benchmarks/bench_child_start.py on 2 cores shared with other work (load
    average 6.7): a child of a cold parent took 5.8 s (median) to start with no extra load and 29.9 s
    (max 37.6 s) with two busy loops; a child of a parent that imported them here took 0.009 s and
    0.015 s. Raising the timeout instead would have had to exceed 40 s, and each replacement would
    still spend half a minute of a loaded CPU importing. So the parent imports them once, the children
    inherit them by fork, and the timeout stays at its default.

    A step's __init__, not the worker_init signal: every step is made after the worker knows its queues
    (-Q) and before any starts (the pool forks when its step starts), so a worker of one queue imports
    only that method's modules (its WARM_IMPORTS): a GA or CMA-ES worker skips torch._dynamo. The whole
    start-up is on the path of a new worker's recovery.
    """

    def __init__(self, worker, **kwargs):
        global _warm_queues
        super().__init__(worker, **kwargs)
        consumed = worker.app.amqp.queues.consume_from
        _warm_queues = tuple(consumed) if consumed else None
        started, cpu = time.monotonic(), time.process_time()
        warm_imports(_warm_queues)
        _START_UP["imports"] = (time.monotonic() - started, time.process_time() - cpu)


def _process_age() -> float | None:
    """Seconds since this process started (Linux), else None."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return None


@signals.worker_ready.connect
def _log_start_up(**_):
    """Start-up is most of a new worker's recovery time under load: say where it went (logging is set up by now,
    unlike while the steps are made; benchmarks/bench_recovery.py reads this line)."""
    imports = _START_UP.get("imports")
    age = _process_age()
    logger.info(
        "worker started in %s (%.2f s CPU); of which warm imports %s",
        f"{age:.2f} s" if age is not None else "?", time.process_time(), f"{imports[0]:.2f} s ({imports[1]:.2f} s CPU)" if imports else "not done",
    )  # fmt: skip


@signals.worker_process_init.connect
def _init_worker_child(**_):
    """In each prefork child: no pooled connection from the parent, and single-threaded torch."""
    from arena.store.db import dispose_engines

    dispose_engines(close=False)
    import torch  # already imported by the parent (no torch work there): this is a dictionary lookup

    torch.set_num_threads(1)
    # The parent's set, already imported there (a no-op); a parent that did not warm (a test) imports it here.
    warm_imports(_warm_queues)


app = make_celery()
