"""Recovery after a SIGKILL under CPU load, side by side: a pool child killed vs a whole worker killed (and
a new one started), embedded (SQLite + the SQLAlchemy broker) and production (PostgreSQL + Redis).

    .venv/bin/python benchmarks/bench_recovery.py                       # 3 of each kind, both modes
    .venv/bin/python benchmarks/bench_recovery.py --repeats 5 --modes embedded --kinds worker
    .venv/bin/python benchmarks/bench_recovery.py --no-load             # without the two busy loops

What tests/test_faults.py does, with the test suite's lifecycle settings (heartbeat every 0.5 s, stale after
3 s, reconcile every 1 s: tests/conftest.py) and one worker of every queue with two pool processes:

1. submit one run (sine, backprop, a 4 s budget, no stop on solve) and start one busy loop per core;
2. once the run is mid-way, SIGKILL either its worker's pool processes (the parent survives and forks
   replacements) or the worker's whole process group (then a new worker is started at once, as a supervisor
   or `docker compose` restart would);
3. wait for the job to finish; check it was recorded once, by attempt 2 or later.

Each repetition reports when, after the kill, each phase ended (seconds), from the clocks of the processes
themselves: the new worker's log lines (Celery's "ready", and its own account of its start-up), the reconciler's requeue
(the run's `sent_at` in the ledger), the new attempt's claim (`started_at`) and its record (`finished_at`).
The re-run itself is its 4 s budget (wall clock, so under load too) plus its set-up, scoring and recording:
recovery can never be shorter than that. Medians over the repetitions; every repetition is printed too.
Uses a PostgreSQL database and a Redis database number of its own (as benchmarks/bench_service.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_service import DEFAULT_POSTGRES, DEFAULT_REDIS, free_port, scratch_database, scratch_redis_database  # noqa: E402

LIFECYCLE = {"ARENA_HEARTBEAT_SECONDS": "0.5", "ARENA_STALE_AFTER_SECONDS": "3", "ARENA_RECONCILE_SECONDS": "1", "ARENA_REQUEUE_AFTER_SECONDS": "4"}
JOB = {"task": "sine", "methods": ["backprop"], "budget": {"seconds": 4, "stop_on_solve": False}}
TARGET = 15.0  # issue 12: recovery < 15 s
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}): \w+/[\w-]+\] (.*)$")


# --- processes ----------------------------------------------------------------------------------------


class Service:
    """The API and worker processes of one mode, each in a session of its own (SIGKILL takes a whole worker)."""

    def __init__(self, env: dict, data_dir: Path):
        self.env = env
        self.data_dir = data_dir
        self.port = free_port()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.api: subprocess.Popen | None = None
        self.workers: list[tuple[subprocess.Popen, Path, float]] = []  # (process, log, started at: time.time())

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as handle:
            return subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def start_api(self) -> None:
        self.api = self._spawn([sys.executable, "-m", "arena", "api", "--port", str(self.port)], self.data_dir / "api.log")
        wait_for(lambda: self._healthy(), 60, "the API")

    def _healthy(self) -> bool:
        if self.api.poll() is not None:
            raise RuntimeError(f"the API exited: {(self.data_dir / 'api.log').read_text()[-2000:]}")
        try:
            return self.client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, wait: bool = True) -> tuple[subprocess.Popen, Path, float]:
        log = self.data_dir / f"worker-{len(self.workers)}.log"
        started = time.time()
        process = self._spawn(
            [sys.executable, "-m", "celery", "-A", "arena.workers.app", "worker", "-Q", "backprop,ga,cmaes", "-c", "2",
             "-n", f"bench{len(self.workers)}-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
            log,
        )  # fmt: skip
        self.workers.append((process, log, started))
        if wait:
            wait_for(lambda: " ready." in log.read_text(errors="replace"), 120, "a worker to be ready")
        return self.workers[-1]

    def live_worker(self) -> tuple[subprocess.Popen, Path, float]:
        return next(w for w in reversed(self.workers) if w[0].poll() is None)

    def stop(self) -> None:
        for process in [w[0] for w in self.workers] + ([self.api] if self.api else []):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL if process is not self.api else signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
        self.client.close()

    def submit(self, body: dict) -> dict:
        response = self.client.post("/jobs", json=body)
        response.raise_for_status()
        return response.json()

    def run(self, run_id: int) -> dict:
        return self.client.get(f"/runs/{run_id}").json()

    def job(self, job_id: int) -> dict:
        return self.client.get(f"/jobs/{job_id}").json()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def cpu_load(processes: int):
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait(10)


def pool_children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                    children.append(int(entry.name))
    return children


# --- one repetition -----------------------------------------------------------------------------------


def epoch(value) -> float | None:
    """A ledger timestamp (aware, or naive UTC from SQLite) or a log line's local time -> seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def log_times(log: Path, since: float) -> dict[str, float]:
    """When (epoch seconds) the worker log first said each thing, from `since` on."""
    found: dict[str, float] = {}
    patterns = {"ready": " ready.", "requeued": "reconciler: {'requeued': 1"}
    for line in log.read_text(errors="replace").splitlines():
        match = LOG_TIME.match(line)
        if not match:
            continue
        at = datetime.fromisoformat(f"{match.group(1)}.{match.group(2)}").astimezone().timestamp()  # local time
        if at < since:
            continue
        for name, pattern in patterns.items():
            if name not in found and pattern in match.group(3):
                found[name] = at
        started = START_UP.search(match.group(3))
        if started and "start-up" not in found:  # arena/workers/app.py logs where its start-up went
            found["start-up"] = tuple(float(started.group(i)) if started.group(i) else None for i in (1, 2, 3, 4))
    return found


