"""A genetic algorithm (PyGAD) evolving the flat weight vector of the shared architecture.

PyGAD runs the generational loop, elitism and fitness caching; Arena supplies:
- a batched fitness: PyGAD hands over every uncached member of a generation at once
  (`fitness_batch_size` = population size) and the task scores them in one stacked forward pass;
- vectorised operators (tournament selection, crossover, mutation) through PyGAD's custom-operator
  hooks, with the same semantics as PyGAD's built-ins: those loop in Python per gene or per parent and,
  once the fitness is batched, they were most of a generation (benchmarks/ measures both;
  `operators="pygad"` selects the built-ins);
- the run contract: counting, solve checks, budget and cancellation from `on_generation`.

Counting: one evaluation per member per training sample (or per agent-step on control tasks).
PyGAD caches the fitness of elites; on tasks whose fitness depends on the episodes drawn
(`info.noisy_fitness`), those survivors are re-scored on the generation's episodes, so no member is
credited with a score from easier episodes.

Many seeds (`train_seeds`, what `arena.execute_seeds` calls on supervised tasks): PyGAD's per-generation
Python cost cannot be shared between seeds, so the same generation is written out for S populations at
once, with the same operators and draws: each seed's result is its `train` run's, bit for bit.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from arena.contract import Budget, ChampionCheck, ProgressCallback, RunClock, RunResult, SharedClock, check_every, for_seed
from arena.models.architecture import INIT_SCHEMES, Architecture
from arena.tasks.base import episode_seed
from arena.validation import Model, is_complete

NAME = "ga"


class GASettings(Model):
    """A genetic algorithm (PyGAD) evolving the flat weight vector; the population is evaluated at once."""

    population_size: int = Field(50, ge=2, le=10_000, description="networks per generation")
    num_parents_mating: int = Field(20, ge=2, le=10_000, description="parents selected per generation")
    parent_selection_type: Literal["sss", "rws", "sus", "rank", "random", "tournament"] = Field("tournament", description="PyGAD parent selection")
    tournament_size: int = Field(3, ge=1, le=100, description="K for tournament selection")
    crossover_type: Literal["single_point", "two_points", "uniform", "scattered", "none"] = Field("uniform", description="PyGAD crossover")
    crossover_probability: float = Field(0.9, ge=0.0, le=1.0, description="probability that a pair of parents is crossed over")
    mutation_type: Literal["gaussian", "random"] = Field("gaussian", description="gaussian: add N(0, range^2); random: add U(-range, range) (PyGAD's 'random')")
    mutation_probability: float = Field(0.1, ge=0.0, le=1.0, description="probability that a gene is mutated")
    mutation_range: float = Field(0.5, ge=1e-6, le=100.0, description="gaussian: standard deviation; random: uniform in [-range, range]")
    keep_elitism: int = Field(2, ge=0, le=10_000, description="best networks copied unchanged into the next generation")
    operators: Literal["vectorised", "pygad"] = Field(
        "vectorised",
        description="vectorised: numpy tournament, crossover and mutation through PyGAD's hooks; "
        "pygad: PyGAD's built-in operators (per-gene Python loops, slower; its mutation is 'random' whatever mutation_type says)",
    )
    init: Literal[INIT_SCHEMES] = Field("default", description="initial weights, the same schemes as backprop")
    init_scale: float = Field(1.0, ge=1e-6, le=100.0, description="scale of the normal or uniform initialisation")

    @field_validator("num_parents_mating", "keep_elitism")
    @classmethod
    def _fits_population(cls, value: int, info: ValidationInfo) -> int:
        if not is_complete(info):  # the task's defaults are not merged in yet (see arena.validation.check)
            return value
        population = info.data.get("population_size")  # validated first: it is declared first
        if population is not None and value > population:
            raise ValueError(f"{info.field_name} ({value}) must not exceed population_size ({population})")
        return value


Settings = GASettings

WORST_FITNESS = -1e30  # PyGAD refuses NaN; a diverged network gets the worst fitness instead


class Draws(NamedTuple):
    """One generation's random numbers, stacked for A seeds (A = 1 in `train`)."""

    contenders: np.ndarray  # (A, parents, tournament_size) member indices
    cuts: np.ndarray  # (A, offspring, 0|1|2) crossover cut points, sorted
    uniforms: np.ndarray  # (A, offspring, [genes crossover mask] + 1 crossover coin + genes mutation mask)
    noise: np.ndarray  # (A, offspring, genes) mutation noise


