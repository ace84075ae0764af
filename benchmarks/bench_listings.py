"""Listing latency over a large ledger with big tracks: GET /jobs and GET /jobs/{id} in PostgreSQL.

    .venv/bin/python benchmarks/bench_listings.py                      # 100,000 runs, 3 jobs with a 10,000-point track
    .venv/bin/python benchmarks/bench_listings.py --runs 20000 --repeats 20
    .venv/bin/python benchmarks/bench_listings.py --source /tmp/arena-old   # the API from another source tree (before/after)

The ledger: `--runs` synthetic finished runs (benchmarks/bench_service.py's fill_ledger: jobs of 20 runs),
plus `--big-jobs` newer jobs of 100 seeds each whose request holds a 10,000-point custom track (about
420 KB of JSON as posted: the audit's worst case). Their runs are stored as the API stores them: the track
once, in `task_options`, and each run's spec referencing it (before, every run's spec held a copy: 42 MB
per job). They are the newest jobs, so they are on the first page of GET /jobs. The API runs as its own
process (`arena api`) against a database created for the benchmark and dropped after it; latencies are
sequential keep-alive requests over loopback, median (p50) and p90. Target: p50 < 20 ms for the listings;
GET /runs/{id} of a big-track run (its whole spec, the track read back) is shown for information.
(`--source` runs another tree's API on a ledger written in this tree's format.)
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_service import (  # noqa: E402
    DEFAULT_POSTGRES, DEFAULT_REDIS, fill_ledger, fmt_seconds, free_port, measure_get, median_and_p90, scratch_database, wait_for_health,
)  # fmt: skip

TARGET = 0.020


def big_track(points: int, rng: random.Random) -> dict:
    """A closed wobbly loop of `points` points (valid for parse_track)."""
    import math

    out = []
    for k in range(points):
        angle = 2 * math.pi * k / points
        radius = 60 + 3 * math.sin(7 * angle) + rng.random() * 0.01
        out.append([round(radius * math.cos(angle), 4), round(radius * math.sin(angle), 4)])
    return {"points": out, "width": 6.0}


def add_big_jobs(url: str, jobs: int, seeds: int, points: int) -> list[int]:
    """Jobs of `seeds` backprop runs on car-oval whose request carries a `points`-point track, stored as the
    API stores a job (queries.create_job): the track once, each run's spec referencing it."""
    from sqlalchemy import insert, select, text

    from arena.runspec import resolve
    from arena.store.db import get_engine, session_scope
    from arena.store.queries import settings_hash, stored_spec
    from arena.store.tables import Job, Run, utcnow

    rng = random.Random(1)
    track = big_track(points, rng)
    spec = resolve("car-oval", "backprop").to_dict()
    spec["task_options"] = {"track": track}
    digest = settings_hash(spec)  # of the whole spec, as the API computes it
    with session_scope(url) as session:
        spec = stored_spec(session, spec)
    ids = []
    with get_engine(url).begin() as connection:
        for _ in range(jobs):
            now = utcnow()
            job_id = connection.execute(
                insert(Job).returning(Job.id),
                {"created_at": now, "finished_at": now, "task": "car-oval", "status": "succeeded", "methods": ["backprop"],
                 "seeds": list(range(seeds)), "request": {"task": "car-oval", "seeds": seeds, "task_options": {"track": track}},
                 "cancel_requested": False},
            ).scalar_one()  # fmt: skip
            connection.execute(
                insert(Run),
                [{"job_id": job_id, "task": "car-oval", "method": "backprop", "algorithm": "ppo", "seed": seed, "spec": spec,
                  "settings_hash": digest, "status": "succeeded", "attempts": 1, "created_at": now, "sent_at": now, "started_at": now,
                  "heartbeat_at": now, "finished_at": now, "worker": "bench", "score": 0.5, "solved": False, "evaluations": 1000,
                  "seconds": 1.0, "cpu_seconds": 1.0, "stopped": "budget", "metrics": {}, "extra_parameters": 0, "library_versions": {}}
                 for seed in range(seeds)],
            )  # fmt: skip
            ids.append(job_id)
        connection.execute(text("ANALYZE"))
        total = connection.execute(select(text("count(*)")).select_from(text("runs"))).scalar_one()
        sizes = {
            table: connection.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one() for table in ("jobs", "runs", "task_options")
        }
    print(f"ledger: {total:,} runs; big jobs {ids} ({seeds} runs each, a {points:,}-point track in the request, stored once for the runs)")
    print("on disk: " + ", ".join(f"{table} {size / 1e6:.1f} MB" for table, size in sizes.items()))
    return ids


def _first_run(url: str, job_id: int) -> int:
    from sqlalchemy import func, select

    from arena.store.db import session_scope
    from arena.store.tables import Run

    with session_scope(url) as session:
        return session.scalar(select(func.min(Run.id)).where(Run.job_id == job_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000, help="runs stored in all (default 100,000)")
    parser.add_argument("--big-jobs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=100, help="runs per big job")
    parser.add_argument("--points", type=int, default=10_000, help="points of the big jobs' track")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the API is healthy (its background imports)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--source", default=str(ROOT), help="the source tree the API runs from (default: this one)")
    args = parser.parse_args()

    with scratch_database(args.postgres, f"arena_bench_listings_{os.getpid()}") as url:
        from arena.store.db import run_migrations

        run_migrations(url)
        started = time.perf_counter()
        small_job = fill_ledger(url, args.runs - args.big_jobs * args.seeds, xor_share=0.5)
        big = add_big_jobs(url, args.big_jobs, args.seeds, args.points)
        big_run = _first_run(url, big[0])
        print(f"filled in {time.perf_counter() - started:.1f} s")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "BROKER_URL": f"{args.redis}/0", "PYTHONPATH": args.source}  # nothing is sent
        api = subprocess.Popen([sys.executable, "-m", "arena", "api", "--port", str(port)], env=env, cwd=args.source,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        rows = []
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                wait_for_health(client, api, timeout=60)
                # The API imports scipy.stats and statsmodels in background threads at start-up (seconds
                # of CPU holding the GIL): let them finish before measuring.
                time.sleep(args.settle)
                for label, path in (
                    ("GET /jobs (first page of 50: the big jobs on it)", "/jobs"),
                    ("GET /jobs?limit=500", "/jobs?limit=500"),
                    ("GET /jobs?task=xor&status=succeeded", "/jobs?task=xor&status=succeeded"),
                    ("GET /jobs/{id} (20 runs)", f"/jobs/{small_job}"),
                    (f"GET /jobs/{{id}} ({args.seeds} runs, {args.points:,}-point track)", f"/jobs/{big[0]}"),
                    ("GET /runs/{id} (a big-track run: its whole spec)", f"/runs/{big_run}"),
                ):
                    values = measure_get(client, path, args.repeats)
                    rows.append((label, *median_and_p90(values), len(values)))
        finally:
            api.terminate()
            api.wait(timeout=30)
    print(f"\n{'request':<58} {'p50':>9} {'p90':>9}  target p50 < {fmt_seconds(TARGET)}")
    for label, median, p90, count in rows:
        met = "-" if label.startswith("GET /runs/") else "yes" if median < TARGET else "NO"  # GET /runs/{id}: for information
        print(f"{label:<58} {fmt_seconds(median):>9} {fmt_seconds(p90):>9}  {met} ({count} requests)")


if __name__ == "__main__":
    main()
