"""Fixtures for the service tests: the real API (uvicorn) and real Celery worker processes.

Two modes, as in production:
- embedded: SQLite database and Kombu's SQLAlchemy broker on SQLite, in a temporary directory;
- production: PostgreSQL (a fresh database per session, dropped afterwards) and Redis (an empty
  database number, flushed afterwards). Skipped when PostgreSQL or Redis is not reachable.

The lifecycle timings are shrunk (heartbeat 0.5 s, stale after 3 s, reconcile every second) so a
killed worker is noticed in seconds rather than a minute.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
POSTGRES_ADMIN_URL = os.environ.get("ARENA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ARENA_TEST_REDIS", "redis://127.0.0.1:6379")
FAST_LIFECYCLE = {
    "ARENA_HEARTBEAT_SECONDS": "0.5",
    "ARENA_STALE_AFTER_SECONDS": "3",
    "ARENA_RECONCILE_SECONDS": "1",
    "ARENA_REQUEUE_AFTER_SECONDS": "4",
}
SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL") + tuple(k for k in os.environ if k.startswith("ARENA_"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A CLI mistake: exit code 2, one line on stderr starting "arena: ", no traceback, these words."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("arena: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def wait_for(predicate, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class Service:
    """One API process and any number of worker processes sharing one database and broker."""

    def __init__(self, mode: str, env: dict, data_dir: Path):
        self.mode = mode
        self.env = env
        self.data_dir = data_dir
        self.database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'arena.db'}"
        self.api: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.worker_logs: list[Path] = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.base_url, timeout=30)

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen:
        handle = open(log, "ab")
        # A session of its own, so SIGKILL can take the whole worker (parent and pool children).
        return subprocess.Popen(args, cwd=REPO_ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def start_api(self) -> None:
        log = self.data_dir / "api.log"
        self.api = self._spawn([PYTHON, "-m", "uvicorn", "arena.service.app:app", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"], log)

        def healthy():
            if self.api.poll() is not None:
                raise AssertionError(f"the API exited:\n{log.read_text()[-3000:]}")
            try:
                return self.client.get("/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, message="the API to answer /health")

    def start_worker(self, queues: str = "backprop,ga,cmaes", concurrency: int = 2) -> subprocess.Popen:
        index = len(self.workers)
        log = self.data_dir / f"worker-{index}.log"
        worker = self._spawn(
            [PYTHON, "-m", "celery", "-A", "arena.workers.app", "worker", "-Q", queues, "-c", str(concurrency),
             "-n", f"test{index}-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
            log,
        )
        self.workers.append(worker)
        self.worker_logs.append(log)

        def ready():
            if worker.poll() is not None:
                raise AssertionError(f"the worker exited:\n{log.read_text()[-3000:]}")
            return " ready." in log.read_text(errors="replace")

        wait_for(ready, 60, message="the worker to be ready")
        return worker

    def kill_worker(self, worker: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children at once: no warm shutdown, no acknowledgement."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)

    def stop(self) -> None:
        for process in [*self.workers, self.api]:
            if process is not None and process.poll() is None:
                # Workers: SIGKILL, as even Celery's cold shutdown takes 5-7 s; the broker and the
                # database are thrown away with the test session anyway.
                os.killpg(process.pid, signal.SIGTERM if process is self.api else signal.SIGKILL)
        for process in [*self.workers, self.api]:
            if process is None:
                continue
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.client.close()

    def worker_log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.worker_logs)

    # --- HTTP helpers ---

    def submit(self, payload: dict) -> dict:
        response = self.client.post("/jobs", json=payload)
        assert response.status_code == 202, response.text
        return response.json()

    def job(self, job_id: int) -> dict:
        response = self.client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_job(self, job_id: int, timeout: float = 60) -> dict:
        def finished():
            job = self.job(job_id)
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        try:
            return wait_for(finished, timeout, interval=0.3, message=f"job {job_id} to finish")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.diagnosis(job_id)}") from None

    def diagnosis(self, job_id: int | None = None) -> str:
        """What a test that timed out waiting for the service should print: the job's runs, whether each
        process is alive, and the tail of each worker's log (a hang in CI is otherwise a bare timeout)."""
        lines = []
        if job_id is not None:
            try:
                runs = self.job(job_id)["runs"]
                lines.append("runs: " + ", ".join(f"{r['id']}:{r['status']}@{r.get('progress_evaluations')}" for r in runs))
            except Exception as error:  # noqa: BLE001 (a diagnosis must not hide the failure)
                lines.append(f"runs: unavailable ({error})")
        for name, process in [("api", self.api), *((f"worker-{i}", w) for i, w in enumerate(self.workers))]:
            if process is not None:
                lines.append(f"{name}: pid {process.pid}, {'alive' if process.poll() is None else f'exited {process.returncode}'}")
        for log in self.worker_logs:
            tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
            lines.append(f"--- {log.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(lines)


def _clean_env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(FAST_LIFECYCLE)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _postgres_database():
    """Create a fresh PostgreSQL database; returns (url, drop function)."""
    import psycopg

    name = f"arena_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


def _redis_database():
    """An empty Redis database number (another test session may be using the others)."""
    import redis

    for number in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_URL}/{number}")
        if client.dbsize() == 0:
            client.set("arena-test-claim", os.getpid())  # not empty any more: a concurrent session skips it
            return f"{REDIS_URL}/{number}", client.flushdb
    pytest.skip("no empty Redis database number")