def draw_generation(rngs: list[np.random.Generator], settings: GASettings, parents: int, offspring: int, genes: int) -> Draws:
    """Each seed's draws for one generation from its own generator, always the same numbers in the same
    order, so a seed draws the same whether it runs alone (`train`) or with others (`train_seeds`)."""
    uniform = settings.crossover_type in ("uniform", "scattered")
    cut_points = 0 if uniform else 2 if settings.crossover_type == "two_points" else 1
    contenders = np.empty((len(rngs), parents, settings.tournament_size), dtype=np.int64)
    cuts = np.empty((len(rngs), offspring, cut_points), dtype=np.int64)
    uniforms = np.empty((len(rngs), offspring, (genes if uniform else 0) + 1 + genes))
    noise = np.empty((len(rngs), offspring, genes))
    for row, rng in enumerate(rngs):
        contenders[row] = rng.integers(0, settings.population_size, contenders.shape[1:])
        if cut_points:
            cuts[row] = rng.integers(0, genes, cuts.shape[1:])
        rng.random(out=uniforms[row])
        if settings.mutation_type == "gaussian":
            rng.standard_normal(out=noise[row])
        else:
            rng.random(out=noise[row])
    if settings.mutation_type == "gaussian":
        noise *= settings.mutation_range  # N(0, range^2)
    else:
        noise = settings.mutation_range * (2.0 * noise - 1.0)  # U(-range, range), PyGAD's "random"
    return Draws(contenders, np.sort(cuts, axis=2), uniforms, noise)


def tournament(fitness: np.ndarray, draws: Draws) -> np.ndarray:
    """Each parent is the fittest of its `tournament_size` contenders (the first on a tie): (A, P) -> (A, parents)."""
    rows = np.arange(len(fitness))[:, None, None]
    best = np.argmax(fitness[rows, draws.contenders], axis=2)
    return np.take_along_axis(draws.contenders, best[..., None], axis=2)[..., 0]


def crossover(parents: np.ndarray, draws: Draws, settings: GASettings) -> np.ndarray:
    """PyGAD's pairing (child k of parents k and k+1) and crossover types, for all offspring at once; a
    pair is crossed with `crossover_probability`, otherwise the child copies the first parent."""
    offspring, genes = draws.noise.shape[1:]
    k = np.arange(offspring)
    first, second = parents[:, k % parents.shape[1]], parents[:, (k + 1) % parents.shape[1]]
    if settings.crossover_type in ("uniform", "scattered"):
        take_second = draws.uniforms[..., :genes] < 0.5
    else:
        position = np.arange(genes)
        take_second = position >= draws.cuts[..., :1]
        if settings.crossover_type == "two_points":
            take_second &= position < draws.cuts[..., 1:]
    crossed = draws.uniforms[..., -genes - 1] < settings.crossover_probability
    return np.where(take_second & crossed[..., None], second, first)


def mutate(children: np.ndarray, draws: Draws, settings: GASettings) -> np.ndarray:
    """Each gene mutates with `mutation_probability`: it gains the generation's noise."""
    genes = draws.noise.shape[2]
    return children + (draws.uniforms[..., -genes:] < settings.mutation_probability) * draws.noise


