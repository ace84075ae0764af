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
import ctypes
import logging
import os
import re
import select
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from queue import Empty

from celery import Celery, bootsteps, signals
from kombu import Exchange, Queue
from kombu.transport import sqlalchemy as kombu_sqlalchemy

from arena.methods import METHODS
from arena.store.settings import Settings, get_settings

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
      (a fault test found it). Here each thread gets its own session;
    - its queue count (`_size`, what `queue_declare` answers) and its queue creation leave the session's
      transaction open, which holds a pooled connection until that session's next commit. With one
      session per thread, a session that never commits again (the reconciler counts the waiting messages
      on a fresh connection every pass) kept its connection, and after 15 passes the worker died of
      "QueuePool limit ... reached". Here both end their transaction, and closing the channel closes
      every session it made.
    """

    @property
    def session(self):
        sessions = self.__dict__.setdefault("_thread_sessions", threading.local())
        if getattr(sessions, "session", None) is None:
            _, make_session = self._open()
            sessions.session = make_session()
            with _TRANSPORT_LOCK:
                self.__dict__.setdefault("_all_sessions", []).append(sessions.session)
        return sessions.session

    def _size(self, queue):
        try:
            return super()._size(queue)
        finally:
            self.session.commit()  # a read: ends the transaction, returns the connection to the pool

    def _new_queue(self, queue, **kwargs):
        try:
            super()._new_queue(queue, **kwargs)
        finally:
            self.session.commit()

    def close(self):
        super().close()
        with _TRANSPORT_LOCK:
            sessions = self.__dict__.pop("_all_sessions", [])
        for session in sessions:
            with contextlib.suppress(Exception):  # closing must not fail a shutdown
                session.close()

    def _put(self, queue, payload, **kwargs):
        super()._put(queue, payload, **kwargs)  # committed: a consumer woken now finds the message
        self.connection._doorbell().ring(queue)

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        # A late acknowledgement frees the prefetch slot: poll for the next message now, not at the next
        # interval (the consumer skips polling while its slot is taken).
        self.connection._doorbell().nudge()

    def _engine_from_config(self):
        from sqlalchemy import create_engine, event

        conninfo = self.connection.client
        options = {key: value for key, value in conninfo.transport_options.items() if key not in _NOT_ENGINE_OPTIONS}
        engine = create_engine(conninfo.hostname, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _broker_pragmas)
        return engine


def _broker_pragmas(dbapi_connection, _record) -> None:
    """The broker file in WAL mode with synchronous=NORMAL, as the ledger (arena/service/db.py).

    SQLite's default (a rollback journal, synchronous=FULL) made every commit create, fsync and delete a
    journal: 18 ms per message sent (the API sends a job's runs one after another) and as much again for
    the worker's commit of the message it took, about half of the embedded queue overhead. In WAL mode
    a commit appends to the log and, with synchronous=NORMAL, does not fsync: a commit survives the
    death of any process (SIGKILL included), only an operating-system crash or power loss can take back
    the last ones, and a message is a hint anyway: a queued run whose message was lost is re-sent by
    the reconciler from the ledger. WAL also lets the pollers read while the API writes.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Doorbell:
    """Wakes the embedded broker's idle consumer when a message is sent to one of its queues, or when it
    acknowledged a message (its prefetch slot is free again), instead of at its next poll.

    Measured (benchmarks/bench_service.py): waiting for the next 50 ms poll was about 25 ms of a run's
    queue overhead, and a run queued behind another waited a median 36 ms after the first was recorded.

    - `ring(queue)`: a sender touches its queue's doorbell file, an empty file next to the broker's SQLite
      file (`broker.db.doorbell-ga`, ...), once the message is committed;
    - `nudge()`: the worker's own result thread, after a late acknowledgement, writes a byte to a pipe;
    - `wait(queues, timeout)`: a consumer that found its queues empty (or its slot taken) waits on Linux
      inotify watches of its queues' files and on that pipe, for at most the polling interval.

    Only an accelerator: a consumer still polls once per interval, so a ring that never arrives (not Linux,
    no inotify, the file deleted, the data directory on a network file system) costs at most one interval,
    never a message. A ring or nudge that lands between an empty poll and the wait is kept (by the kernel,
    by the pipe) until the wait reads it; repeated rings while the consumer is busy merge into one wake
    (the kernel merges identical queued events) and cost one empty poll.
    """

    _IN_ATTRIB, _IN_CLOSE_WRITE, _IN_IGNORED = 0x4, 0x8, 0x8000
    _IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000

    def __init__(self, directory: Path | None, stem: str = "broker.db"):
        self.directory = directory
        self.stem = stem
        self._lock = threading.Lock()
        self._pid = 0  # the process that made the descriptors below (a forked child makes its own)
        self._inotify: int | None = None  # the consumer's inotify instance, made at its first wait
        self._watches: dict[int, str] = {}  # watch descriptor -> queue
        self._pipe: tuple[int, int] | None = None  # (read, write): nudges
        self._no_inotify = directory is None or not sys.platform.startswith("linux")

    @classmethod
    def for_broker(cls, url: str) -> "Doorbell":
        from sqlalchemy.engine import make_url

        try:
            database = make_url(url).database
        except Exception:
            database = None
        if not database or database == ":memory:" or database.startswith("file:"):
            return cls(None)
        path = Path(database).expanduser().resolve()
        return cls(path.parent, path.name)

    def path(self, queue: str) -> Path:
        return self.directory / f"{self.stem}.doorbell-{re.sub(r'[^A-Za-z0-9_.-]', '_', queue)[:100]}"

    def ring(self, queue: str) -> None:
        """After a message to `queue` is committed: wake the consumers waiting for it. Never raises."""
        if self.directory is None:
            return
        try:
            os.utime(self.path(queue))  # IN_ATTRIB for every watcher
        except FileNotFoundError:
            pass  # no consumer has watched this queue yet (a consumer creates the file before watching it)
        except OSError:
            logger.debug("could not ring the doorbell of %s", queue, exc_info=True)

    def nudge(self) -> None:
        """Wake this process's consumer now (called from another thread). Never raises."""
        try:
            os.write(self._descriptors(waiting=False)[0], b"!")
        except OSError:  # the pipe is full: a wake is pending anyway
            pass

    def wait(self, queues, timeout: float) -> str:
        """Sleep up to `timeout` seconds, less if a message is sent to one of `queues` or nudge() is called.
        Returns why it returned: "rung", "nudged" or "timeout"."""
        nudges, inotify = self._descriptors(waiting=True, queues=queues)
        poller = select.poll()
        poller.register(nudges, select.POLLIN)
        if inotify is not None:
            poller.register(inotify, select.POLLIN)
        try:
            ready = {fd for fd, _ in poller.poll(timeout * 1000)}
        except OSError:  # EINTR and the like: the caller polls the broker anyway
            return "timeout"
        why = "timeout"
        if nudges in ready:
            why = "nudged"
            with contextlib.suppress(OSError):
                os.read(nudges, 4096)
        if inotify is not None and inotify in ready and self._read_events(inotify):
            why = "rung"
        return why

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                for fd in [*(self._pipe or ()), *([self._inotify] if self._inotify is not None else [])]:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._pipe, self._inotify, self._watches, self._pid = None, None, {}, 0

    def _descriptors(self, waiting: bool, queues=()) -> tuple[int, int | None]:
        """(the nudge pipe's read end when `waiting`, else its write end; the inotify descriptor watching `queues`)."""
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: descriptors of its own
                self._pipe, self._inotify, self._watches, self._pid = None, None, {}, os.getpid()
            if self._pipe is None:
                self._pipe = os.pipe()
                for end in self._pipe:
                    os.set_blocking(end, False)
            if not waiting:
                return self._pipe[1], None
            return self._pipe[0], self._watch(queues) if queues else self._inotify

    def _watch(self, queues) -> int | None:
        if self._no_inotify:
            return None
        if self._inotify is None:
            try:
                self._libc = ctypes.CDLL(None, use_errno=True)
                fd = self._libc.inotify_init1(self._IN_NONBLOCK | self._IN_CLOEXEC)
            except (OSError, AttributeError):
                fd = -1
            if fd < 0:
                logger.info("embedded broker: no inotify (%s); polling every interval", os.strerror(ctypes.get_errno()))
                self._no_inotify = True
                return None
            self._inotify = fd
        watched = set(self._watches.values())
        for queue in queues:
            if queue in watched:
                continue
            path = self.path(queue)
            try:
                path.touch(exist_ok=True)
            except OSError:
                continue
            descriptor = self._libc.inotify_add_watch(self._inotify, os.fsencode(path), self._IN_ATTRIB | self._IN_CLOSE_WRITE)
            if descriptor >= 0:
                self._watches[descriptor] = queue
        return self._inotify

    def _read_events(self, fd: int) -> bool:
        """Drain the pending events; forget watches the kernel dropped (their file was deleted). True if a
        doorbell was rung."""
        rung = False
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:  # BlockingIOError: drained
                return rung
            if not data:
                return rung
            offset = 0
            while offset + 16 <= len(data):
                descriptor, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                if mask & self._IN_IGNORED:
                    with self._lock:
                        self._watches.pop(descriptor, None)  # watched again (the file re-created) at the next wait
                elif mask & (self._IN_ATTRIB | self._IN_CLOSE_WRITE):
                    rung = True
                offset += 16 + length


_NOT_ENGINE_OPTIONS = {
    "polling_interval", "queue_tablename", "message_tablename", "callback", "errback", "max_retries",
    "interval_start", "interval_step", "interval_max", "retry_errors",
}


_TRANSPORT_LOCK = threading.Lock()  # the transport's lazily made doorbell, and its channels' session lists


def _shutdown_requested() -> bool:
    """Whether the worker was asked to stop (Celery's signal handlers set these; 0 is a request too)."""
    from celery.worker import state

    return any(flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate))


