"""CMA-ES (pycma, the reference implementation) on the flat weight vector, through its ask/tell interface.

The same architecture, initial-weight distribution (its draw is the initial mean), budget, clock,
evaluation counting and solve checks as the other methods; each generation's whole population is
scored in one stacked forward pass (`task.fitness`), like the GA's.

- `covariance`: "full" adapts the full N x N covariance (O(N^2) memory and time per sample); "diagonal"
  is sep-CMA-ES (Ros and Hansen 2008), linear in N, for larger networks; "auto" picks diagonal above
  AUTO_DIAGONAL_PARAMETERS.
- `ipop_restarts`: when pycma's own termination criteria fire before the budget is spent (the search
  has converged, often to a local optimum), restart from a fresh initial draw with twice the
  population (IPOP-CMA-ES, Auger and Hansen 2005). Without it, the run stops there.
- Control tasks (`info.noisy_fitness`): every member of a generation is scored on that generation's
  episodes; CMA-ES keeps no elites, so no member carries a score from other episodes (the GA must
  re-score its survivors for this).

Counting: one evaluation per member per training sample (per agent-step on control tasks). Solve
checks on the task's held-out set or evaluation episodes are not counted, for any method.

Runs are single-threaded (the runner limits torch to one thread); pycma's linear algebra goes through
numpy's OpenBLAS, which would start a thread per core: on a busy 2-core machine that made a parity-3
run 5x slower in wall time (17 s against 3.5 s) and hid CPU time from `cpu_seconds`. `train` limits
it to one thread, as the runner does for torch.
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import Literal

import numpy as np
from pydantic import Field

from arena.contract import Budget, ChampionCheck, ProgressCallback, RunClock, RunResult, SharedClock, check_every, for_seed
from arena.models.architecture import INIT_SCHEMES, Architecture
from arena.tasks.base import episode_seed
from arena.validation import Model

NAME = "cmaes"
AUTO_DIAGONAL_PARAMETERS = 1_000
# `train_seeds` (S seeds in lock-step, one stacked forward) is bit-for-bit the unbatched run and about as
# fast (pycma's Python ask/tell dominates: benchmarks/bench_seeds.py), but one message for a job's seeds
# instead of one per seed saves the queue's per-message overhead, so the service batches CMA-ES too.
WORST_FITNESS = 1e30  # pycma minimises; a diverged network (NaN) gets the worst value


class CMAESSettings(Model):
    """CMA-ES (pycma) on the flat weight vector."""

    population_size: int | None = Field(None, ge=2, le=10_000, description="samples per generation; null for pycma's default 4 + 3 ln(N)")
    sigma0: float = Field(0.5, ge=1e-6, le=100.0, description="initial step size (standard deviation of the first generation around the mean)")
    covariance: Literal["auto", "full", "diagonal"] = Field(
        "auto", description=f"full covariance, diagonal (sep-CMA-ES, for larger networks), or auto: diagonal above {AUTO_DIAGONAL_PARAMETERS} parameters"
    )
    ipop_restarts: bool = Field(True, description="restart with twice the population when pycma's termination criteria fire before the budget is spent (IPOP)")
    init: Literal[INIT_SCHEMES] = Field("default", description="the initial mean's distribution, the same schemes as the other methods")
    init_scale: float = Field(1.0, ge=1e-6, le=100.0, description="scale of the normal or uniform initialisation")


Settings = CMAESSettings


def single_threaded_blas() -> None:
    """numpy's bundled OpenBLAS on one thread, as the runner does for torch (a no-op where not found)."""
    for path in glob.glob(os.path.join(os.path.dirname(np.__path__[0]), "numpy.libs", "*openblas*")):
        lib = ctypes.CDLL(path)  # the copy numpy already loaded
        for setter in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads"):
            if hasattr(lib, setter):
                getattr(lib, setter)(1)
                break


def train(
    task,
    architecture: Architecture,
    settings: CMAESSettings,
    budget: Budget,
    seed: int,
    progress: ProgressCallback | None = None,
) -> RunResult:
    from arena.models.network import PopulationForward

    single_threaded_blas()
    forward = PopulationForward(architecture)
    clock = RunClock(budget, task.info.higher_is_better, progress, check_every(task))
    # The run is `generations`, which yields each generation's solutions and is sent their forward.
    run = generations(task, architecture, settings, seed, clock, forward)
    solutions = next(run)
    while True:
        try:
            solutions = run.send(forward.numpy(solutions))
        except StopIteration as done:
            return done.value