def train(
    task,
    architecture: Architecture,
    settings: GASettings,
    budget: Budget,
    seed: int,
    progress: ProgressCallback | None = None,
) -> RunResult:
    import pygad  # here, not at the top: the HTTP API reads GASettings and never imports PyGAD or torch

    from arena.models.network import PopulationForward, initial_vectors

    forward = PopulationForward(architecture)
    # The same initial-weight distribution as backprop's network; drawn from torch's seeded generator
    # (PyGAD's random_seed does not cover a population we build ourselves).
    initial_population = initial_vectors(architecture, settings.population_size, settings.init, settings.init_scale).double().numpy()
    builtin = settings.operators == "pygad"
    # The vectorised operators: PyGAD's hooks take this seed's draws for the generation (`draw_generation`,
    # made once per generation by whichever hook runs first) and apply them as `train_seeds` does for many.
    rngs = [np.random.default_rng(seed)]
    draws = {"generation": None, "draws": None}

    def generation_draws(ga) -> Draws:
        if draws["generation"] != ga.generations_completed:
            offspring = settings.population_size - settings.keep_elitism
            draws.update(generation=ga.generations_completed, draws=draw_generation(rngs, settings, settings.num_parents_mating, offspring, ga.num_genes))
        return draws["draws"]

    def select_parents(fitness: np.ndarray, num_parents: int, ga):
        winners = tournament(np.asarray(fitness)[None], generation_draws(ga))[0]
        return ga.population[winners].copy(), winners

    crossover_type = None if settings.crossover_type == "none" else settings.crossover_type
    if not builtin and crossover_type is not None:
        crossover_type = lambda parents, _size, ga: crossover(parents[None], generation_draws(ga), settings)[0]  # noqa: E731
    selection = settings.parent_selection_type
    if not builtin and selection == "tournament":
        selection = select_parents
    clock = RunClock(budget, task.info.higher_is_better, progress, check_every(task))
    # Who was scored on this generation's episodes, and (logic tasks) their outputs on the truth table.
    evaluated = {"generation": -1, "members": set(), "rows": {}, "predictions": None}
    best = {"weights": initial_population[0].copy()}
    check = ChampionCheck(task, clock, forward.single)  # the solve check on each generation's champion
    reuse = getattr(task, "scores_on_training_set", False)

    def score_members(solutions: np.ndarray, generation: int) -> np.ndarray:
        population_forward = forward.numpy(solutions)

        def forward_and_keep(x):
            evaluated["predictions"] = population_forward(x)
            return evaluated["predictions"]

        fitness, used = task.fitness(forward_and_keep if reuse else population_forward, episode_seed(seed, generation))
        clock.evaluations += used
        return np.nan_to_num(np.asarray(fitness, dtype=np.float64), nan=WORST_FITNESS, neginf=WORST_FITNESS, posinf=WORST_FITNESS)

    def fitness_func(ga, solutions: np.ndarray, indices) -> list[float]:
        if evaluated["generation"] != ga.generations_completed:
            evaluated.update(generation=ga.generations_completed, members=set())
        evaluated["members"].update(indices)
        evaluated["rows"] = {int(index): row for row, index in enumerate(indices)}
        # A list of Python floats: PyGAD validates each value, and that is cheaper on floats than on numpy scalars.
        return score_members(solutions, ga.generations_completed).tolist()

    def on_generation(ga):
        fitness = ga.last_generation_fitness
        if task.info.noisy_fitness:
            scored = evaluated["members"] if evaluated["generation"] == ga.generations_completed else set()
            cached = [i for i in range(len(ga.population)) if i not in scored]
            if cached:
                fitness[cached] = score_members(ga.population[cached], ga.generations_completed)

        index = int(np.argmax(fitness))
        champion = ga.population[index]
        # On logic tasks a champion scored this generation is judged on the outputs its fitness came from.
        row = evaluated["rows"].get(index) if reuse and evaluated["generation"] == ga.generations_completed else None
        score, solved = check(champion, None if row is None else evaluated["predictions"][row])  # an unchanged champion keeps its verdict
        if clock.record(score, bool(solved)):
            best["weights"] = champion.copy()
        if clock.should_stop():
            return "stop"

    ga = pygad.GA(
        num_generations=10**9,  # the budget, the solve rule or cancellation stops the run
        num_parents_mating=settings.num_parents_mating,
        fitness_func=fitness_func,
        fitness_batch_size=settings.population_size,
        initial_population=initial_population,
        gene_type=float,
        parent_selection_type=selection,
        K_tournament=settings.tournament_size,
        crossover_type=crossover_type,
        crossover_probability=settings.crossover_probability,
        mutation_type="random" if builtin else lambda children, ga: mutate(children[None], generation_draws(ga), settings)[0],
        mutation_probability=settings.mutation_probability,
        random_mutation_min_val=-settings.mutation_range,
        random_mutation_max_val=settings.mutation_range,
        keep_elitism=settings.keep_elitism,
        keep_parents=0 if settings.keep_elitism == 0 else -1,
        on_generation=on_generation,
        random_seed=seed,
        suppress_warnings=True,
    )
    ga.run()

    score, solved, metrics = task.evaluate(forward.single(best["weights"]))
    return clock.finish(best["weights"], score, solved, metrics)


