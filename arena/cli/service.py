"""Service commands: run the service (`up`, `api`, `worker`, `migrate`) and use it (`submit`, `status`,
`leaderboard`, `demo`).

The client commands speak HTTP to the API (httpx), never to the database, so they work the same against
`arena up` on this machine and against a `docker compose` deployment elsewhere. Every failure a user can
cause (service unreachable, a refused job, an unknown id) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from arena.cli import UsageError
from arena.errors import ArenaError
from arena.methods import METHODS, parse_value

DEFAULT_URL = "http://127.0.0.1:8000"
QUEUES = METHODS  # one Celery queue per method: "backprop" and "ga"
FINISHED = ("succeeded", "failed", "cancelled")  # run and job states that will not change again


def register(commands) -> None:
    _register_server_commands(commands)
    _register_client_commands(commands)


# --- running the service ----------------------------------------------------------------------------


def _register_server_commands(commands) -> None:
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
    migrate.set_defaults(handler=migrate_command)


def _settings(data_dir: str | None = None):
    """The service settings, after pointing ARENA_DATA_DIR at `data_dir` (an absolute path) if given.

    Children started by `arena up` inherit the environment, so they all read the same data directory.
    """
    if data_dir is not None:
        os.environ["ARENA_DATA_DIR"] = str(Path(data_dir).resolve())
    from pydantic import ValidationError

    from arena.service.settings import Settings

    try:
        return Settings()  # not the cached get_settings(): the environment may have changed just above
    except ValidationError as error:  # a bad environment variable: name it and say why
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        detail = f"{where}: {message} (got {first['input']!r})" if where else message
        raise UsageError(f"bad service configuration: {detail}") from None


def migrate_command(args) -> int:
    settings = _settings()
    _migrate(settings)
    print(f"database is up to date: {_redact(settings.database_url)}")
    return 0


def _migrate(settings) -> None:
    from arena.service.db import run_migrations

    if settings.database_url.startswith("sqlite"):
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    try:
        run_migrations(settings.database_url)
    except ArenaError:
        raise
    except Exception as error:  # unreachable server, bad credentials...: say which database, briefly
        raise UsageError(f"cannot migrate {_redact(settings.database_url)}: {_first_line(error)}") from None


def api_command(args) -> int:
    import uvicorn

    settings = _settings()
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    uvicorn.run("arena.service.api:app", host=host, port=port, log_level="info", proxy_headers=True)
    return 0


def worker_command(args) -> int:
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
    from arena.workers.celery_app import app

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
    settings = _settings(args.data_dir)
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    service = LocalService(settings, host, port)
    service.start()
    print(f"Arena is up at {service.url}  (API docs: {service.url}/docs)")
    print(f"data and logs in {settings.data_dir}; Ctrl-C stops everything")
    return service.supervise_until_stopped()


@dataclass
class Child:
    """One supervised process: its command, its log file, and when it was (re)started."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, env: dict) -> None:
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

    A child that dies is restarted; one that dies `MAX_RESTARTS` times within `RESTART_WINDOW` seconds
    stops everything (it would only keep failing: a port in use, a broken database...). `stop()` asks each
    child to finish (SIGTERM: uvicorn closes connections, a Celery worker finishes its current run), and
    kills whatever is still running after `STOP_GRACE` seconds; a killed run is re-queued by the reconciler.
    """

    MAX_RESTARTS = 3
    RESTART_WINDOW = 60.0
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
        """Restart a child that died; stop everything if one keeps dying."""
        for child in self.children:
            if child.alive() or self.stop_requested:
                continue
            code = child.process.returncode
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < self.RESTART_WINDOW] + [now]
            if len(child.restarts) > self.MAX_RESTARTS:
                child.signal(signal.SIGKILL, whole_group=True)
                self.announce(f"arena: {child.name} exited ({describe_exit(code)}) after {self.MAX_RESTARTS} restarts in {self.RESTART_WINDOW:.0f} s; its log ends:")
                self.announce(child.log_tail())
                self.stop()
                raise ServiceFailed(f"{child.name} keeps failing ({describe_exit(code)}); stopped everything. Log: {child.log_path}")
            self.announce(f"arena: {child.name} exited ({describe_exit(code)}); restarting it ({len(child.restarts)}/{self.MAX_RESTARTS})")
            child.signal(signal.SIGKILL, whole_group=True)  # a killed worker's pool processes would linger
            self._start(child)

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

    def stop(self) -> bool:
        """Stop every child; True if each exited by itself within the grace period."""
        self.stop_requested = True
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
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
            # uvicorn re-raises the SIGTERM it handled once it has shut down: that is a clean stop too.
            if code not in (0, -signal.SIGTERM):
                clean = False
            if child in running:
                self.announce(f"  stopped {child.name} ({describe_exit(code)})")
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


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# --- using the service ------------------------------------------------------------------------------


def _register_client_commands(commands) -> None:
    def add_url(parser) -> None:
        parser.add_argument("--url", default=None, help=f"the Arena API (default: ARENA_URL or {DEFAULT_URL})")

    submit = commands.add_parser(
        "submit",
        help="submit a job: both methods on one task, several seeds, one budget",
        description="Submit a job to the service and print its id. Per-method settings: --set ga.population_size=100.",
    )
    submit.add_argument("--task", required=True, help="task name (see `arena tasks`)")
    submit.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default: {','.join(METHODS)})")
    seeds = submit.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None, help="number of seeds (seeds 0..N-1; default: the service's)")
    seeds.add_argument("--seed-list", default=None, help="explicit seeds, comma-separated: 1,2,3")
    submit.add_argument("--evaluations", type=int, default=None, help="evaluation budget per run (default: the task's)")
    submit.add_argument("--seconds", type=float, default=None, help="time budget per run in seconds (default: the task's)")
    submit.add_argument("--no-stop-on-solve", action="store_true", help="use the whole budget even once solved")
    submit.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD.KEY=VALUE", help="a method setting, repeatable")
    submit.add_argument("--hidden", default=None, help="hidden layer sizes, comma-separated: 8,8 (default: the task's)")
    submit.add_argument("--track", default=None, metavar="NAME|FILE.json", help="car tasks: a built-in track or a JSON file {\"points\": [[x, y], ...], \"width\": w}")
    submit.add_argument("--wait", action="store_true", help="show progress until the job finishes")
    submit.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_url(submit)
    submit.set_defaults(handler=submit_command)

    status = commands.add_parser("status", help="a job's state and each run's progress or result")
    status.add_argument("job", help="job id")
    status.add_argument("--json", action="store_true", help="print the API's JSON")
    add_url(status)
    status.set_defaults(handler=status_command)

    board = commands.add_parser("leaderboard", help="per task: one row per method and configuration, over all its runs")
    board.add_argument("--task", required=True, help="task name")
    board.add_argument("--json", action="store_true", help="print the API's JSON")
    add_url(board)
    board.set_defaults(handler=leaderboard_command)

    demo = commands.add_parser(
        "demo",
        help="compare both methods on every small task and print the leaderboards (starts the service if needed)",
        description="Uses the service at --url if it answers; otherwise starts the embedded one (like `arena up`), "
        "and stops it at the end.",
    )
    demo.add_argument("--seeds", type=int, default=None, help="seeds per task (default: a few, so the demo takes minutes)")
    demo.add_argument("--data-dir", default=None, help="for the embedded service (default: ARENA_DATA_DIR or var)")
    demo.add_argument("--port", type=int, default=None, help="port of the embedded service, if started (default: the one in --url)")
    add_url(demo)
    demo.set_defaults(handler=demo_command)


class ServiceClient:
    """The HTTP API, with its failures turned into one-line errors."""

    def __init__(self, url: str | None = None, timeout: float = 30.0):
        import httpx

        self.url = (url or os.environ.get("ARENA_URL") or DEFAULT_URL).rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)

    def get(self, path: str, **params):
        return self._request("GET", path, params=params or None)

    def post(self, path: str, body: dict | None = None):
        return self._request("POST", path, json=body)

    def health(self) -> dict | None:
        """GET /health's answer (also when degraded, 503), or None when nothing answers."""
        import httpx

        try:
            response = self.http.get("/health", timeout=2.0)
            return response.json()
        except (httpx.HTTPError, ValueError):
            return None

    def _request(self, method: str, path: str, **kwargs):
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            reason = _first_line(error) if str(error) else type(error).__name__
            raise UsageError(f"cannot reach the Arena service at {self.url} ({reason}); start it with `arena up`, or pass --url / set ARENA_URL") from None
        if response.status_code < 400:
            return response.json()
        detail = _error_detail(response)
        if response.status_code == 404:
            raise UsageError(detail or f"not found: {path}")
        if response.status_code == 422:
            raise UsageError(f"refused: {detail}")
        raise UsageError(f"the service answered {response.status_code} to {method} {path}: {detail}")


