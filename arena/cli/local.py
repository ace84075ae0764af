"""Running the service: `up` (API + one worker per queue, supervised), `api`, `worker`, `migrate`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from arena.cli.errors import UsageError, first_line
from arena.errors import ArenaError
from arena.methods import METHODS

QUEUES = tuple(METHODS)  # one Celery queue per method: backprop, ga, cmaes


def register(commands) -> None:
    up = commands.add_parser(
        "up",
        help="run the whole service on this machine: migrate, then the API and one worker per queue",
        description="Embedded mode: SQLite database and broker under --data-dir, the API and one worker per "
        "queue as child processes (restarted if one dies). Ctrl-C stops everything.",
    )
    up.add_argument("--host", default=None, help="API address (default: ARENA_API_HOST or 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="API port (default: ARENA_API_PORT or 8000)")
    up.add_argument("--data-dir", default=None, help="where the database, broker and logs live (default: ARENA_DATA_DIR or var)")
    up.set_defaults(handler=up_command)

    api = commands.add_parser("api", help="run only the HTTP API (uvicorn); `arena up` runs it for you")
    api.add_argument("--host", default=None, help="address to bind (default: ARENA_API_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, default=None, help="port (default: ARENA_API_PORT or 8000)")
    api.set_defaults(handler=api_command)

    worker = commands.add_parser("worker", help="run a Celery worker for one queue (one queue per method)")
    worker.add_argument("--queue", required=True, choices=QUEUES, help="which method's runs this worker trains")
    worker.add_argument(
        "--concurrency", type=int, default=1, help="runs at once (child processes; default 1: a run is single-threaded, so use up to one per core)"
    )
    worker.add_argument("--pool", default="prefork", choices=("prefork", "solo"), help="Celery pool (default prefork: time limits and termination work)")
    worker.add_argument("--name", default=None, help="Celery node name (default QUEUE-PID@HOST; %%h is the host name)")
    worker.add_argument("--loglevel", default="info", help="Celery log level (default info)")
    worker.set_defaults(handler=worker_command)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema (DATABASE_URL) to the latest version")
    migrate.add_argument("--retry-seconds", type=float, default=0, help="keep retrying an unreachable database for this long (compose starts it alongside)")
    migrate.set_defaults(handler=migrate_command)


def service_settings(data_dir: str | None = None):
    """The service settings, after pointing ARENA_DATA_DIR at `data_dir` (an absolute path) if given.

    Children started by `arena up` inherit the environment, so they all read the same data directory.
    """
    if data_dir is not None:
        os.environ["ARENA_DATA_DIR"] = str(Path(data_dir).resolve())
    from pydantic import ValidationError

    from arena.store.settings import Settings

    try:
        return Settings()  # not the cached get_settings(): the environment may have changed just above
    except ValidationError as error:  # a bad environment variable: name it and say why
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        detail = f"{where}: {message} (got {first['input']!r})" if where else message
        raise UsageError(f"bad service configuration: {detail}") from None


def migrate_command(args) -> int:
    settings = service_settings()
    deadline = time.monotonic() + (args.retry_seconds or 0)
    while True:
        try:
            _migrate(settings)
            break
        except UsageError as error:  # the database not reachable yet: retry until the deadline
            if time.monotonic() >= deadline:
                raise
            print(f"{error.message}; retrying", file=sys.stderr)
            time.sleep(2)
    print(f"database is up to date: {_redact(settings.database_url)}")
    return 0


def _migrate(settings) -> None:
    from arena.store.db import run_migrations

    if settings.database_url.startswith("sqlite"):
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    try:
        run_migrations(settings.database_url)
    except ArenaError:
        raise
    except Exception as error:  # unreachable server, bad credentials...: say which database, briefly
        raise UsageError(f"cannot migrate {_redact(settings.database_url)}: {first_line(error)}") from None


def api_command(args) -> int:
    import uvicorn

    settings = service_settings()
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    uvicorn.run("arena.service.app:app", host=host, port=port, log_level="info", proxy_headers=True)
    return 0


def worker_command(args) -> int:
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    from arena.workers.app import app

    # By default a node name unique per process: several workers of one queue may share a host (`arena up`
    # twice, say), and Celery warns and misroutes control messages on duplicates. In a container the host
    # name is already unique, so compose passes QUEUE@%h, which its health check can ping.
    node_name = args.name or f"{args.queue}-{os.getpid()}@%h"
    app.worker_main(
        [
            "worker",
            f"--queues={args.queue}",
            f"--concurrency={args.concurrency}",
            f"--pool={args.pool}",
            f"--hostname={node_name}",
            f"--loglevel={args.loglevel}",
            "--without-gossip",  # workers need not know about each other; less broker chatter
            "--without-mingle",
        ]
    )
    return 0


def up_command(args) -> int:
    settings = service_settings(args.data_dir)
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    service = LocalService(settings, host, port)
    service.start()
    print(f"Arena is up at {service.url}  (API docs: {service.url}/docs)")
    print(f"data and logs in {settings.data_dir}; Ctrl-C stops everything")
    print(f"open the dashboard: {service.url}/")
    print(f"point the CLI at it, in another terminal: export ARENA_URL={service.url}")
    print("then, for example: arena demo")
    return service.supervise_until_stopped()


@dataclass
class Child:
    """One supervised process: its command, its log file, and when it was (re)started."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)  # when it died lately (monotonic), within the window
    started_at: float = 0.0
    backoff: float = 0.0  # the current delay before a restart (0: restart at once)
    restart_at: float | None = None  # dead, and waiting for this monotonic time to be restarted

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, env: dict) -> None:
        self.started_at = time.monotonic()
        self.restart_at = None
        log = open(self.log_path, "ab", buffering=0)
        try:
            self.process = subprocess.Popen(
                self.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C reaches only the supervisor, which stops the children in
                # order; and a forced stop can kill a worker together with its pool processes.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int, whole_group: bool = False) -> None:
        try:
            if whole_group:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)
        except ProcessLookupError:
            pass

    def group_alive(self) -> bool:
        """Is any process of its group (a worker's pool children too) still running?"""
        try:
            os.killpg(self.process.pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").rstrip().splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM if the supervisor dies (even by SIGKILL).

    Without it a killed `arena up` leaves an API holding the port and workers holding runs.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServiceFailed(ArenaError):
    """A child of `arena up` kept dying: everything was stopped."""


class LocalService:
    """The API and one worker per queue as child processes of this one.

    `arena up` and `arena demo` use it with the embedded database and broker; it runs the same against
    PostgreSQL and Redis when DATABASE_URL and BROKER_URL are set (the service benchmark does that).

    A child that dies is restarted at once, up to `MAX_RESTARTS` times within `RESTART_WINDOW` seconds.
    A worker that keeps dying after that (out of memory, a broken library...) is restarted with an
    exponential back-off, `BACKOFF_START` doubling up to `BACKOFF_MAX` seconds, reset once it stays up
    for `RESTART_WINDOW`; the API and the other workers keep running, and each death is announced with
    its exit code or signal and the log to read. Only the API stops everything when it keeps dying (a
    port in use, a broken database): nothing can be used without it. `stop()` asks each child to finish
    (SIGTERM: uvicorn closes connections, a Celery worker finishes its current run), and kills whatever
    is still running after `STOP_GRACE` seconds; a killed run is re-queued by the reconciler.
    """

    MAX_RESTARTS = 3
    RESTART_WINDOW = 60.0
    BACKOFF_START = 1.0
    BACKOFF_MAX = 60.0
    STOP_GRACE = 15.0
    START_TIMEOUT = 60.0

    def __init__(self, settings, host: str, port: int, announce=print):
        self.settings = settings
        self.host = host
        self.port = port
        self.announce = announce
        self.stop_requested = False
        client_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        self.url = f"http://{client_host}:{port}"
        logs = Path(settings.data_dir) / "logs"
        arena = [sys.executable, "-m", "arena"]
        self.children = [Child("api", [*arena, "api", "--host", host, "--port", str(port)], logs / "api.log")]
        for queue in QUEUES:
            self.children.append(Child(f"worker-{queue}", [*arena, "worker", "--queue", queue], logs / f"worker-{queue}.log"))

    def start(self) -> None:
        _check_port_free(self.host, self.port)
        _migrate(self.settings)
        (Path(self.settings.data_dir) / "logs").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ARENA_DATA_DIR": str(Path(self.settings.data_dir).resolve())}
        self.env = env
        for child in self.children:
            self._start(child)
        self._wait_until_healthy()

    def _start(self, child: Child) -> None:
        child.start(self.env)
        self.announce(f"  started {child.name:<16} pid {child.pid:<7} log {child.log_path}")

    def _wait_until_healthy(self) -> None:
        import httpx

        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_children()
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServiceFailed(f"the API did not answer {self.url}/health within {self.START_TIMEOUT:.0f} s; see {self.children[0].log_path}")

    def check_children(self) -> None:
        """Restart a child that died: at once, or after a back-off if it keeps dying (the API: stop everything)."""
        for child in self.children:
            if self.stop_requested or child.alive():
                continue
            now = time.monotonic()
            if child.restart_at is not None:  # backing off
                if now >= child.restart_at:
                    self._start(child)
                continue
            code = child.process.returncode
            child.signal(signal.SIGKILL, whole_group=True)  # a killed worker's pool processes would linger
            if now - child.started_at >= self.RESTART_WINDOW:
                child.backoff = 0.0  # it had been up a while: this death starts a new count
            child.restarts = [t for t in child.restarts if now - t < self.RESTART_WINDOW] + [now]
            if len(child.restarts) <= self.MAX_RESTARTS:
                self.announce(f"arena: {child.name} exited ({describe_exit(code)}); restarting it ({len(child.restarts)}/{self.MAX_RESTARTS})")
                self._start(child)
                continue
            if child is self.children[0]:  # the API: nothing works without it
                self.announce(f"arena: {child.name} exited ({describe_exit(code)}) after {self.MAX_RESTARTS} restarts in {self.RESTART_WINDOW:.0f} s; its log ends:")
                self.announce(child.log_tail())
                self.stop()
                raise ServiceFailed(f"{child.name} keeps failing ({describe_exit(code)}); stopped everything. Log: {child.log_path}")
            child.backoff = min(self.BACKOFF_MAX, max(self.BACKOFF_START, child.backoff * 2))
            child.restart_at = now + child.backoff
            self.announce(
                f"arena: {child.name} exited ({describe_exit(code)}), {len(child.restarts)} times in {self.RESTART_WINDOW:.0f} s: "
                f"backing off, restarting it in {child.backoff:.0f} s (the API and the other workers keep running). "
                f"Its log, {child.log_path}, ends:"
            )
            self.announce(child.log_tail())

    def supervise_until_stopped(self) -> int:
        """Block until SIGINT or SIGTERM, then stop the children. Returns the exit code."""

        def request_stop(signum, frame):
            if self.stop_requested:  # a second Ctrl-C: no more waiting
                for child in self.children:
                    if child.process is not None:
                        child.signal(signal.SIGKILL, whole_group=True)
            self.stop_requested = True

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.stop_requested:
                self.check_children()
                time.sleep(0.25)
            self.announce("stopping...")
            if self.stop():
                self.announce("stopped cleanly")
                return 0
            return 1
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def stop(self, idle: bool = False) -> bool:
        """Stop every child; True if each exited by itself within the grace period.

        `idle`: the caller knows its runs are done (the demo, once all its jobs finished), so the workers
        are killed at once instead of winding down (an idle Celery worker's warm shutdown takes about 5 s
        of billiard's one-second sleeps and joins); a run another job started meanwhile is re-queued by the
        reconciler, as after any killed worker (the ledger loses nothing)."""
        self.stop_requested = True
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            if idle and child is not self.children[0]:
                child.signal(signal.SIGKILL, whole_group=True)
            else:
                child.signal(signal.SIGTERM)
        deadline = time.monotonic() + self.STOP_GRACE
        clean = True
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.signal(signal.SIGKILL, whole_group=True)
                child.process.wait()
                self.announce(f"  {child.name} did not stop within {self.STOP_GRACE:.0f} s: killed")
                clean = False
                continue
            # The worker's pool processes leave with their parent; give them a moment, then make sure.
            for _ in range(20):
                if not child.group_alive():
                    break
                time.sleep(0.1)
            else:
                child.signal(signal.SIGKILL, whole_group=True)
            code = child.process.returncode
            if child not in running and child.restart_at is not None:
                continue  # dead and backing off: nothing to stop, and no failure of this stop
            # uvicorn re-raises the SIGTERM it handled once it has shut down: that is a clean stop too.
            if code not in (0, -signal.SIGTERM) and not (idle and code == -signal.SIGKILL):
                clean = False
            if child in running:
                self.announce(f"  stopped {child.name} ({'idle' if idle and code == -signal.SIGKILL else describe_exit(code)})")
        return clean


def describe_exit(code: int) -> str:
    if code < 0:
        return f"by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UsageError(f"cannot listen on {host}:{port} ({error.strerror}); is Arena already running? choose another --port") from None


def _redact(url: str) -> str:
    """A database URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url