def generations(task, architecture: Architecture, settings: CMAESSettings, seed: int, clock: RunClock, forward):
    """The CMA-ES run for one seed, as a generator: yields each generation's solutions (P, n) and is sent
    the forward pass `task.fitness` scores them with (`forward.numpy(solutions)` in `train`, the rows of
    a stacked forward in `train_seeds`); returns the RunResult."""
    import cma  # here, not at the top: the HTTP API reads CMAESSettings and never imports pycma or torch

    from arena.models.network import initial_vectors

    diagonal = settings.covariance == "diagonal" or (
        settings.covariance == "auto" and architecture.num_parameters > AUTO_DIAGONAL_PARAMETERS
    )
    generation = 0
    population_size = settings.population_size
    best_weights = None
    check = ChampionCheck(task, clock, forward.single)  # the solve check on each generation's champion
    reuse = getattr(task, "scores_on_training_set", False)

    for restart in range(1000):
        # The initial mean: one draw of the shared initial-weight distribution (torch's seeded generator).
        mean = initial_vectors(architecture, 1, settings.init, settings.init_scale)[0].double().numpy()
        if best_weights is None:
            best_weights = mean.copy()
        options = {
            # pycma seeds numpy's legacy generator, which takes 1 .. 2**32 - 1 (0 means "from the clock").
            "seed": int(np.random.SeedSequence([seed, restart]).generate_state(1)[0]) % (2**32 - 1) + 1,
            "CMA_diagonal": diagonal,
            "verbose": -9,
            "verb_log": 0,  # pycma would write data files under ./outcmaes
            "verb_disp": 0,
            "maxiter": np.inf,
            "maxfevals": np.inf,
        }
        if population_size is not None:
            options["popsize"] = population_size
        es = cma.CMAEvolutionStrategy(mean, settings.sigma0, options)
        population_size = es.popsize

        while not es.stop():
            solutions = np.asarray(es.ask())
            population_forward = yield solutions
            outputs = {}

            def forward_and_keep(x, population_forward=population_forward):
                outputs["predictions"] = population_forward(x)
                return outputs["predictions"]

            fitness, used = task.fitness(forward_and_keep if reuse else population_forward, episode_seed(seed, generation))
            clock.evaluations += used
            # pycma minimises; the task's fitness is higher-is-better.
            losses = np.nan_to_num(-np.asarray(fitness, dtype=np.float64), nan=WORST_FITNESS, posinf=WORST_FITNESS, neginf=WORST_FITNESS)
            es.tell(list(solutions), losses.tolist())
            generation += 1

            index = int(np.argmin(losses))
            champion = solutions[index]
            # On logic tasks the champion is judged on the outputs its fitness came from (no second forward).
            predictions = outputs["predictions"][index] if reuse else None
            score, solved = check(champion, predictions)  # reuses the verdict on an unchanged champion
            if clock.record(score, bool(solved)):
                best_weights = champion.copy()
            if clock.should_stop():
                break
        else:
            # pycma's own termination criteria fired: restart (IPOP) or stop with what we have.
            if settings.ipop_restarts:
                population_size *= 2
                continue
        break

    score, solved, metrics = task.evaluate(forward.single(best_weights))
    metrics = {**metrics, "generations": generation, "restarts": restart, "final_population_size": population_size, "diagonal": diagonal}
    return clock.finish(best_weights, score, solved, metrics)


# --- many seeds in lock-step: S populations in one stacked forward ---------------------------------


def batches(task, settings: CMAESSettings) -> bool:
    """Whether `train_seeds` batches these runs: supervised tasks, whose fitness is one forward pass on the
    training set. Control tasks (episodes, per-step inputs) run one seed after another."""
    return not task.info.noisy_fitness and getattr(task, "x_train", None) is not None


def train_seeds(task, architecture: Architecture, settings: CMAESSettings, budget: Budget, seeds: list[int], progress=None) -> list[RunResult]:
    """One CMA-ES per seed, in lock-step generation by generation: each generation the S asked
    populations are scored in ONE stacked forward pass ((sum of P_s, n) networks), then each seed's
    fitness goes back to its own `tell`.

    Each seed runs `generations`, as `train` does, with its forward pass the seed's rows of the stack, under
    its own global random state (numpy's legacy generator, which pycma samples from, torch's, which draws
    the initial means, and Python's), swapped in around each of its steps: so each seed's result is its
    unbatched run's, bit for bit, as long as a member's forward gives the same floats stacked or alone
    (tests/test_batched.py checks both). Seconds: a seed's own ask/tell/check time plus an equal share
    of each stacked forward; `metrics["batched"]` = S.
    """
    import random
    import time

    import torch

    from arena.models.network import PopulationForward
    from arena.runner import seed_everything

    single_threaded_blas()
    forward = PopulationForward(architecture)
    seeds = list(seeds)
    count = len(seeds)
    clocks, states, steps, pending, results = [], [], [], {}, [None] * count

    def swap_in(i):
        np.random.set_state(states[i][0])
        torch.set_rng_state(states[i][1])
        random.setstate(states[i][2])

    def swap_out(i):
        states[i] = (np.random.get_state(), torch.get_rng_state(), random.getstate())

    def advance(i, population_forward):
        """Run seed i up to its next forward pass, timed into its clock."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        swap_in(i)
        try:
            pending[i] = steps[i].send(population_forward)
        except StopIteration as done:
            results[i] = done.value
            pending.pop(i, None)
        swap_out(i)
        clocks[i].share += time.perf_counter() - started
        clocks[i].cpu_share += time.thread_time() - cpu_started

    for i, seed in enumerate(seeds):
        seed_everything(seed)
        states.append(None)
        swap_out(i)
        clocks.append(SharedClock(budget, task.info.higher_is_better, for_seed(progress, seed), check_every(task)))
        steps.append(generations(task, architecture, settings, seed, clocks[i], forward))
        advance(i, None)

    x = torch.from_numpy(np.ascontiguousarray(task.x_train, dtype=np.float32))
    while pending:
        order = list(pending)
        started, cpu_started = time.perf_counter(), time.thread_time()
        stacked = forward.stacked(np.concatenate([pending[i] for i in order]), x, [len(pending[i]) for i in order]).numpy()
        share, cpu_share = (time.perf_counter() - started) / len(order), (time.thread_time() - cpu_started) / len(order)
        offset = 0
        for i in order:
            rows = len(pending[i])
            clocks[i].share += share
            clocks[i].cpu_share += cpu_share
            predictions = stacked[offset : offset + rows]
            advance(i, lambda _x, predictions=predictions: predictions)  # its members' forward on the training set
            offset += rows

    for result in results:
        result.metrics["batched"] = count
    return results
