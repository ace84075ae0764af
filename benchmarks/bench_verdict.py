"""Timing of the verdict statistics on synthetic runs (no service, no database): how long a
configuration's statistics, a comparison, a ranking and a summary take at sizes the API meets.

    .venv/bin/python benchmarks/bench_verdict.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.verdict import RunTable, compare, configuration_stats, rank_leaderboard, summary


def synthetic_runs(n: int, method: str, settings_hash: str, solve_probability: float, scale: float, seed: int):
    generator = np.random.default_rng(seed)
    need = generator.exponential(scale, n)
    budget = 3 * scale
    runs = []
    for i in range(n):
        solved = bool(generator.random() < solve_probability and need[i] < budget)
        evaluations = int(need[i]) if solved else int(budget)
        cpu = evaluations / 1e4 * (1 + 0.1 * generator.random())
        runs.append(
            {
                "id": seed * 1_000_000 + i, "method": method, "algorithm": method, "settings_hash": settings_hash,
                "seed": i, "status": "succeeded", "solved": solved, "score": 1.0, "evaluations": evaluations,
                "seconds": cpu * 1.5, "cpu_seconds": cpu, "evaluations_to_solve": evaluations if solved else None,
                "seconds_to_solve": cpu * 1.5 if solved else None, "cpu_seconds_to_solve": cpu if solved else None,
            }
        )
    return runs


def timed(label: str, function, *args):
    function(*args)  # warm: imports
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {1000 * wall:.1f} ms wall, {1000 * cpu:.1f} ms CPU")
    return result


def main() -> None:
    big_ga = synthetic_runs(50_000, "ga", "h1", 0.8, 10_000, 1)
    big_backprop = synthetic_runs(50_000, "backprop", "h2", 0.9, 8_000, 2)
    timed("configuration_stats, 50,000 run dicts", configuration_stats, big_ga)
    big_ga_table, big_backprop_table = RunTable.from_dicts(big_ga), RunTable.from_dicts(big_backprop)
    timed("configuration_stats, 50,000 runs as a RunTable", configuration_stats, big_ga_table)
    timed("compare, 50,000 vs 50,000 run dicts", compare, big_ga, big_backprop, ("ga", "backprop"))
    timed("compare, 50,000 vs 50,000 runs as RunTables", compare, big_ga_table, big_backprop_table, ("ga", "backprop"))
    configs = [synthetic_runs(30, f"m{i % 3}", f"h{i}", 0.7 + 0.01 * i, 1000 * (1 + i % 5), i) for i in range(20)]
    entries = [{"method": c[0]["method"], "settings_hash": c[0]["settings_hash"], **configuration_stats(c)} for c in configs]
    timed("configuration_stats x 20 (30 runs each)", lambda: [configuration_stats(c) for c in configs])
    timed("rank_leaderboard, 20 configurations (interval ties)", rank_leaderboard, entries)
    runs_by_configuration = {(c[0]["method"], c[0]["settings_hash"]): c for c in configs}
    timed("rank_leaderboard, 20 configurations (ties from tests)", rank_leaderboard, entries, runs_by_configuration)
    tasks = {
        f"task{t}": {
            method: synthetic_runs(30, method, f"{method}{t}", 0.8, 1000 * (1 + t % 3), 100 * t + k)
            for k, method in enumerate(("backprop", "ga", "cmaes"))
        }
        for t in range(19)
    }
    timed("summary, 19 tasks x 3 methods x 30 runs", summary, tasks)


if __name__ == "__main__":
    main()
