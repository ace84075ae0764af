"""Execute one run in this process: build the task, seed everything, call the algorithm's `train`.

No Celery, HTTP or SQL here: the worker, the CLI's `arena train` and Python users all call `execute`.
"""

from __future__ import annotations

from arena.contract import ProgressCallback, RunResult
from arena.methods import ALGORITHMS
from arena.methods import library_versions as methods_library_versions
from arena.methods.loop import seed_everything
from arena.runspec import RunSpec, check_seed
from arena.tasks import make_task


def library_versions() -> dict:
    """What a run's result depends on besides its spec and seed: stored with every run (which libraries:
    the registry says, arena.methods.library_versions)."""
    return methods_library_versions()


def execute(spec: RunSpec, seed: int, progress: ProgressCallback | None = None) -> RunResult:
    """Run `spec` with `seed`: same spec, same seed -> same result, bit for bit, on one machine."""
    import torch

    check_seed(seed)
    torch.set_num_threads(1)  # runs are single-threaded: comparable, and a machine scales by processes
    task = make_task(spec.task, spec.task_options)
    seed_everything(seed)
    return ALGORITHMS[spec.algorithm].train(task, spec.architecture, spec.settings, spec.budget, seed, progress)


def execute_seeds(spec: RunSpec, seeds, progress=None) -> list[RunResult]:
    """Run `spec` once per seed in this process, batched where the algorithm can: one result per seed, in order.

    Backprop trains the seeds as one stacked model (`backprop.train_seeds`): every seed's result is its
    unbatched run's, up to float reduction order, with evaluations counted per seed exactly as unbatched;
    its seconds are its share of the batch's time and `metrics["batched"]` is the number of seeds.
    The GA (`ga.train_seeds`, with its default vectorised operators) and CMA-ES (`cmaes.train_seeds`)
    run the seeds in lock-step on supervised tasks: S populations in one stacked forward, each seed bit
    for bit its unbatched run. Where an algorithm has no batched trainer or its `batches(task, settings)`
    says no (ppo; control tasks; the GA with PyGAD's built-in operators) the seeds run one after
    another, each exactly as `execute` would (bit for bit). `progress(seed, Progress)` returning True cancels that seed.
    """
    import torch

    seeds = [int(seed) for seed in seeds]
    for seed in seeds:
        check_seed(seed)
    if not seeds:
        return []
    torch.set_num_threads(1)
    task = make_task(spec.task, spec.task_options)
    module = ALGORITHMS[spec.algorithm]
    batched = getattr(module, "train_seeds", None)
    if batched is not None and len(seeds) > 1 and getattr(module, "batches", lambda _task, _settings: True)(task, spec.settings):
        return batched(task, spec.architecture, spec.settings, spec.budget, seeds, progress)
    results = []
    for seed in seeds:
        if seed != seeds[0]:
            task = make_task(spec.task, spec.task_options)  # a fresh task per run, as `execute` builds (per-run counters)
        seed_everything(seed)
        callback = None if progress is None else (lambda report, seed=seed: progress(seed, report))
        results.append(module.train(task, spec.architecture, spec.settings, spec.budget, seed, callback))
    return results
