"""Many seeds, fast (issue 10), side by side in one run on this machine:

    .venv/bin/python benchmarks/bench_seeds.py            # everything
    .venv/bin/python benchmarks/bench_seeds.py --quick    # 20 sequential seeds (extrapolated to 100), 5 queue jobs

(a) 100 XOR seeds of backprop, fixed 500 epochs (budget 500 x 4 x 3 evaluations, no stop on solve):
    arena.execute_seeds (one stacked model) vs arena.execute one seed after another vs a plain
    stacked-torch reference (the same 100 networks, Adam, BCE, bmm). Target: execute_seeds <= 3x reference.
(b) One backprop epoch through Arena vs a bare torch loop (same network, optimiser, data), xor and sine.
    Target <= 1.3x.
(c) Embedded queue overhead per run (SQLite + SQLAlchemy transport), measured as benchmarks/bench_service.py
    does (its `queue_overhead`). Target: median <= 150 ms.
(d) The GA and CMA-ES, 30 XOR seeds each (fixed 20,000 evaluations, no stop on solve): execute_seeds
    (the seeds in lock-step, one stacked forward per generation; bit for bit the unbatched runs) vs
    arena.execute one after another. Target for the GA: >= 2x (was 5x against PyGAD's slower single run,
    before the population loop); CMA-ES reported.

Times are CPU seconds of this thread (time.thread_time) unless a column says wall: the machine is shared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

EPOCHS = 500


def timed(fn):
    wall, cpu = time.perf_counter(), time.thread_time()
    out = fn()
    return out, time.perf_counter() - wall, time.thread_time() - cpu


def stacked_reference(seeds: int, epochs: int) -> None:
    """The plain torch reference: S 2-2-1 sigmoid networks as (S, ...) tensors, one Adam, BCE."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float32)
    y = torch.tensor([[0], [1], [1], [0]], dtype=torch.float32)
    w1 = (torch.rand(seeds, 2, 2) * 2 - 1).mul_(0.7).requires_grad_()
    b1 = (torch.rand(seeds, 1, 2) * 2 - 1).mul_(0.7).requires_grad_()
    w2 = (torch.rand(seeds, 1, 2) * 2 - 1).mul_(0.7).requires_grad_()
    b2 = (torch.rand(seeds, 1, 1) * 2 - 1).mul_(0.7).requires_grad_()
    optimizer = torch.optim.Adam([w1, b1, w2, b2], lr=0.01)
    xs = x.expand(seeds, -1, -1)
    for _ in range(epochs):
        optimizer.zero_grad()
        h = torch.sigmoid(torch.baddbmm(b1, xs, w1.transpose(1, 2)))
        out = torch.sigmoid(torch.baddbmm(b2, h, w2.transpose(1, 2)))
        F.binary_cross_entropy(out.clamp(1e-7, 1 - 1e-7), y.expand_as(out), reduction="none").mean(dim=(1, 2)).sum().backward()
        optimizer.step()


def bench_seeds(quick: bool) -> list[list[str]]:
    import torch

    from arena import execute, execute_seeds, resolve

    torch.set_num_threads(1)
    seeds = list(range(100))
    spec = resolve("xor", "backprop", budget={"evaluations": EPOCHS * 4 * 3, "stop_on_solve": False})
    execute_seeds(spec, [0, 1])  # warm the imports
    _, ref_wall, ref_cpu = timed(lambda: stacked_reference(len(seeds), EPOCHS))
    batched, b_wall, b_cpu = timed(lambda: execute_seeds(spec, seeds))
    sequential_seeds = seeds[:20] if quick else seeds
    alone, s_wall, s_cpu = timed(lambda: [execute(spec, seed) for seed in sequential_seeds])
    scale = len(seeds) / len(sequential_seeds)
    same = sum(
        (b.solved, b.evaluations_to_solve, b.evaluations) == (a.solved, a.evaluations_to_solve, a.evaluations)
        for b, a in zip(batched, alone)
    )
    note = f"; extrapolated from {len(sequential_seeds)} seeds" if scale != 1 else ""
    return [
        ["100 XOR seeds, backprop, 500 epochs: plain stacked torch reference", f"{ref_cpu:.2f} s (wall {ref_wall:.2f})", "1.0x", ""],
        ["... arena.execute_seeds (batched)", f"{b_cpu:.2f} s (wall {b_wall:.2f})", f"{b_cpu / ref_cpu:.1f}x", "<= 3x"],
        [
            f"... arena.execute one after another{note}",
            f"{s_cpu * scale:.2f} s (wall {s_wall * scale:.2f})",
            f"{s_cpu * scale / ref_cpu:.1f}x",
            f"batched/sequential same counts: {same}/{len(alone)}",
        ],
    ]