# --- many seeds in lock-step: PyGAD's generation written out for S populations at once ----------------


def batches(task, settings: GASettings) -> bool:
    """Whether `train_seeds` batches these runs: supervised tasks (one forward pass on the training set
    scores a member) with the default vectorised tournament, crossover and mutation. PyGAD's built-in
    operators and other selections draw from numpy's global generator inside PyGAD, and "none" crossover
    takes another PyGAD path: those runs go one seed after another through `train`."""
    return (
        not task.info.noisy_fitness
        and getattr(task, "x_train", None) is not None
        and settings.operators == "vectorised"
        and settings.parent_selection_type == "tournament"
        and settings.crossover_type != "none"
    )


def train_seeds(task, architecture: Architecture, settings: GASettings, budget: Budget, seeds: list[int], progress=None) -> list[RunResult]:
    """S GA runs in lock-step, generation by generation, each bit for bit its unbatched (PyGAD) run.

    Why not S PyGAD instances: PyGAD's loop costs about 0.5 ms of Python per generation (fitness value
    validation, a tuple-keyed fitness cache), several times the generation's own work on a small network,
    and batching cannot share it. So this is the loop PyGAD runs for `train`, written out for S
    populations (S, P, n) with the same steps in the same order: the operators `train` hands PyGAD
    (`tournament`, `crossover`, `mutate` on each seed's own draws), the `keep_elitism` best in front
    (PyGAD's stable descending sort), fitness reused for members identical to a last generation's elite or parent
    (PyGAD's cache, so evaluations count the same), every seed's uncached members scored in ONE stacked
    forward (`PopulationForward.stacked`), then each seed's champion check, record and stop.
    tests/test_batched.py checks weights, counts and curves against `train`; benchmarks/bench_seeds.py
    measures the gain. A seed whose generation has a single uncached member could differ in the last
    bit (torch's one-row product path); with the defaults that does not happen.
    Seconds: each seed gets an equal share of every generation it took part in; `metrics["batched"]` = S.
    """
    import time

    import torch

    from arena.models.network import PopulationForward, initial_vectors
    from arena.runner import seed_everything

    forward = PopulationForward(architecture)
    x = torch.from_numpy(task.x_train)
    count, size, elites = len(seeds), settings.population_size, settings.keep_elitism
    parents, genes = settings.num_parents_mating, architecture.num_parameters
    offspring = size - elites
    rngs, clocks, checks, initial = [], [], [], []
    for seed in seeds:
        seed_everything(seed)  # the initial population is torch's draw, as in `train`
        initial.append(initial_vectors(architecture, size, settings.init, settings.init_scale).double().numpy())
        rngs.append(np.random.default_rng(seed))
        clocks.append(SharedClock(budget, task.info.higher_is_better, for_seed(progress, seed), check_every(task)))
        checks.append(ChampionCheck(task, clocks[-1], forward.single))
    pop = np.stack(initial)  # (A, P, n): the active seeds' populations, row by row as in `active`
    best = pop[:, 0].copy()
    results: list[RunResult | None] = [None] * count

    reuse = getattr(task, "scores_on_training_set", False)

    def score(members: np.ndarray, fresh: np.ndarray) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray]:
        """Fitness (A, P) of the `fresh` members (NaN elsewhere), all seeds in one forward; the
        evaluations one member costs; the outputs, and each fresh member's row in them (-1: cached)."""
        fitness = np.full(fresh.shape, np.nan)
        rows = np.full(fresh.shape, -1)
        sizes = fresh.sum(axis=1)
        if not sizes.any():
            return fitness, 0, None, rows
        predictions = forward.stacked(members[fresh], x, sizes[sizes > 0].tolist()).numpy()
        values, used = task.fitness(lambda _x: predictions)
        fitness[fresh] = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=WORST_FITNESS, neginf=WORST_FITNESS, posinf=WORST_FITNESS)
        rows[fresh] = np.arange(len(predictions))
        return fitness, used // len(predictions), predictions, rows

    started, cpu_started = time.perf_counter(), time.thread_time()
    fit, per_member, _, _ = score(pop, np.ones((count, size), dtype=bool))
    for clock in clocks:
        clock.evaluations += size * per_member
    active = np.arange(count)
    while len(active):
        rows = np.arange(len(active))[:, None]
        draws = draw_generation([rngs[i] for i in active], settings, parents, offspring, genes)
        winners = tournament(fit, draws)
        chosen = pop[rows, winners]  # (A, parents, n)
        children = mutate(crossover(chosen, draws, settings), draws, settings)
        # The next generation: the elites (PyGAD's stable descending sort) in front, then the children.
        elite_index = np.argsort(fit, axis=1, kind="stable")[:, ::-1][:, :elites]
        elite_members = pop[rows, elite_index]
        new = np.concatenate([elite_members, children], axis=1)

        # PyGAD's cache: a member identical to a last generation's elite or parent keeps that fitness.
        if elites > 0:
            known = np.concatenate([elite_members, chosen], axis=1)
            known_fitness = np.concatenate([fit[rows, elite_index], fit[rows, winners]], axis=1)
            # Identical vectors agree on their first gene: compare whole vectors only for those pairs.
            match = new[:, :, None, 0] == known[:, None, :, 0]
            a, p, q = np.nonzero(match)
            match[a, p, q] = (new[a, p] == known[a, q]).all(axis=1)
            cached = match.any(axis=2)
        else:
            cached = np.zeros(new.shape[:2], dtype=bool)
        new_fitness, per_member, predictions, fresh_rows = score(new, ~cached)
        if elites > 0:
            new_fitness[cached] = np.take_along_axis(known_fitness, np.argmax(match, axis=2), axis=1)[cached]

        share, cpu_share = (time.perf_counter() - started) / len(active), (time.thread_time() - cpu_started) / len(active)
        started, cpu_started = time.perf_counter(), time.thread_time()
        evaluations = (~cached).sum(axis=1) * per_member
        stopped = []
        for row, i in enumerate(active):
            clock = clocks[i]
            clock.share += share
            clock.cpu_share += cpu_share
            clock.evaluations += int(evaluations[row])
            index = int(np.argmax(new_fitness[row]))
            champion = new[row, index]
            scored_row = fresh_rows[row, index] if reuse else -1  # as in `train`: judge the outputs its fitness came from
            score_, solved = checks[i](champion, None if scored_row < 0 else predictions[scored_row])
            if clock.record(score_, bool(solved)):
                best[i] = champion
            if clock.should_stop():
                final, final_solved, metrics = task.evaluate(forward.single(best[i]))
                results[i] = clock.finish(best[i].copy(), final, final_solved, metrics)
                stopped.append(row)
        pop, fit, active = np.delete(new, stopped, axis=0), np.delete(new_fitness, stopped, axis=0), np.delete(active, stopped)

    for result in results:
        result.metrics["batched"] = count
    return results
