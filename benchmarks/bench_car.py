"""Car task benchmark: simulator throughput, and how often each method solves each car task.

    .venv/bin/python benchmarks/bench_car.py                 # full: 10 seeds per task and method
    .venv/bin/python benchmarks/bench_car.py --quick         # seconds: speed table, 2 seeds on car-oval
    .venv/bin/python benchmarks/bench_car.py --seeds 20 --tasks car-oval,car-hard --jobs 2
    .venv/bin/python benchmarks/bench_car.py --methods cmaes --tasks car-oval   # one method's rows

The success table runs every method of `arena.methods.METHODS` (backprop runs PPO here, shown as
`backprop (ppo)`).

`run(quick)` returns the markdown section; the command prints it (and writes it with --out).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.methods import METHODS, get_method, label  # noqa: E402  (plain data: no torch)

CAR_TASK_NAMES = ("car-oval", "car-scurve", "car-hard", "car-generalize")


def method_label(method: str) -> str:
    return label(method, get_method(method).algorithm("control").NAME)


def steer_to_space(obs: np.ndarray) -> np.ndarray:
    """A hand-written driver (keeps cars on the track, so the benchmark measures realistic episodes)."""
    steer = np.clip(3 * (obs[:, 4] - obs[:, 0]) + (obs[:, 3] - obs[:, 1]), -1, 1)
    speed = np.clip(1.5 * obs[:, 2] - 0.5, -1, 1)
    return np.stack([steer, speed], axis=1).astype(np.float32)


def batched_steps_per_second(cars: int, seconds: float, track: str = "hard") -> float:
    """Agent-steps per second of the batched simulator (finished cars restart, as in PPO's rollouts)."""
    from arena.tasks.car import CarBatchEnv, builtin_track

    env = CarBatchEnv([builtin_track(track)], cars)
    obs = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        obs, _, _, _ = env.step(steer_to_space(obs))
        steps += cars
    return steps / (time.perf_counter() - start)


def gym_steps_per_second(seconds: float, track: str = "hard") -> float:
    """Agent-steps per second of the single-car Gymnasium env (one car per Python call)."""
    from arena.tasks.car import CarNavEnv

    env = CarNavEnv(track)
    obs, _ = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        obs, _, terminated, truncated, _ = env.step(steer_to_space(obs[None])[0])
        steps += 1
        if terminated or truncated:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - start)


def speed_table(seconds: float) -> str:
    single = gym_steps_per_second(seconds)
    rows = ["| simulator | cars per call | agent-steps/s | vs single-car env |", "| --- | ---: | ---: | ---: |"]
    rows.append(f"| Gymnasium env (`arena/CarNav-v0`) | 1 | {single:,.0f} | 1.0x |")
    for cars in (1, 64, 256, 1024):
        rate = batched_steps_per_second(cars, seconds)
        rows.append(f"| batched (`CarBatchEnv`) | {cars} | {rate:,.0f} | {rate / single:.1f}x |")
    return "\n".join(rows)


def _one_run(job: tuple[str, str, int]) -> dict:
    import torch

    from arena.contract import Budget
    from arena.runspec import resolve
    from arena.tasks import task_info
    from arena.runner import execute

    torch.set_num_threads(1)
    task, method, seed, lift_seconds = job
    budget = task_info(task).default_budget
    if lift_seconds:  # the default agent-step budget without its seconds cap: machine load must not decide
        budget = Budget(evaluations=budget.evaluations, stop_on_solve=True)
    result = execute(resolve(task, method, budget=budget), seed)
    print(f"{task} {method} seed {seed}: solved={result.solved} score={result.score:.3f} "
          f"evaluations={result.evaluations} seconds={result.seconds:.1f}", file=sys.stderr, flush=True)
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "solved": result.solved,
        "score": result.score,
        "seconds_to_solve": result.seconds_to_solve,
        "evaluations_to_solve": result.evaluations_to_solve,
        "seconds": result.seconds,
        "evaluations": result.evaluations,
    }


def success_table(tasks, seeds: int, jobs: int, lift_seconds: bool = False, methods=None) -> str:
    from arena.tasks import task_info

    methods = tuple(methods or METHODS)
    work = [(t, m, s, lift_seconds) for t in tasks for m in methods for s in range(seeds)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_one_run, work))
    else:
        results = [_one_run(job) for job in work]
    rows = [
        "| task | method | default budget (agent-steps, s) | solved | median s to solve | median agent-steps to solve | median score | median run s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for task in tasks:
        budget = task_info(task).default_budget
        for method in methods:
            mine = [r for r in results if r["task"] == task and r["method"] == method]
            solved = [r for r in mine if r["solved"]]
            med = lambda key, rs: f"{statistics.median(r[key] for r in rs):,.1f}" if rs else "-"  # noqa: E731
            steps = f"{statistics.median(r['evaluations_to_solve'] for r in solved):,.0f}" if solved else "-"
            rows.append(
                f"| {task} | {method_label(method)} | {budget.evaluations:,}, {budget.seconds:g} | {len(solved)}/{len(mine)} | "
                f"{med('seconds_to_solve', solved)} | {steps} | {statistics.median(r['score'] for r in mine):.3f} | "
                f"{med('seconds', mine)} |"
            )
    return "\n".join(rows)


def run(quick: bool, seeds: int | None = None, tasks=None, jobs: int = 1, lift_seconds: bool = False, methods=None) -> str:
    seeds = seeds if seeds is not None else (2 if quick else 10)
    tasks = tasks or (("car-oval",) if quick else CAR_TASK_NAMES)
    started = time.perf_counter()
    speeds = speed_table(0.5 if quick else 2.0)
    success = success_table(tasks, seeds, jobs, lift_seconds, methods)
    return (
        "## Car task\n\n"
        "Simulator throughput on the `hard` track, one core, a hand-written driver; finished episodes restart.\n\n"
        f"{speeds}\n\n"
        f"Success with each task's default budget{' (agent-steps only, seconds cap lifted)' if lift_seconds else ''} "
        f"and method defaults, seeds 0-{seeds - 1} "
        "(stop on solve; solved = at least 90% of the 32 evaluation episodes complete a lap without a crash).\n\n"
        f"{success}\n\n"
        f"_{time.perf_counter() - started:.0f} s to produce this section._\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: 2 seeds on car-oval")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per task and method (default 10, quick 2)")
    parser.add_argument("--tasks", default=None, help="comma-separated car tasks (default all four)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (each run is single-threaded)")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: all of arena.methods.METHODS)")
    parser.add_argument("--out", default=None, help="also write the markdown here")
    parser.add_argument("--no-seconds-cap", action="store_true", help="budget in agent-steps only (for a loaded machine)")
    args = parser.parse_args()
    tasks = tuple(args.tasks.split(",")) if args.tasks else None
    methods = tuple(args.methods.split(",")) if args.methods else None
    text = run(args.quick, args.seeds, tasks, args.jobs, args.no_seconds_cap, methods)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