def _error_detail(response) -> str:
    """One line from an error response: FastAPI's validation list, or our {field, message}, or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else ""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        message = detail.get("message") or detail.get("msg") or json.dumps(detail)
        where = detail.get("field")
        return f"{where}: {message}" if where and where not in message else message
    if isinstance(detail, list):  # FastAPI: [{"loc": ["body", "budget", "evaluations"], "msg": "..."}]
        parts = []
        for item in detail:
            if isinstance(item, dict):
                location = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                message = item.get("msg") or item.get("message") or ""
                parts.append(f"{location}: {message}" if location else message)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return json.dumps(detail)


def build_job(args) -> dict:
    """The POST /jobs body from `arena submit` options, checked locally first.

    The same validation (arena.runspec.resolve) runs in the API; doing it here too gives the same
    message before any network round trip, and works while the service is down.
    """
    from arena.runspec import check_seed, resolve
    from arena.tasks import task_info

    info = task_info(args.task)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise UsageError("--methods needs at least one method")
    settings: dict[str, dict] = {}
    for item in args.settings:
        method, key, value = _parse_setting(item)
        settings.setdefault(method, {})[key] = value
    for method in settings:
        if method not in methods:
            raise UsageError(f"--set {method}.…: {method} is not among --methods {','.join(methods)}")

    body: dict = {"task": info.name, "methods": methods}
    if args.seed_list is not None:
        try:
            seeds = [check_seed(int(s)) for s in args.seed_list.split(",") if s.strip()]
        except ValueError:
            raise UsageError(f"--seed-list must be comma-separated integers, got {args.seed_list!r}") from None
        if not seeds:
            raise UsageError("--seed-list needs at least one seed")
        body["seeds"] = seeds
    elif args.seeds is not None:
        if args.seeds < 1:
            raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
        body["seeds"] = args.seeds
    if args.evaluations is not None or args.seconds is not None or args.no_stop_on_solve:
        default = info.default_budget
        explicit_limit = args.evaluations is not None or args.seconds is not None
        body["budget"] = {
            # Giving one limit replaces the task's default budget; --no-stop-on-solve alone keeps its limits.
            "evaluations": args.evaluations if explicit_limit else default.evaluations,
            "seconds": args.seconds if explicit_limit else default.seconds,
            "stop_on_solve": not args.no_stop_on_solve,
        }
    if args.hidden is not None:
        body["architecture"] = info.default_architecture.with_hidden(args.hidden).to_dict()
    if args.track is not None:
        from arena.cli.train import load_track  # the same NAME|FILE.json rule as `arena train --track`

        body["task_options"] = load_track(args.track)
    for method, values in settings.items():
        body[method] = values
    for method in methods:
        resolve(info.name, method, body.get("budget"), settings.get(method), body.get("architecture"), body.get("task_options"))
    return body


def _parse_setting(item: str) -> tuple[str, str, object]:
    name, equals, text = item.partition("=")
    method, dot, key = name.strip().partition(".")
    if not equals or not dot or not key or not text.strip():
        raise UsageError(f"--set wants METHOD.KEY=VALUE (e.g. ga.population_size=100), got {item!r}")
    if method not in METHODS:
        raise UsageError(f"--set {item!r}: unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    return method, key.strip(), parse_value(text.strip())


def submit_command(args) -> int:
    body = build_job(args)
    client = ServiceClient(args.url)
    created = client.post("/jobs", body)
    job_id = created["job_id"]
    if not args.wait:
        print(json.dumps(created, indent=2) if args.json else job_id)
        return 0
    if not args.json:
        print(f"job {job_id}: {body['task']}, {len(created['run_ids'])} runs")
    job = wait_for_jobs(client, [job_id], show_progress=not args.json)[0]
    if args.json:
        print(json.dumps(job, indent=2))
    else:
        print(format_runs(job))
    return 0 if job.get("status") == "succeeded" else 1


def status_command(args) -> int:
    job = ServiceClient(args.url).get(f"/jobs/{args.job}")
    if args.json:
        print(json.dumps(job, indent=2))
    else:
        print(f"job {job.get('id', args.job)}: {job.get('task', '?')}, {job.get('status', '?')}")
        print(format_runs(job))
    return 0


def leaderboard_command(args) -> int:
    board = ServiceClient(args.url).get("/leaderboard", task=args.task)
    if args.json:
        print(json.dumps(board, indent=2))
    else:
        print(format_leaderboard(board))
    return 0


# --- waiting and progress ---------------------------------------------------------------------------


def wait_for_jobs(client: ServiceClient, job_ids: list[str], show_progress: bool = True, poll_seconds: float = 0.5) -> list[dict]:
    """Poll until every job is finished; draw one progress bar per job and method meanwhile."""
    display = ProgressDisplay(sys.stdout) if show_progress else None
    while True:
        jobs = [client.get(f"/jobs/{job_id}") for job_id in job_ids]
        if display:
            display.update(jobs)
        if all(job.get("status") in FINISHED for job in jobs):
            if display:
                display.finish()
            return jobs
        time.sleep(poll_seconds)


def job_budget(job: dict) -> dict:
    """The budget every run of a job has: as submitted, or else the task's default."""
    budget = (job.get("request") or {}).get("budget")
    if budget:
        return budget
    try:
        from arena.tasks import task_info

        return task_info(job.get("task")).default_budget.to_dict()
    except ArenaError:  # a task this client does not know (a newer server): no bar, only counts
        return {}