class EmbeddedTransport(kombu_sqlalchemy.Transport):
    """The embedded broker's transport: Kombu's SQLAlchemy transport that accepts `polling_interval`, and
    whose idle consumer waits for the doorbell of its queues instead of sleeping between two polls."""

    Channel = _EmbeddedChannel

    def drain_events(self, connection, timeout=None):
        """Kombu's virtual drain_events (poll each queue; nothing: wait, poll again), but the wait ends as
        soon as a sender rings the doorbell of a queue this process consumes (see Doorbell)."""
        started = time.monotonic()
        get = self.cycle.get
        interval = self.polling_interval
        if timeout and interval and interval > timeout:
            interval = timeout
        while True:
            try:
                get(self._deliver, timeout=timeout)
            except Empty:
                if timeout is not None and time.monotonic() - started >= timeout:
                    raise socket.timeout() from None
                if _shutdown_requested():  # let Celery's loop see the SIGTERM/SIGQUIT now, not after `timeout`
                    raise socket.timeout() from None
                if interval is not None:
                    self._doorbell().wait(self._consumed_queues(), interval)
            else:
                return

    def _doorbell(self) -> Doorbell:
        doorbell = self.__dict__.get("_arena_doorbell")
        if doorbell is None:
            with _TRANSPORT_LOCK:  # the consumer and the result thread (nudges) may ask at once
                doorbell = self.__dict__.get("_arena_doorbell")
                if doorbell is None:
                    doorbell = self.__dict__["_arena_doorbell"] = Doorbell.for_broker(self.client.hostname)
        return doorbell

    def close_connection(self, connection):
        super().close_connection(connection)
        doorbell = self.__dict__.get("_arena_doorbell")
        if doorbell is not None:
            doorbell.close()

    def _consumed_queues(self) -> set[str]:
        return {queue for channel in self.channels for queue in getattr(channel, "_active_queues", ())}


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
    celery.steps["worker"].add("arena.workers.app:WarmImports")
    celery.steps["worker"].add("arena.workers.reconcile:Reconciler")
    celery.steps["consumer"].add("arena.workers.reconcile:ReconcileAtStart")
    return celery


