"""Arena's benchmarks: speed of the trainers against reference paths, and success rates with defaults.

    python benchmarks/run.py                    # everything, writes benchmarks/results.md
    python benchmarks/run.py --only ga-speed    # one section (ga-speed, backprop-speed, success, car, service)
    python benchmarks/run.py --seeds 30 --tasks xor,sine
    python benchmarks/run.py --only success --methods cmaes --out /tmp/cmaes.md   # one method's rows

The success table runs every method of `arena.methods.METHODS` (backprop, ga, cmaes) side by side.

Speed is compared side by side in one run, on one core per measurement (torch.set_num_threads(1)), so
ratios hold on a busy machine better than absolute times do.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from arena.methods import METHODS  # noqa: E402
from arena.methods import label as method_label  # noqa: E402
from arena.runspec import resolve  # noqa: E402
from arena.tasks import TASKS, make_task  # noqa: E402
from arena.runner import execute  # noqa: E402


def best_of(repeats: int, fn, *args) -> float:
    """The minimum over repeats: the least disturbed by other processes."""
    return min(fn(*args) for _ in range(repeats))


def ga_speed(population: int = 50, generations: int = 1000, repeats: int = 3) -> str:
    from ga_paths import textbook_pygad, vectorised_torch_ga

    task = make_task("xor")
    arch = task.info.default_architecture
    rows_per_generation = len(task.x_train) * population

    def arena_seconds(operators: str) -> float:
        spec = resolve(
            "xor",
            "ga",
            budget={"evaluations": rows_per_generation * generations, "stop_on_solve": False},
            settings={"population_size": population, "num_parents_mating": population // 2, "operators": operators},
        )
        last = {}
        result = execute(spec, 0, progress=lambda p: last.update(step=p.step))
        return result.seconds / last["step"]

    textbook = best_of(repeats, textbook_pygad, task, arch, population, max(20, generations // 20), 0) * 1000
    batched_only = best_of(repeats, arena_seconds, "pygad") * 1000
    arena = best_of(repeats, arena_seconds, "vectorised") * 1000
    floor = best_of(repeats, vectorised_torch_ga, task, arch, population, generations, 0) * 1000
    lines = [
        f"### GA: milliseconds per generation (XOR, {arch.describe()}, population {population})",
        "",
        "| path | ms / generation | speed-up over textbook | times the floor |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, ms in (
        ("textbook PyGAD (`pygad.torchga.predict` per solution, built-in operators)", textbook),
        ("Arena, batched fitness, PyGAD's built-in operators (`operators=pygad`)", batched_only),
        ("Arena, batched fitness + vectorised operators (default)", arena),
        ("plain vectorised torch GA loop (the floor)", floor),
    ):
        lines.append(f"| {name} | {ms:.3f} | {textbook / ms:.1f}x | {ms / floor:.1f}x |")
    return "\n".join(lines)


def backprop_speed(epochs: int = 2000, repeats: int = 3) -> str:
    """Microseconds per epoch: Arena's trainer (with its per-epoch solve check) against a bare torch loop."""
    lines = [
        "### Backprop: microseconds per epoch (full batch, Adam)",
        "",
        "| task | network | Arena trainer | plain torch loop | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name in ("xor", "sine", "parity-8"):
        task = make_task(name)
        arch = task.info.default_architecture
        rows = len(task.x_train)
        spec = resolve(name, "backprop", budget={"evaluations": 3 * rows * epochs, "stop_on_solve": False})

        def arena_us():
            result = execute(spec, 0)
            return result.seconds / epochs * 1e6

        def plain_us():
            from arena.models.network import build_module

            torch.manual_seed(0)
            model = build_module(arch)
            optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
            x, y = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
            loss = torch.nn.BCELoss() if task.info.loss == "bce" else torch.nn.MSELoss()
            start = time.perf_counter()
            for _ in range(epochs):
                optimizer.zero_grad()
                loss(model(x), y).backward()
                optimizer.step()
            return (time.perf_counter() - start) / epochs * 1e6

        a, p = best_of(repeats, arena_us), best_of(repeats, plain_us)
        lines.append(f"| {name} | {arch.describe()} | {a:.0f} | {p:.0f} | {a / p:.2f}x |")
    return "\n".join(lines)


# The classic XOR example the defaults must beat, as Arena settings (same task, same solved rule). The
# classic PyGAD example's failure (an MSE plateau at 0.125) comes from its MSE fitness; Arena's GA
# minimises the task's loss (cross-entropy on logic tasks, like backprop), so it has no faithful row here.
CLASSIC_XOR = [
    (
        "backprop, classic PyTorch example: 2-2-1 sigmoid, SGD lr 0.02 momentum 0.9, N(0,1) init, MSE, one sample per step, 2001 epochs",
        "backprop",
        {"optimizer": "sgd", "learning_rate": 0.02, "momentum": 0.9, "init": "normal", "loss": "mse", "batch_size": 1},
        {"input_size": 2, "hidden_sizes": [2], "output_size": 1, "hidden_activation": "sigmoid", "output_activation": "sigmoid"},
        {"evaluations": 2001 * 4 * 3},
    ),
]


def _one_run(job):
    label, task, method, seed, settings, architecture, budget = job
    torch.set_num_threads(1)
    result = execute(resolve(task, method, budget=budget, settings=settings, architecture=architecture), seed)
    return label, seed, result.solved, result.score, result.evaluations_to_solve, result.seconds_to_solve


def success(
    tasks: list[str], seeds: int, workers: int = 2, budget: dict | None = None, classic: bool = True, methods: list[str] | None = None
) -> str:
    methods = list(methods or METHODS)
    # The method column names the algorithm where it differs from the method: `backprop (ppo)` on car tasks.
    jobs = [((t, method_label(m, resolve(t, m).algorithm)), t, m, s, None, None, budget) for t in tasks for m in methods for s in range(seeds)]
    if classic and "xor" in tasks and "backprop" in methods:
        jobs += [(("xor", label), "xor", method, s, settings, arch, b) for label, method, settings, arch, b in CLASSIC_XOR for s in range(seeds)]
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(_one_run, jobs, chunksize=1))
    budget_text = "the task's default budget" if budget is None else f"budget {budget}"
    lines = [
        f"### Success with defaults: {seeds} seeds per task and method, {budget_text}",
        "",
        "| task | method | solved | median seconds to solve | median evaluations to solve | median final score |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for label in dict.fromkeys(job[0] for job in jobs):
        rows = [r for r in results if r[0] == label]
        solved = [r for r in rows if r[2]]
        sec = f"{statistics.median(r[5] for r in solved):.3f}" if solved else "-"
        ev = f"{statistics.median(r[4] for r in solved):,.0f}" if solved else "-"
        lines.append(f"| {label[0]} | {label[1]} | {len(solved)}/{len(rows)} | {sec} | {ev} | {statistics.median(r[3] for r in rows):.3g} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("ga-speed", "backprop-speed", "success", "car", "service"))
    parser.add_argument("--seeds", type=int, default=30)
    # parity-7/8 are left out by default: a GA run there can use its whole 64M-evaluation budget (minutes);
    # measure them with e.g. --seeds 5 --tasks parity-7,parity-8.
    default_tasks = [n for n, i in TASKS.items() if i.kind == "supervised" and n not in ("parity-7", "parity-8")]
    parser.add_argument("--tasks", default=",".join(default_tasks))
    parser.add_argument("--workers", type=int, default=2, help="processes for the success table (one run each)")
    parser.add_argument("--methods", default=",".join(METHODS), help="success table: comma-separated methods (default: all of arena.methods.METHODS)")
    parser.add_argument("--seconds", type=float, help="success table: a seconds budget instead of the tasks' defaults")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and seeds (a smoke run)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    sections = []
    want = lambda name: args.only in (None, name)  # noqa: E731
    if want("ga-speed"):
        sections.append(ga_speed(generations=200 if args.quick else 1000, repeats=1 if args.quick else 3))
        print(sections[-1], "\n", flush=True)
    if want("backprop-speed"):
        sections.append(backprop_speed(epochs=300 if args.quick else 2000, repeats=1 if args.quick else 3))
        print(sections[-1], "\n", flush=True)
    if want("success"):
        budget = {"seconds": args.seconds, "stop_on_solve": True} if args.seconds else None
        sections.append(success(args.tasks.split(","), 3 if args.quick else args.seeds, args.workers, budget, methods=args.methods.split(",")))
        print(sections[-1], "\n", flush=True)
    if want("car") and args.only == "car" or (args.only is None and not args.quick):
        try:
            import bench_car

            sections.append(bench_car.run(quick=args.quick))
            print(sections[-1], "\n", flush=True)
        except ImportError:
            pass
    if args.only == "service":
        import bench_service

        sections.append(bench_service.run(quick=args.quick))
        print(sections[-1], "\n", flush=True)
    header = f"# Arena benchmark results\n\n`{' '.join(['python'] + sys.argv)}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    with open(args.out, "w") as handle:
        handle.write(header + "\n" + "\n\n".join(sections) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