def run_fraction(run: dict, budget: dict) -> float:
    """How far a run is, 0..1: finished runs are done; running ones by their share of the budget."""
    if run.get("status") in FINISHED:
        return 1.0
    fractions = []
    if budget.get("evaluations") and run.get("progress_evaluations") is not None:
        fractions.append(run["progress_evaluations"] / budget["evaluations"])
    if budget.get("seconds") and run.get("progress_seconds") is not None:
        fractions.append(run["progress_seconds"] / budget["seconds"])
    return min(max(fractions, default=0.0), 0.99)


def bar(fraction: float, width: int) -> str:
    filled = int(round(fraction * width))
    return "#" * filled + "-" * (width - filled)


class ProgressDisplay:
    """One line per job: per method a bar, runs finished/total and runs solved.

    On a terminal the lines are redrawn in place (or, when they would not fit, one line for all jobs).
    Elsewhere (a log, a pipe, a test) a job's line is printed when its counts change, or, with several
    jobs, when it finishes, so the output stays readable as plain text.
    """

    BAR_WIDTH = 16

    def __init__(self, stream):
        self.stream = stream
        self.interactive = stream.isatty()
        self.drawn_lines = 0
        self.last_printed: dict[object, str] = {}

    @staticmethod
    def method_counts(runs: list[dict], budget: dict) -> dict[str, tuple[float, int, int, int, int]]:
        """{method: (fraction done, finished, total, solved, failed)}"""
        counts = {}
        for method in dict.fromkeys(r.get("method") for r in runs):
            mine = [r for r in runs if r.get("method") == method]
            counts[method] = (
                sum(run_fraction(r, budget) for r in mine) / max(len(mine), 1),
                sum(r.get("status") in FINISHED for r in mine),
                len(mine),
                sum(bool(r.get("solved")) for r in mine),
                sum(r.get("status") == "failed" for r in mine),
            )
        return counts

    def describe(self, label: str, counts: dict) -> str:
        parts = []
        for method, (fraction, done, total, solved, failed) in counts.items():
            text = f"{method} [{bar(fraction, self.BAR_WIDTH)}] {done}/{total} runs, {solved} solved"
            parts.append(text + (f", {failed} failed" if failed else ""))
        return f"{label:<12} " + "   ".join(parts)

    def update(self, jobs: list[dict]) -> None:
        rows = [(job.get("id"), job.get("status") in FINISHED, self.describe(job.get("task", "?"), self.method_counts(job.get("runs", []), job_budget(job)))) for job in jobs]
        if self.interactive:
            import shutil

            if len(rows) >= shutil.get_terminal_size().lines - 1:  # would scroll: one line for everything
                every_run = [run for job in jobs for run in job.get("runs", [])]
                finished = sum(done for _, done, _ in rows)
                rows = [(None, False, self.describe(f"{finished}/{len(jobs)} jobs", self.method_counts(every_run, {})))]
            if self.drawn_lines:
                self.stream.write(f"\x1b[{self.drawn_lines}F")  # back to the first line drawn last time
            for _, _, text in rows:
                self.stream.write(f"\x1b[2K{text}\n")
            self.drawn_lines = len(rows)
        else:
            for key, finished, text in rows:
                if self.last_printed.get(key) != text and (finished or len(rows) == 1):
                    self.last_printed[key] = text
                    self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        self.drawn_lines = 0