START_UP = re.compile(r"worker started in ([\d.]+) s \(([\d.]+) s CPU\); of which warm imports (?:([\d.]+) s \(([\d.]+) s CPU\))?")


def ledger_times(service: Service, run_id: int) -> dict:
    from sqlalchemy import select

    from arena.store.db import session_scope
    from arena.store.tables import Run

    with session_scope(service.env["DATABASE_URL"]) as session:
        row = session.execute(select(Run.sent_at, Run.started_at, Run.finished_at, Run.seconds, Run.attempts, Run.status).where(Run.id == run_id)).one()
    return {"requeued": epoch(row.sent_at), "claimed": epoch(row.started_at), "recorded": epoch(row.finished_at), "seconds": row.seconds,
            "attempts": row.attempts, "status": row.status}  # fmt: skip


def repetition(service: Service, kind: str, load: int, seed: int) -> dict:
    created = service.submit({**JOB, "seeds": [seed]})
    run_id = created["run_ids"][0]
    with cpu_load(load):
        wait_for(lambda: (r := service.run(run_id))["status"] == "running" and (r["progress_evaluations"] or 0) > 0, 90, "the run mid-way")
        process, log, _ = service.live_worker()
        killed_at = time.time()
        if kind == "child":
            for child in pool_children(process.pid):
                os.kill(child, signal.SIGKILL)
            watched = log
        else:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            _, watched, _ = service.start_worker(wait=False)
        wait_for(lambda: service.job(created["job_id"])["status"] in ("succeeded", "failed", "cancelled"), 180, "the job", interval=0.1)
        seen = time.time()
    times = ledger_times(service, run_id)
    logged = log_times(watched, killed_at)
    text = "\n".join(w[1].read_text(errors="replace") for w in service.workers)
    recorded_lines = len(re.findall(rf"run {run_id} attempt \d+ recorded", text))
    start_up = logged.get("start-up") if kind == "worker" else None
    phases = {
        "worker ready": logged.get("ready") if kind == "worker" else None,
        # The reconciler stamps sent_at when it requeues; an earlier stamp: the run was taken over another way.
        "requeued": times["requeued"] if times["requeued"] and times["requeued"] > killed_at else None,
        "claimed": times["claimed"],
        "recorded": times["recorded"],
        "seen by the client": seen,
    }
    return {
        "kind": kind, "run_id": run_id, "status": times["status"], "attempts": times["attempts"], "recorded_lines": recorded_lines,
        "training_seconds": times["seconds"], "after_kill": {k: (v - killed_at if v is not None else None) for k, v in phases.items()},
        # the new worker's own account: (seconds since its process started, its CPU seconds, warm imports: seconds, CPU seconds)
        "start_up": start_up,
    }  # fmt: skip


# --- modes and the report -----------------------------------------------------------------------------


