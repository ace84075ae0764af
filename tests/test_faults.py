"""Faults against the real service (API, Celery workers, database and broker as processes): nothing is lost
or recorded twice, and recovery does not stall under CPU load.

- a pool child SIGKILLed, and a whole worker SIGKILLed, while two busy loops load both cores; a worker
  started after a kill with an hour-long reconciler period still finds the run at once (its start-up pass);
- the broker lost mid-job (production: a Redis server of the test's own, killed and restarted empty);
- the API SIGKILLed during a burst of 20 concurrent submissions;
- the re-send amplification case: 100 seeds queued, then a one-seed job;
- a worker of `arena up` that keeps dying: backed off, the API kept up;
- eight concurrent requests for one uncached trajectory picture: one render.

Every assertion is a count (attempts, "recorded" lines in the worker logs, "resent" totals, render
headers), never a wall-clock bound; the waits have generous timeouts, and recovery times are printed
(benchmarks/bench_recovery.py measures them, phase by phase). Last, the pieces of a quick recovery alone:
the embedded broker's doorbell, and the reconciler's pass timed for a heartbeat's staleness.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from datetime import timedelta

import httpx
import pytest

from arena.runspec import resolve
from arena.store import queries
from arena.store.db import session_scope
from arena.store.tables import utcnow

from conftest import PYTHON, REPO_ROOT, Service, _clean_env, free_port, reachable, wait_for

TERMINAL = ("succeeded", "failed", "cancelled")
UP_TIMEOUTS = "Timed out waiting for UP message"  # Celery's line when a new pool process starts too slowly


# --- helpers --------------------------------------------------------------------------------------


@contextlib.contextmanager
def cpu_load(processes: int = 2):
    """`processes` busy loops (one per core on the CI machine) for the duration."""
    loops = [subprocess.Popen([PYTHON, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
        for loop in loops:
            loop.wait(10)


def pool_children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (a Celery worker's pool processes)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def recorded(log: str, run_id: int) -> int:
    """How many times run `run_id` was recorded (one line per completion that changed the ledger)."""
    return len(re.findall(rf"run {run_id} attempt \d+ recorded", log))


def resent_total(log: str) -> int:
    return sum(int(n) for n in re.findall(r"reconciler: \{[^}]*'resent': (\d+)", log))


def run(service: Service, run_id: int) -> dict:
    response = service.client.get(f"/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def mid_run(service: Service, run_id: int) -> dict:
    def running():
        current = run(service, run_id)
        return current["status"] == "running" and (current["progress_evaluations"] or 0) > 0 and current

    return wait_for(running, 90, message=f"run {run_id} to be mid-way")


def assert_finished_once(service: Service, job: dict) -> None:
    log = service.worker_log_text()
    for each in job["runs"]:
        assert each["status"] in TERMINAL, each
        assert recorded(log, each["id"]) == 1, (each["id"], each["status"], each["attempts"])


# --- SIGKILL under load ---------------------------------------------------------------------------


def test_a_killed_pool_child_under_load_is_replaced_and_the_run_finishes_once(own_service):
    service = own_service
    worker = next(w for w in service.workers if w.poll() is None)
    log_path = service.worker_logs[service.workers.index(worker)]
    timeouts_before = log_path.read_text(errors="replace").count(UP_TIMEOUTS)
    created = service.submit({"task": "sine", "methods": ["backprop"], "seeds": [21], "budget": {"seconds": 4, "stop_on_solve": False}})
    run_id = created["run_ids"][0]
    with cpu_load(2):
        mid_run(service, run_id)
        children = pool_children(worker.pid)
        assert children, "the worker has no pool process"
        for child in children:  # the run's process among them
            os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: len(set(pool_children(worker.pid)) - set(children)) >= len(children), 60, message="replacement pool processes")
        job = service.wait_job(created["job_id"], timeout=120)
        recovered = time.monotonic() - killed_at
    assert worker.poll() is None  # the worker itself survived
    assert job["status"] == "succeeded", job
    current = run(service, run_id)
    assert current["attempts"] >= 2 and current["stopped"] == "budget"
    assert_finished_once(service, job)
    # Replacements started within Celery's start-up timeout: none was killed for being slow.
    assert log_path.read_text(errors="replace").count(UP_TIMEOUTS) == timeouts_before
    print(f"[{service.mode}] pool child killed under load: run finished {recovered:.1f} s later, attempts {current['attempts']}")


def test_a_killed_worker_under_load_is_recovered_by_a_new_one_and_the_run_finishes_once(own_service):
    service = own_service
    created = service.submit({"task": "sine", "methods": ["backprop"], "seeds": [22], "budget": {"seconds": 4, "stop_on_solve": False}})
    run_id = created["run_ids"][0]
    with cpu_load(2):
        before = mid_run(service, run_id)
        victim = next(w for w in service.workers if w.poll() is None)
        service.kill_worker(victim)
        killed_at = time.monotonic()
        service.start_worker()
        job = service.wait_job(created["job_id"], timeout=120)
        recovered = time.monotonic() - killed_at
    assert job["status"] == "succeeded", job
    current = run(service, run_id)
    assert current["attempts"] >= 2 and current["worker"] != before["worker"]
    assert_finished_once(service, job)
    assert service.worker_log_text().count(UP_TIMEOUTS) == 0
    print(f"[{service.mode}] worker killed under load: run finished {recovered:.1f} s after the kill (new worker start-up included)")


def test_a_killed_workers_batch_is_resent_as_a_batch_and_keeps_its_configuration(own_service):
    """A batch whose worker was killed is re-sent as a batch (it was re-sent run by run: 30 runs took 164 s, and
    the recovered runs, trained alone, became a second leaderboard configuration beside the batched ones)."""
    service = own_service
    created = service.submit({"task": "xor", "methods": ["ga"], "seeds": 6, "budget": {"evaluations": 400_000, "stop_on_solve": False}})
    mid_run(service, created["run_ids"][0])
    victim = next(w for w in service.workers if w.poll() is None)
    service.kill_worker(victim)
    service.start_worker()
    job = service.wait_job(created["job_id"], timeout=180)
    assert job["status"] == "succeeded", job
    assert_finished_once(service, job)
    for ref in job["runs"]:
        current = run(service, ref["id"])
        assert current["attempts"] == 2, current  # every run of the killed batch ran again...
        assert current["metrics"]["batched"] > 1  # ...batched again, so in the batched configuration
        assert current["settings_hash"] == queries.batched_settings_hash(current["spec"])


def test_a_new_worker_reconciles_at_start_up_not_a_period_later(own_service):
    """The replacement's reconciler period is an hour here: only its pass at start-up (or the one it schedules
    for the moment the run's heartbeat turns stale) can find the killed worker's run. The staleness
    threshold is the suite's (3 s): nothing is presumed lost sooner than before."""
    service = own_service
    created = service.submit({"task": "sine", "methods": ["backprop"], "seeds": [23], "budget": {"seconds": 2, "stop_on_solve": False}})
    run_id = created["run_ids"][0]
    before = mid_run(service, run_id)
    service.kill_worker(next(w for w in service.workers if w.poll() is None))
    suite_env = service.env
    service.env = {**suite_env, "ARENA_RECONCILE_SECONDS": "3600"}
    try:
        hourly = service.start_worker()
    finally:
        service.env = suite_env
    hourly_log = service.worker_logs[service.workers.index(hourly)]
    try:
        job = service.wait_job(created["job_id"], timeout=120)
        assert job["status"] == "succeeded", job
        current = run(service, run_id)
        assert current["attempts"] == 2 and current["worker"] != before["worker"]
        assert_finished_once(service, job)
        assert "reconciler: {'requeued': 1" in hourly_log.read_text(errors="replace")  # requeued by the new worker
    finally:  # the module's other tests need a worker that reconciles every second
        service.start_worker()
        service.kill_worker(hourly)