# --- tables -----------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list], right: set[int] | None = None) -> str:
    """A plain-text table; columns in `right` (numbers) are right-aligned."""
    right = right if right is not None else set()
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def number(value, digits: int = 4) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:  # evaluations (medians are floats): 15,690 rather than 1.569e+04
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def format_runs(job: dict) -> str:
    """One row per run: its result once finished, its progress (best so far) while running."""
    rows = []
    for run in job.get("runs", []):
        finished = run.get("status") in FINISHED
        rows.append(
            [
                run.get("id"),
                run.get("method"),
                run.get("seed"),
                run.get("status"),
                number(run.get("score") if finished else run.get("progress_score")),
                number(run.get("solved")),
                number(run.get("evaluations") if finished else run.get("progress_evaluations")),
                number(run.get("seconds") if finished else run.get("progress_seconds"), 3),
                number(run.get("evaluations_to_solve")),
                _first_line(RuntimeError(run["error"])) if run.get("error") else None,
            ]
        )
    headers = ["run", "method", "seed", "status", "score", "solved", "evaluations", "seconds", "evals to solve", "error"]
    if not any(row[-1] for row in rows):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return table(headers, rows, right={0, 2, 4, 6, 7, 8})


def format_leaderboard(board: dict) -> str:
    """GET /leaderboard as a table: one row per (method, configuration), best first."""
    task = board.get("task", "?")
    direction = "higher" if board.get("higher_is_better") else "lower"
    lines = [f"{task}: {board.get('score_name', 'score')} ({direction} is better)"]
    entries = board.get("entries", [])
    if not entries:
        return lines[0] + "\n(no finished runs yet)"
    rows = []
    for entry in entries:
        rate, interval = entry.get("success_rate"), entry.get("success_rate_ci")
        solved = f"{entry.get('solved', 0)}/{entry.get('runs', 0)}"
        if rate is not None:
            solved += f"  {rate:.0%}" + (f" [{interval[0]:.0%}-{interval[1]:.0%}]" if interval else "")
        evals = entry.get("evaluations_to_solve") or {}
        seconds = entry.get("seconds_to_solve") or {}
        rows.append(
            [
                entry.get("rank"),
                entry.get("method"),
                describe_configuration(entry, task),
                solved,
                f"{number(evals['median'])} ({number(evals['q1'])}-{number(evals['q3'])})" if evals else None,
                number(seconds.get("median"), 3),
                number(entry.get("median_score")),
            ]
        )
    headers = ["#", "method", "configuration", "solved (95% CI)", "evals to solve: median (IQR)", "s to solve", "median score"]
    return lines[0] + "\n" + table(headers, rows, right={0, 5, 6})


