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
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from arena.contract import Budget, ChampionCheck, ProgressCallback, RunClock, RunResult, check_every
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


def vectorised_mutation(settings: GASettings, rng: np.random.Generator):
    """Each gene mutates with `mutation_probability`: it gains N(0, range^2) or U(-range, range) noise."""

    def mutation(offspring: np.ndarray, ga) -> np.ndarray:
        mask = rng.random(offspring.shape) < settings.mutation_probability
        if settings.mutation_type == "gaussian":
            noise = rng.normal(0.0, settings.mutation_range, offspring.shape)
        else:
            noise = rng.uniform(-settings.mutation_range, settings.mutation_range, offspring.shape)
        return offspring + mask * noise

    return mutation


def vectorised_crossover(settings: GASettings, rng: np.random.Generator):
    """PyGAD's pairing (parent k with parent k+1) and crossover types, for all offspring at once."""

    def crossover(parents: np.ndarray, offspring_size: tuple, ga) -> np.ndarray:
        count, genes = offspring_size
        k = np.arange(count)
        first, second = parents[k % len(parents)], parents[(k + 1) % len(parents)]
        if settings.crossover_type in ("uniform", "scattered"):
            take_second = rng.random((count, genes)) < 0.5
        else:
            cuts = np.sort(rng.integers(0, genes, (count, 2 if settings.crossover_type == "two_points" else 1)), axis=1)
            position = np.arange(genes)
            take_second = position >= cuts[:, :1]
            if settings.crossover_type == "two_points":
                take_second &= position < cuts[:, 1:]
        # A pair is crossed with crossover_probability; otherwise the child is a copy of the first parent.
        take_second &= (rng.random(count) < settings.crossover_probability)[:, None]
        return np.where(take_second, second, first)

    return crossover


def vectorised_tournament(settings: GASettings, rng: np.random.Generator):
    """Each parent is the fittest of `tournament_size` members drawn at random."""

    def select(fitness: np.ndarray, num_parents: int, ga):
        contenders = rng.integers(0, len(fitness), (num_parents, settings.tournament_size))
        winners = contenders[np.arange(num_parents), np.argmax(fitness[contenders], axis=1)]
        return ga.population[winners].copy(), winners

    return select


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
    operator_rng = np.random.default_rng(seed)
    builtin = settings.operators == "pygad"
    crossover = None if settings.crossover_type == "none" else settings.crossover_type
    if not builtin and crossover is not None:
        crossover = vectorised_crossover(settings, operator_rng)
    selection = settings.parent_selection_type
    if not builtin and selection == "tournament":
        selection = vectorised_tournament(settings, operator_rng)
    clock = RunClock(budget, task.info.higher_is_better, progress, check_every(task))
    evaluated = {"generation": -1, "members": set()}  # who was scored on this generation's episodes
    best = {"weights": initial_population[0].copy()}
    check = ChampionCheck(task, clock, forward.single)  # the solve check on each generation's champion

    def score_members(solutions: np.ndarray, generation: int) -> np.ndarray:
        fitness, used = task.fitness(forward.numpy(solutions), episode_seed(seed, generation))
        clock.evaluations += used
        return np.nan_to_num(np.asarray(fitness, dtype=np.float64), nan=WORST_FITNESS, neginf=WORST_FITNESS, posinf=WORST_FITNESS)

    def fitness_func(ga, solutions: np.ndarray, indices) -> list[float]:
        if evaluated["generation"] != ga.generations_completed:
            evaluated.update(generation=ga.generations_completed, members=set())
        evaluated["members"].update(indices)
        # A list of Python floats: PyGAD validates each value, and that is cheaper on floats than on numpy scalars.
        return score_members(solutions, ga.generations_completed).tolist()

    def on_generation(ga):
        fitness = ga.last_generation_fitness
        if task.info.noisy_fitness:
            scored = evaluated["members"] if evaluated["generation"] == ga.generations_completed else set()
            cached = [i for i in range(len(ga.population)) if i not in scored]
            if cached:
                fitness[cached] = score_members(ga.population[cached], ga.generations_completed)

        champion = ga.population[int(np.argmax(fitness))]
        score, solved = check(champion)  # reuses the verdict on an unchanged champion (an elite)
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
        crossover_type=crossover,
        crossover_probability=settings.crossover_probability,
        mutation_type="random" if builtin else vectorised_mutation(settings, operator_rng),
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