# Modules a run needs, imported once in the worker's parent process before it forks its pool: those every
# run needs (pygad and cma too: every run records their versions, arena.runner.library_versions), and those
# of one method's queue (a queue per method), so that a worker of one queue does not spend its start-up (the
# path of its recovery) importing what only another method's runs use.
# torch._dynamo: torch.optim imports it at the first optimizer a process makes (torch._compile), 1.0-1.2 s
# of CPU that every new pool process paid in its first backprop run; imported here, forked children share
# it; a GA or CMA-ES worker, which makes no optimizer, skips it.
WARM_COMMON = (
    "torch", "torch.nn.functional", "pygad", "cma", "arena.runner", "arena.runspec", "arena.models.network", "arena.tasks.car.task",
)  # fmt: skip
WARM_BY_QUEUE = {"backprop": ("torch._dynamo",), "ga": (), "cmaes": ()}
WARM_MODULES = WARM_COMMON + tuple(name for names in WARM_BY_QUEUE.values() for name in names)  # every queue
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
    if queues is None or any(queue not in WARM_BY_QUEUE for queue in queues):
        return WARM_MODULES
    return WARM_COMMON + tuple(name for queue in WARM_BY_QUEUE if queue in queues for name in WARM_BY_QUEUE[queue])


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
def _patch_before_fork(**_):
    """billiard's blocking pool reads without holding its lock (see _get_payload_without_holding_the_lock):
    patched before the pool forks, so children inherit it."""
    from billiard import queues

    queues.SimpleQueue.get_payload = _get_payload_without_holding_the_lock


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
    only that method's modules (WARM_BY_QUEUE): a GA or CMA-ES worker skips torch._dynamo. The whole
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