def describe_configuration(entry: dict, task: str) -> str:
    """A configuration in a few words: the architecture, the budget, and the settings that differ from the
    task's defaults (most rows use the defaults, and 13 GA settings would not fit on a line)."""
    parts = []
    architecture = entry.get("architecture")
    if architecture:
        sizes = [architecture["input_size"], *architecture["hidden_sizes"], architecture["output_size"]]
        parts.append("-".join(map(str, sizes)))
    budget = entry.get("budget") or {}
    limits = [f"{number(budget['evaluations'])} evals" if budget.get("evaluations") else "", f"{budget['seconds']:g} s" if budget.get("seconds") else ""]
    if any(limits):
        parts.append("/".join(l for l in limits if l) + ("" if budget.get("stop_on_solve", True) else " full"))
    parts.extend(f"{key}={value}" for key, value in _non_default_settings(entry, task).items())
    if entry.get("task_options"):
        parts.append("options=" + json.dumps(entry["task_options"], sort_keys=True)[:40])
    return " ".join(parts)


def _non_default_settings(entry: dict, task: str) -> dict:
    settings = entry.get("settings") or {}
    try:
        from arena.methods import make_config
        from arena.tasks import task_info

        info = task_info(task)
        defaults = dataclasses.asdict(make_config(entry["method"], info.kind, info.method_defaults.get(entry["method"])))
    except (ArenaError, KeyError):
        return {}
    return {key: value for key, value in settings.items() if key in defaults and defaults[key] != value}


