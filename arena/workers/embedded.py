"""The embedded broker: Kombu's SQLAlchemy transport on a SQLite file, for `arena up` and the tests.

Production runs Redis (or RabbitMQ); without BROKER_URL the API and the workers share a SQLite file as
their broker, through EmbeddedTransport below (`broker_connection` in arena/workers/app.py picks it for a
`sqla+sqlite` URL). What it adds to Kombu's transport: per-thread sessions that end their transactions,
the SQLite file in WAL mode, a doorbell that wakes an idle consumer when a message is sent instead of at
its next poll, and a patch to billiard's blocking pool (which this transport needs, since it cannot drive
Celery's event loop) so that a killed pool process cannot leave the pool's read lock held forever.
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

from celery import signals
from kombu.transport import sqlalchemy as kombu_sqlalchemy

logger = logging.getLogger("arena.workers")


# How often an idle worker polls the embedded (SQLite) broker: Kombu's default of 1 s kept a run waiting
# about 0.8 s in the queue; 50 ms costs an idle worker a cheap indexed SELECT 20 times a second.
EMBEDDED_POLLING_INTERVAL = 0.05
EMBEDDED_TRANSPORT = "arena.workers.embedded:EmbeddedTransport"


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