# --- broker loss ----------------------------------------------------------------------------------


def _redis_server(port: int, data_dir: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for(lambda: reachable("127.0.0.1", port), 20, message="redis-server to listen")
    return server


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server to start")
def test_broker_loss_mid_job_loses_and_duplicates_nothing(make_database, tmp_path):
    """Production mode, with a Redis of the test's own (the shared one serves other sessions): killed while
    runs are running and queued, restarted empty (no persistence: every message is gone). Running runs
    record to the database; the reconciler re-sends the queued ones once the broker is back and empty.

    Not in embedded mode: its broker is a SQLite file in the same directory as the database, lost only
    with the database itself (the ledger), which no broker-side recovery is meant to survive."""
    database_url = make_database("postgresql")  # skips without PostgreSQL
    port = free_port()
    redis_server = _redis_server(port, tmp_path)
    env = _clean_env({"ARENA_DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "BROKER_URL": f"redis://127.0.0.1:{port}/0"})
    service = Service("production", env, tmp_path)
    try:
        service.start_api()
        service.start_worker()
        created = service.submit({"task": "xor", "methods": ["ga"], "seeds": 6, "budget": {"seconds": 3, "stop_on_solve": False}})
        mid_run(service, created["run_ids"][0])
        redis_server.kill()
        redis_server.wait(10)
        time.sleep(4)  # runs keep training (and record to the database) while the broker is away
        redis_server = _redis_server(port, tmp_path)  # empty: every queued message was lost
        job = service.wait_job(created["job_id"], timeout=180)
        assert job["status"] == "succeeded" and job["run_counts"] == {"succeeded": 6}, job
        assert_finished_once(service, job)
        assert resent_total(service.worker_log_text()) >= 1  # the lost messages were re-sent
        # And the service still takes work.
        again = service.wait_job(service.submit({"task": "xor", "methods": ["ga"], "seeds": 1, "budget": {"evaluations": 20_000}})["job_id"], 120)
        assert again["status"] == "succeeded"
    finally:
        service.stop()
        redis_server.kill()
        redis_server.wait(10)


# --- the API killed mid-burst ---------------------------------------------------------------------


def test_the_api_killed_mid_burst_loses_no_accepted_job(own_service):
    """20 concurrent POSTs, SIGKILL of the API after five answers: every 202 a client got is a job in
    the database with all its runs, every job in the database (accepted or not: a job may commit before
    its answer is lost) finishes, and each run is recorded once."""
    service = own_service
    last_id = _max_job_id(service)
    accepted: list[dict] = []
    failures: list[str] = []
    answered = threading.Semaphore(0)

    def post(seed: int):
        try:
            with httpx.Client(base_url=service.base_url, timeout=30) as client:
                response = client.post("/jobs", json={"task": "xor", "methods": ["ga"], "seeds": [100 + seed], "budget": {"evaluations": 20_000}})
            if response.status_code == 202:
                accepted.append(response.json())
                answered.release()
            else:
                failures.append(f"{response.status_code} {response.text[:200]}")
        except httpx.HTTPError as error:  # the API died under this request
            failures.append(type(error).__name__)

    threads = [threading.Thread(target=post, args=(seed,)) for seed in range(20)]
    for thread in threads:
        thread.start()
    for _ in range(5):  # a few answered, the rest in flight (some committed, their answers about to be lost)
        answered.acquire(timeout=30)
    os.killpg(service.api.pid, signal.SIGKILL)
    service.api.wait(10)
    for thread in threads:
        thread.join(60)
    assert accepted, failures
    assert all("Error" in failure or failure.startswith("5") for failure in failures), failures  # lost answers, not refusals
    service.start_api()

    for created in accepted:  # every 202: the job exists with all its runs
        job = service.job(created["job_id"])
        assert sorted(r["id"] for r in job["runs"]) == sorted(created["run_ids"])
    stored = _job_ids_after(service, last_id)
    assert {c["job_id"] for c in accepted} <= set(stored)
    for job_id in stored:  # including jobs committed whose answer (or message) was lost with the API
        job = service.wait_job(job_id, timeout=180)
        assert job["status"] == "succeeded" and len(job["runs"]) == 1, job
        assert_finished_once(service, job)
    print(f"[{service.mode}] API killed mid-burst: {len(accepted)} answered 202, {len(stored)} stored, {len(failures)} lost answers")


def _max_job_id(service: Service) -> int:
    jobs = service.client.get("/jobs", params={"limit": 1}).json()["jobs"]
    return jobs[0]["id"] if jobs else 0


def _job_ids_after(service: Service, last_id: int) -> list[int]:
    page = service.client.get("/jobs", params={"limit": 100}).json()["jobs"]
    return sorted(job["id"] for job in page if job["id"] > last_id)


# --- amplification --------------------------------------------------------------------------------


def test_a_hundred_queued_seeds_are_not_resent_and_a_one_seed_job_then_runs(own_service):
    service = own_service
    resent_before = resent_total(service.worker_log_text())
    created = service.submit({"task": "xor", "methods": ["ga"], "seeds": 100, "budget": {"evaluations": 5_000}})
    job = service.wait_job(created["job_id"], timeout=600)
    assert job["status"] == "succeeded" and len(job["runs"]) == 100
    assert all(r["attempts"] == 1 for r in job["runs"])
    submitted = time.monotonic()
    single = service.wait_job(service.submit({"task": "xor", "methods": ["ga"], "seeds": [5], "budget": {"evaluations": 5_000}})["job_id"], 120)
    waited = time.monotonic() - submitted
    assert single["status"] == "succeeded" and single["runs"][0]["attempts"] == 1
    assert resent_total(service.worker_log_text()) == resent_before  # not one needless re-send
    assert_finished_once(service, job)
    print(f"[{service.mode}] 100 seeds without a re-send; the next one-seed job finished {waited:.1f} s after its submission")


# --- `arena up`: a worker that keeps dying --------------------------------------------------------


def test_arena_up_backs_off_a_worker_that_keeps_dying_and_keeps_the_api_up(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL") and not k.startswith("ARENA_")}
    process = subprocess.Popen(
        [PYTHON, "-m", "arena", "up", "--data-dir", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**env, "PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: [lines.append(line.rstrip("\n")) for line in process.stdout], daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"

    def started_pids(name: str) -> list[int]:
        return [int(m.group(1)) for m in re.finditer(rf"started {name}\s+pid (\d+)", "\n".join(lines))]

    try:
        wait_for(lambda: any("Arena is up at" in line for line in lines), 120, message="arena up")
        for kill in range(4):  # three restarts at once, then the back-off
            pid = wait_for(lambda: len(started_pids("worker-ga")) > kill and started_pids("worker-ga")[-1], 30, message="a worker-ga start")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_for(lambda: sum("worker-ga exited" in line for line in lines) > kill, 30, message="the death announced")
        text = "\n".join(lines)
        assert "restarting it (3/3)" in text
        backing_off = next(line for line in lines if "backing off" in line)
        assert "worker-ga exited (by SIGKILL)" in backing_off and str(tmp_path / "logs" / "worker-ga.log") in backing_off, backing_off
        assert process.poll() is None, text  # the supervisor did not give up
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200  # and the API is up
        # After the back-off the worker is started again and serves its queue.
        wait_for(lambda: len(started_pids("worker-ga")) >= 5, 60, message="worker-ga restarted after its back-off")
        job = httpx.post(f"{url}/jobs", json={"task": "or", "methods": ["ga"], "seeds": 1, "budget": {"evaluations": 20_000}}, timeout=30).json()

        def finished():
            return httpx.get(f"{url}/jobs/{job['job_id']}", timeout=10).json()["status"] in TERMINAL

        wait_for(finished, 120, interval=0.5, message="a GA job after the back-off")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    reader.join(5)
    assert code == 0 and "stopped cleanly" in "\n".join(lines), "\n".join(lines)


# --- renders --------------------------------------------------------------------------------------


def test_eight_concurrent_requests_for_one_trajectory_start_one_render(own_service):
    service = own_service
    created = service.submit({"task": "car-oval", "methods": ["backprop"], "seeds": [3], "budget": {"seconds": 2, "stop_on_solve": False}})
    job = service.wait_job(created["job_id"], timeout=180)
    assert job["status"] == "succeeded", job
    run_id = created["run_ids"][0]
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(8)

    def get():
        with httpx.Client(base_url=service.base_url, timeout=300) as client:
            barrier.wait()
            answers.append(client.get(f"/runs/{run_id}/trajectory.png"))

    threads = [threading.Thread(target=get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(320)
    assert len(answers) == 8 and all(a.status_code == 200 and a.content.startswith(b"\x89PNG") for a in answers)
    hows = sorted(a.headers["x-arena-render"] for a in answers)
    assert hows.count("rendered") == 1, hows  # one child process for eight requests; the rest joined it (or hit the cache)
    assert len({a.content for a in answers}) == 1
    assert service.client.get(f"/runs/{run_id}/trajectory.png").headers["x-arena-render"] == "cached"


def test_render_cache_runs_one_render_per_key_and_at_most_two_at_once():
    """The helper alone: 8 threads on one key -> one render; 6 keys at once -> never more than 2 rendering."""
    from arena.service import renders

    cache = renders.RenderCache(size=16)
    running = peak = 0
    lock = threading.Lock()

    def slow(value: bytes):
        def render():
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.3)
            with lock:
                running -= 1
            return value

        return render

    results: list[tuple[bytes, str]] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("one", slow(b"x")))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.renders == 1 and sorted(how for _, how in results).count(renders.RENDERED) == 1
    assert {value for value, _ in results} == {b"x"}

    threads = [threading.Thread(target=cache.get, args=(key, slow(key.encode()))) for key in "abcdef"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.renders == 7 and peak == renders.RENDER_LIMIT

    def broken():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get("bad", broken)
    assert cache.get("bad", slow(b"fixed")) == (b"fixed", renders.RENDERED)  # a failure is not cached


# --- the pieces of a quick recovery, alone ----------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the doorbell uses Linux inotify")
def test_the_embedded_brokers_doorbell_wakes_its_queues_consumer_only(tmp_path):
    """A ring wakes a consumer waiting on that queue, even one rung between its poll and its wait, even from
    another process; a ring of another queue does not; a nudge (an acknowledgement) does; a doorbell file
    deleted under a waiting consumer is watched again at its next wait."""
    from arena.workers.embedded import Doorbell

    url = f"sqlite:///{tmp_path / 'broker.db'}"
    consumer, sender = Doorbell.for_broker(url), Doorbell.for_broker(url)
    assert consumer.wait(["ga"], 0.01) == "timeout"  # watches its queue from its first wait on
    assert consumer.path("ga").exists() and not consumer.path("backprop").exists()
    sender.ring("ga")  # before the consumer waits again: the kernel keeps the event
    assert consumer.wait(["ga"], 120) == "rung"
    sender.ring("backprop")  # no consumer of that queue: nothing happens
    assert consumer.wait(["ga"], 0.2) == "timeout"
    threading.Timer(0.2, consumer.nudge).start()
    assert consumer.wait(["ga"], 120) == "nudged"
    ring = f"from arena.workers.embedded import Doorbell; Doorbell.for_broker({url!r}).ring('ga')"
    subprocess.run([PYTHON, "-c", ring], check=True, cwd=REPO_ROOT)
    assert consumer.wait(["ga"], 120) == "rung"
    consumer.path("ga").unlink()  # the kernel drops the watch (someone cleaned the data directory)
    consumer.wait(["ga"], 0.2)  # reads that (and the unlink's own change of the file's link count)
    assert consumer.wait(["ga"], 0.01) == "timeout" and consumer.path("ga").exists()  # re-created, watched again
    sender.ring("ga")
    assert consumer.wait(["ga"], 120) == "rung"
    consumer.close()


class _Timer:
    """What the reconciler asks of a worker's timer, recorded."""

    def __init__(self):
        self.entries: list[list] = []  # [delay, cancelled]

    def call_after(self, delay, fun, args=(), priority=0):
        entry = [delay, False]
        self.entries.append(entry)

        class Ref:
            def cancel(self):
                entry[1] = True

        return Ref()


def test_the_reconciler_looks_again_when_the_oldest_heartbeat_turns_stale(make_database, monkeypatch):
    """After a pass, one more is scheduled for the moment the oldest running heartbeat turns stale (same
    threshold), if that comes before the next periodic pass; none while nothing runs, none for a run that
    is already stale (the periodic passes handle it: no busy loop), and never two at once."""
    from types import SimpleNamespace

    from arena.store.db import run_migrations
    from arena.store.settings import reset_settings
    from arena.store.tables import Run
    from arena.workers.reconcile import Reconciler, next_stale_in

    url = make_database("sqlite")
    run_migrations(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ARENA_STALE_AFTER_SECONDS", "30")
    monkeypatch.setenv("ARENA_RECONCILE_SECONDS", "300")
    reset_settings()
    try:
        spec = resolve("xor", "ga", {"evaluations": 10_000}).to_dict()
        with session_scope(url) as session:
            run_id = queries.create_job(session, "xor", [0], {"ga": spec}, {"task": "xor"}).runs[0].id
        worker = SimpleNamespace(timer=_Timer())
        reconciler = Reconciler.__new__(Reconciler)
        reconciler.early_ref = reconciler.early_at = None

        assert next_stale_in(30) is None  # queued, not running
        reconciler._schedule_early(worker)
        assert worker.timer.entries == []

        with session_scope(url) as session:
            session.get(Run, run_id).status, session.get(Run, run_id).heartbeat_at = "running", utcnow()
        delay = next_stale_in(30)
        assert 0 < delay <= 30
        reconciler._schedule_early(worker)
        assert len(worker.timer.entries) == 1 and 0 < worker.timer.entries[0][0] <= 30 + Reconciler.EARLY_MARGIN
        reconciler._schedule_early(worker)  # one is due already, no later
        assert len(worker.timer.entries) == 1 and worker.timer.entries[0][1] is False

        with session_scope(url) as session:
            session.get(Run, run_id).heartbeat_at = utcnow() - timedelta(seconds=100)
        assert next_stale_in(30) == 0
        reconciler.early_ref = reconciler.early_at = None
        reconciler._schedule_early(worker)
        assert len(worker.timer.entries) == 1  # stale already: the periodic pass's business

        monkeypatch.setenv("ARENA_RECONCILE_SECONDS", "5")  # the periodic pass comes first
        reset_settings()
        with session_scope(url) as session:
            session.get(Run, run_id).heartbeat_at = utcnow()
        reconciler._schedule_early(worker)
        assert len(worker.timer.entries) == 1
    finally:
        monkeypatch.undo()
        reset_settings()


class DatabaseLink:
    """A TCP link between a client and the real PostgreSQL that can be cut and restored: while cut, every
    connection through it is closed and new ones are dropped at once (what a database restart looks like
    from a worker), without touching the server the other tests share."""

    def __init__(self, host: str, port: int):
        import socket

        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.sockets: list = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self.sockets = []

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_a_finished_result_survives_a_database_outage_shorter_than_the_stale_threshold(make_database, monkeypatch):
    """A run that finishes while its database is unreachable keeps retrying its record until the stale
    threshold (after which the reconciler may run it again anyway). It retried 4 times, about 7 s: a 20 s
    PostgreSQL restart threw away every result that finished meanwhile. Here the link is cut for 10 s."""
    from sqlalchemy.engine import make_url

    from arena.store.db import dispose_engines, run_migrations
    from arena.store.settings import reset_settings
    from arena.store.tables import SUCCEEDED
    from arena.workers import worker

    url = make_database("postgresql")
    run_migrations(url)
    direct = make_url(url)
    link = DatabaseLink(direct.host or "127.0.0.1", direct.port or 5432)
    through_link = direct.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", through_link)
    monkeypatch.setenv("ARENA_STALE_AFTER_SECONDS", "30")
    reset_settings()
    try:
        spec = resolve("xor", "ga", {"evaluations": 10_000}).to_dict()
        with session_scope(through_link) as session:
            run_id = queries.create_job(session, "xor", [0], {"ga": spec}, {"task": "xor"}).runs[0].id
        with session_scope(through_link) as session:
            claim = queries.claim_run(session, run_id, "test@host", queries.seconds_ago(30), 3)
        assert claim is not None
        outcome: list[str] = []
        link.cut()
        recorder = threading.Thread(target=lambda: outcome.append(worker._record(claim, SUCCEEDED)))
        recorder.start()
        time.sleep(10)  # longer than the old retries (about 7 s), shorter than the stale threshold
        assert outcome == []  # still trying
        link.restore()
        recorder.join(60)
        assert outcome == [SUCCEEDED]
        with session_scope(url) as session:
            assert queries.get_run(session, run_id).status == SUCCEEDED
    finally:
        link.close()
        dispose_engines()
        monkeypatch.undo()
        reset_settings()


def test_counting_the_embedded_queues_returns_every_broker_connection(tmp_path):
    """The reconciler counts each queue's waiting messages on a connection of its own, from the worker's
    timer thread, every pass. Kombu's count (`_size`) leaves its read transaction open; with a session per
    channel and thread, each pass kept one pooled connection, and after 15 passes the worker died of
    "QueuePool limit of size 5 overflow 10 reached" (found in CI under load). Every connection must be
    back in the pool after each count, from any thread, however many passes run."""
    from arena.store.settings import Settings
    from arena.workers.app import broker_connection, make_celery
    from arena.workers.embedded import _EmbeddedChannel
    from arena.workers.reconcile import waiting_messages

    settings = Settings(ARENA_DATA_DIR=tmp_path)
    celery = make_celery(settings)
    with celery.connection_for_write() as connection:  # a message waiting in "ga", none in "cmaes"
        connection.default_channel.queue_declare(queue="cmaes")
        connection.default_channel._put("ga", {"body": "x", "properties": {}, "headers": {}})
    counts = []

    def passes(n):
        counts.extend((waiting_messages(celery, "ga"), waiting_messages(celery, "cmaes")) for _ in range(n))

    passes(20)  # more than the pool's 15 connections
    threads = [threading.Thread(target=passes, args=(10,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == [(1, 0)] * 50
    engine, _ = _EmbeddedChannel._engines[broker_connection(settings)[0]]
    assert engine.pool.checkedout() == 0