# --- the demo ---------------------------------------------------------------------------------------

DEMO_FAMILIES = ("logic", "function")  # the small tasks: gates, parity, full adder, functions
DEMO_SEEDS = 3
DEMO_SECONDS = 2.0  # per run: with one worker per queue on two cores, the whole demo stays within minutes


def demo_command(args) -> int:
    from arena.tasks import TASKS

    seeds = args.seeds or DEMO_SEEDS
    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {seeds}")
    client = ServiceClient(args.url)
    service = None
    started = time.monotonic()
    health = client.health()
    if health is not None:
        if health.get("status") != "ok":
            raise UsageError(f"the Arena service at {client.url} is not healthy: database {health.get('database')}, broker {health.get('broker')}")
        print(f"using the Arena service at {client.url}")
    else:
        from urllib.parse import urlsplit

        parts = urlsplit(client.url)
        host = parts.hostname or "127.0.0.1"
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError(f"cannot reach the Arena service at {client.url}, and the demo starts a local one only for a local --url")
        settings = _settings(args.data_dir)
        port = args.port or parts.port or settings.api_port
        print(f"no service at {client.url}; starting one (data in {settings.data_dir})")
        service = LocalService(settings, "127.0.0.1", port)
    job_ids: list[int] = []
    try:
        if service is not None:
            service.start()
            client = ServiceClient(service.url)
        tasks = [info for info in TASKS.values() if info.family in DEMO_FAMILIES]
        for info in tasks:
            limits = info.default_budget
            budget = {"evaluations": limits.evaluations, "seconds": min(limits.seconds or DEMO_SECONDS, DEMO_SECONDS), "stop_on_solve": True}
            job_ids.append(client.post("/jobs", {"task": info.name, "seeds": seeds, "budget": budget})["job_id"])
        print(f"submitted {len(job_ids)} jobs ({len(tasks)} tasks x {len(METHODS)} methods x {seeds} seeds, at most {DEMO_SECONDS:g} s per run)")
        wait_for_jobs(client, job_ids)
        for info in tasks:
            print()
            print(format_leaderboard(client.get("/leaderboard", task=info.name)))
        print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    except KeyboardInterrupt:
        # Otherwise the runs not yet done would wait in the ledger and run at the next `arena up`.
        for job_id in job_ids:
            try:
                client.post(f"/jobs/{job_id}/cancel")
            except UsageError:
                pass
        raise
    finally:
        if service is not None:
            print("stopping the service the demo started...")
            service.stop()
    return 0