def environment(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL") and not k.startswith("ARENA_")}
    return {**env, **LIFECYCLE, **extra, "PYTHONUNBUFFERED": "1"}


def bench_mode(mode: str, kinds: list[str], repeats: int, load: int, postgres: str, redis_url: str) -> list[dict]:
    results = []
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"arena-bench-recovery-{mode}-")))
        if mode == "embedded":
            env = environment({"ARENA_DATA_DIR": str(data_dir), "DATABASE_URL": f"sqlite:///{data_dir / 'arena.db'}"})
        else:
            url = stack.enter_context(scratch_database(postgres, f"arena_bench_recovery_{os.getpid()}"))
            broker = stack.enter_context(scratch_redis_database(redis_url))
            env = environment({"ARENA_DATA_DIR": str(data_dir), "DATABASE_URL": url, "BROKER_URL": broker})
        from arena.store.db import run_migrations

        run_migrations(env["DATABASE_URL"])
        service = Service(env, data_dir)
        stack.callback(service.stop)
        service.start_api()
        service.start_worker()
        seed = 100
        for index in range(repeats):
            for kind in kinds:
                seed += 1
                result = repetition(service, kind, load, seed)
                result["mode"] = mode
                results.append(result)
                phases = ", ".join(f"{k} {v:.1f}" for k, v in result["after_kill"].items() if v is not None)
                if result["start_up"]:
                    age, cpu, imports, imports_cpu = result["start_up"]
                    phases += f" (the new worker: up {age:.1f} s using {cpu:.1f} s CPU, its warm imports {imports or 0:.1f} s / {imports_cpu or 0:.1f} s CPU)"
                print(f"[{mode}] {kind} kill #{index + 1}: {phases} s after the kill; attempts {result['attempts']}, "
                      f"recorded {result['recorded_lines']}x, status {result['status']}", flush=True)  # fmt: skip
                if kind == "worker":
                    wait_for(lambda: " ready." in service.live_worker()[1].read_text(errors="replace"), 120, "the new worker")
    return results


def report(results: list[dict], load: int, command: str) -> str:
    lines = [
        f"### Recovery after a SIGKILL (`{command}`, {time.strftime('%Y-%m-%d')})",
        "",
        f"{os.cpu_count()} cores, {load} busy loops, load average {os.getloadavg()[0]:.1f} at the end; seconds after the kill, median (min-max) over n.",
        "",
        "| mode | killed | n | new worker ready (its CPU s) | requeued | claimed again | recorded | seen by the client | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for mode in dict.fromkeys(r["mode"] for r in results):
        for kind in dict.fromkeys(r["kind"] for r in results):
            group = [r for r in results if r["mode"] == mode and r["kind"] == kind]
            if not group:
                continue
            cells = []
            for phase in ("worker ready", "requeued", "claimed", "recorded", "seen by the client"):
                values = [r["after_kill"][phase] for r in group if r["after_kill"][phase] is not None]
                cells.append(f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})" if values else "-")
            cpu = [r["start_up"][1] for r in group if r["start_up"]]
            if cpu:
                cells[0] += f" ({statistics.median(cpu):.1f})"
            ok = all(r["status"] == "succeeded" and r["recorded_lines"] == 1 and r["attempts"] >= 2 for r in group)
            met = statistics.median(r["after_kill"]["recorded"] for r in group) < TARGET
            label = "a pool child" if kind == "child" else "the whole worker (a new one started)"
            lines.append(f"| {mode} | {label} | {len(group)} | " + " | ".join(cells) + f" | < {TARGET:.0f} s: {'yes' if met else '**no**'}{'' if ok else ' (**a run lost or recorded twice**)'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each kind of kill per mode (default 3)")
    parser.add_argument("--modes", default="embedded,production", help="embedded, production, or both (default)")
    parser.add_argument("--kinds", default="child,worker", help="child (pool processes), worker (the whole worker), or both (default)")
    parser.add_argument("--load", type=int, default=2, help="busy loops while killing and recovering (default 2: one per core here)")
    parser.add_argument("--no-load", action="store_const", const=0, dest="load")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--json", help="also write every repetition to this file")
    args = parser.parse_args()
    results = []
    for mode in args.modes.split(","):
        results += bench_mode(mode, args.kinds.split(","), args.repeats, args.load, args.postgres, args.redis)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print()
    print(report(results, args.load, "python benchmarks/bench_recovery.py " + " ".join(sys.argv[1:])))


if __name__ == "__main__":
    main()