def bench_population(method: str, quick: bool, repeats: int = 3) -> list[list[str]]:
    """30 XOR seeds of a population method, fixed 20,000 evaluations each (no stop on solve, so every
    seed does the same work): execute_seeds (lock-step) vs execute one after another, best of `repeats`."""
    import torch

    from arena import execute, execute_seeds, resolve

    torch.set_num_threads(1)
    seeds = list(range(30))
    spec = resolve("xor", method, budget={"evaluations": 20_000, "stop_on_solve": False})
    execute_seeds(spec, [0, 1])  # warm the imports
    sequential_seeds = seeds[:10] if quick else seeds
    scale = len(seeds) / len(sequential_seeds)
    b_cpu = s_cpu = float("inf")
    for _ in range(repeats):  # interleaved, so both see the same machine load
        batched, b_wall, cpu = timed(lambda: execute_seeds(spec, seeds))
        b_cpu = min(b_cpu, cpu)
        alone, s_wall, cpu = timed(lambda: [execute(spec, seed) for seed in sequential_seeds])
        s_cpu = min(s_cpu, cpu * scale)
    same = sum(b.weights == a.weights and b.evaluations == a.evaluations for b, a in zip(batched, alone))
    note = f"; extrapolated from {len(sequential_seeds)} seeds" if scale != 1 else ""
    # The GA's target was >= 5x while a single run was PyGAD's loop; since both paths are the population
    # loop (issue 16) a single run is ~1.9x faster and lock-step takes the same time as before, so the
    # ratio is ~2.5-2.8x: the target is the lock-step time itself, no slower than before.
    target = ">= 2x" if method == "ga" else "reported"
    return [
        [f"30 XOR seeds, {method}, 20,000 evaluations each: arena.execute one after another{note}", f"{s_cpu:.2f} s", "1.0x", ""],
        [f"... arena.execute_seeds (lock-step, stacked forward), best of {repeats}", f"{b_cpu:.2f} s", f"{s_cpu / b_cpu:.1f}x faster", f"{target}; bit-for-bit identical: {same}/{len(alone)}"],
    ]


def bare_loop(task, epochs: int) -> None:
    import torch
    import torch.nn.functional as F

    from arena.models.network import build_module
    from arena.runspec import resolve

    spec = resolve(task.info.name, "backprop", budget={"evaluations": 1})
    model = build_module(spec.architecture)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.settings.learning_rate)
    x, y = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
    bce = task.info.loss == "bce"
    for _ in range(epochs):
        optimizer.zero_grad()
        out = model(x)
        loss = F.binary_cross_entropy(out.clamp(1e-7, 1 - 1e-7), y) if bce else F.mse_loss(out, y)
        loss.backward()
        optimizer.step()


def bench_epoch(repeats: int = 5) -> list[list[str]]:
    from arena import execute, make_task, resolve

    rows = []
    for name in ("xor", "sine"):
        task = make_task(name)
        n = len(task.x_train)
        spec = resolve(name, "backprop", budget={"evaluations": EPOCHS * n * 3, "stop_on_solve": False})
        execute(spec, 0)
        arena_cpu = min(timed(lambda: execute(spec, 0))[2] for _ in range(repeats))
        bare_cpu = min(timed(lambda: bare_loop(task, EPOCHS))[2] for _ in range(repeats))
        rows.append([
            f"backprop epoch, {name} (Arena vs bare torch loop, best of {repeats})",
            f"{arena_cpu / EPOCHS * 1e6:.0f} us vs {bare_cpu / EPOCHS * 1e6:.0f} us",
            f"{arena_cpu / bare_cpu:.2f}x",
            "<= 1.3x",
        ])
    return rows


def bench_queue(jobs: int) -> list[list[str]]:
    from bench_service import queue_overhead, with_local_service

    with tempfile.TemporaryDirectory(prefix="arena-bench-") as data_dir:
        parts = with_local_service(data_dir, lambda: queue_overhead(jobs), DATABASE_URL=None, BROKER_URL=None)
    total = sorted(parts["total"])
    return [
        [
            f"embedded queue overhead per run ({len(total)} runs, wall)",
            f"median {statistics.median(total) * 1000:.0f} ms, p90 {total[int(0.9 * (len(total) - 1))] * 1000:.0f} ms",
            "",
            "median <= 150 ms",
        ],
        [
            "... of which sent -> claimed / claimed -> recorded (minus training), medians",
            f"{statistics.median(parts['to claim']) * 1000:.0f} ms / {statistics.median(parts['claim to record']) * 1000:.0f} ms",
            "",
            "",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("seeds", "ga", "cmaes", "epoch", "queue"))
    args = parser.parse_args()
    rows = []
    if args.only in (None, "seeds"):
        rows += bench_seeds(args.quick)
    if args.only in (None, "ga"):
        rows += bench_population("ga", args.quick)
    if args.only in (None, "cmaes"):
        rows += bench_population("cmaes", args.quick)
    if args.only in (None, "epoch"):
        rows += bench_epoch()
    if args.only in (None, "queue"):
        rows += bench_queue(5 if args.quick else 15)
    command = "python benchmarks/bench_seeds.py" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    print(f"### Many seeds, fast (`{command}`, {time.strftime('%Y-%m-%d')})\n")
    print("| measurement | CPU time | vs reference | target / note |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
