"""Generalisation benchmark: every method on `car-generalize` under the same agent-step budget.

    .venv/bin/python benchmarks/bench_generalize.py --seeds 10 --jobs 2              # all three methods
    .venv/bin/python benchmarks/bench_generalize.py --methods ga --seeds 3 --budget 500000
    .venv/bin/python benchmarks/bench_generalize.py --table benchmarks/out/generalize.jsonl   # table only

Training: a stream of generated tracks (a fresh draw of 4 per GA/CMA-ES generation and per PPO
rollout; generator seeds < 2^30). Scoring: the task's 32 fixed evaluation episodes, 4 on each of 8
held-out tracks (the built-in hard track and 7 generated ones with seeds >= 2^30, which no training
draw can produce). A seed reaches the issue's target when at least 80% of those episodes lap without
a crash; the task's own solved rule (90%) stops a run early. The budget is agent-steps only (no
seconds cap: machine load must not decide). Each finished run is appended to a JSON-lines file, so an
interrupted benchmark keeps its runs; `--table` rebuilds the table from that file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TASK = "car-generalize"
TARGET = 0.8
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "generalize.jsonl"


def _one_run(job: tuple[str, int, int, str]) -> dict:
    import torch

    from arena.contract import Budget
    from arena.runner import execute
    from arena.runspec import resolve

    torch.set_num_threads(1)
    method, seed, budget, out = job
    started = time.perf_counter()
    result = execute(resolve(TASK, method, budget=Budget(evaluations=budget, stop_on_solve=True)), seed)
    m = result.metrics
    row = {
        "method": method, "seed": seed, "budget": budget, "solved": result.solved, "score": result.score,
        "finish_rate": m.get("finish_rate"), "crash_rate": m.get("crash_rate"),
        "finish_rate_by_track": m.get("finish_rate_by_track"),
        "evaluations": result.evaluations, "evaluations_to_solve": result.evaluations_to_solve,
        "compute": m.get("compute"), "seconds": round(time.perf_counter() - started, 1), "cpu_seconds": result.cpu_seconds,
    }
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{method} seed {seed}: finish {row['finish_rate']:.3f} solved={result.solved} steps={result.evaluations:,} "
          f"{row['seconds']:.0f} s", file=sys.stderr, flush=True)
    return row


def _fmt(x) -> str:
    return f"{x:,.0f}" if x is not None else "-"


def table(rows: list[dict]) -> str:
    from arena.methods import get_method, label

    out = [
        "| method | seeds | >= 80% held-out laps (target) | solved (>= 90%) | median held-out finish rate | hard track finish rate (all seeds' episodes) "
        "| median agent-steps | median agent-steps to solve | median policy forwards | median backward passes | median multiply-adds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["seed"])
        hit = sum(r["finish_rate"] >= TARGET for r in mine)
        solved = [r for r in mine if r["solved"]]
        hard = [r["finish_rate_by_track"].get("hard") for r in mine if r.get("finish_rate_by_track")]
        med = lambda values: statistics.median(values) if values else None  # noqa: E731
        compute = [r["compute"] or {} for r in mine]
        out.append(
            f"| {label(method, get_method(method).algorithm('control').NAME)} | {len(mine)} | {hit}/{len(mine)} | {len(solved)}/{len(mine)} | "
            f"{med([r['finish_rate'] for r in mine]):.3f} | {statistics.mean(hard) if hard else float('nan'):.3f} | "
            f"{_fmt(med([r['evaluations'] for r in mine]))} | {_fmt(med([r['evaluations_to_solve'] for r in solved]))} | "
            f"{_fmt(med([c.get('policy_forwards', 0) for c in compute]))} | {_fmt(med([c.get('backward_passes', 0) for c in compute]))} | "
            f"{med([c.get('multiply_adds', 0) for c in compute]):.3g} |"
        )
    per_seed = ["", "Per seed (held-out finish rate; * = solved):", "", "| method | " + " | ".join(f"seed {s}" for s in sorted({r['seed'] for r in rows})) + " |",
                "| --- |" + " ---: |" * len({r["seed"] for r in rows})]
    seeds = sorted({r["seed"] for r in rows})
    for method in dict.fromkeys(r["method"] for r in rows):
        by_seed = {r["seed"]: r for r in rows if r["method"] == method}
        cells = [f"{by_seed[s]['finish_rate']:.2f}{'*' if by_seed[s]['solved'] else ''}" if s in by_seed else "-" for s in seeds]
        per_seed.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(out + per_seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--methods", default="ga,cmaes,backprop")
    parser.add_argument("--budget", type=int, default=None, help="agent-steps (default: the task's default budget)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON lines, appended to")
    parser.add_argument("--table", default=None, help="only print the table of this JSON-lines file")
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]))
        return
    from arena.tasks import task_info

    budget = args.budget or task_info(TASK).default_budget.evaluations
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    jobs = [(m, s, budget, args.out) for s in range(args.first_seed, args.first_seed + args.seeds) for m in args.methods.split(",")]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(_one_run, jobs))
    else:
        rows = [_one_run(job) for job in jobs]
    print(table(rows))


if __name__ == "__main__":
    main()