def _production_available() -> bool:
    from urllib.parse import urlparse

    pg, rd = urlparse(POSTGRES_ADMIN_URL.replace("+psycopg", "")), urlparse(REDIS_URL)
    return reachable(pg.hostname, pg.port or 5432) and reachable(rd.hostname, rd.port or 6379)


def _require_production():
    if not _production_available():
        pytest.skip("PostgreSQL or Redis is not reachable")


@pytest.fixture(scope="session")
def make_database(tmp_path_factory):
    """make_database("sqlite" | "postgresql") -> the URL of a fresh, empty database (dropped at the end)."""
    drops = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'arena.db'}"
        _require_production()
        url, drop = _postgres_database()
        drops.append(drop)
        return url

    yield make
    from arena.store.db import dispose_engines

    dispose_engines()
    for drop in drops:
        drop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_database(request, make_database):
    """A database at the head revision, in each backend, shared by a session's tests (each makes its own jobs)."""
    from arena.store.db import run_migrations

    url = make_database(request.param)
    run_migrations(url)
    return url


def _running_service(request, tmp_path_factory, mode: str):
    """Start an API and one worker (2 processes, every queue) in `mode`; yields the handle, stops it after."""
    data_dir = tmp_path_factory.mktemp(f"arena-{mode}")
    cleanups = []
    if mode == "embedded":
        env = _clean_env({"ARENA_DATA_DIR": str(data_dir)})
    else:
        database_url = request.getfixturevalue("make_database")("postgresql")
        broker_url, flush = _redis_database()
        cleanups.append(flush)
        env = _clean_env({"ARENA_DATA_DIR": str(data_dir), "DATABASE_URL": database_url, "BROKER_URL": broker_url})
    handle = Service(mode, env, data_dir)
    try:
        handle.start_api()
        handle.start_worker()
        yield handle
    finally:
        handle.stop()
        for cleanup in cleanups:
            cleanup()


@pytest.fixture(scope="session", params=["embedded", "production"])
def service(request, tmp_path_factory):
    """The API and one worker (2 processes, every queue), in each mode, shared by a session's tests."""
    yield from _running_service(request, tmp_path_factory, request.param)


@pytest.fixture(scope="module", params=["embedded", "production"])
def own_service(request, tmp_path_factory):
    """A service of the module's own, in each mode: for tests that kill or restart its processes."""
    yield from _running_service(request, tmp_path_factory, request.param)


# --- a service that asks for API keys (tests/test_service_auth.py) -----------------------------------

KEYED_SETTINGS = {
    "ARENA_AUTH": "keys",
    "ARENA_READS": "keys",
    # A small burst, so the rate limit is reached in a few requests (each test uses keys of its own).
    "ARENA_KEY_WRITE_BURST": "5",
    "ARENA_KEY_WRITES_PER_MINUTE": "6",
}


@pytest.fixture(scope="session")
def keyed_service(tmp_path_factory):
    """The API alone (no worker: submitted runs stay queued, so quotas are exact), embedded, with
    ARENA_AUTH=keys. Keys are made with the `arena keys` command against its database."""
    data_dir = tmp_path_factory.mktemp("arena-keyed")
    handle = Service("embedded", _clean_env({"ARENA_DATA_DIR": str(data_dir), **KEYED_SETTINGS}), data_dir)
    try:
        handle.start_api()
        yield handle
    finally:
        handle.stop()
