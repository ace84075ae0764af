"""Success counts and evaluations to solve of a method with its defaults, seeds 0..n-1 (results-methods.md, OpenAI-ES).

    python benchmarks/bench_es_defaults.py [method]     # es (default), ga, cmaes
"""

import statistics
import sys
import time

from arena import execute, resolve

METHOD = sys.argv[1] if len(sys.argv) > 1 else "es"
TASKS = [("xor", 10), ("parity-4", 10), ("parity-5", 10), ("full-adder", 10), ("sine", 5), ("car-oval", 3)]

print("| task | solved | median | range | budget | CPU s |")
for task, seeds in TASKS:
    spec = resolve(task, METHOD)
    cpu = time.process_time()
    results = [execute(spec, seed) for seed in range(seeds)]
    solved = sorted(r.evaluations_to_solve for r in results if r.solved)
    median = f"{statistics.median(solved):,.0f}" if solved else "-"
    spread = f"{min(solved):,} - {max(solved):,}" if solved else "-"
    print(f"| {task} | {len(solved)}/{seeds} | {median} | {spread} | {spec.budget.evaluations:,} | {time.process_time() - cpu:.1f} |", flush=True)
