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

import numpy as np
import pygad

from arena.contract import Budget, ProgressCallback, RunClock, RunResult
from arena.methods import GAConfig
from arena.models.architecture import Architecture
from arena.models.network import PopulationForward, initial_vectors
from arena.tasks.base import Task

WORST_FITNESS = -1e30  # PyGAD refuses NaN; a diverged network gets the worst fitness instead


def vectorised_mutation(config: GAConfig, rng: np.random.Generator):
    """Each gene mutates with `mutation_probability`: it gains N(0, range^2) or U(-range, range) noise."""

    def mutation(offspring: np.ndarray, ga: pygad.GA) -> np.ndarray:
        mask = rng.random(offspring.shape) < config.mutation_probability
        if config.mutation_type == "gaussian":
            noise = rng.normal(0.0, config.mutation_range, offspring.shape)
        else:
            noise = rng.uniform(-config.mutation_range, config.mutation_range, offspring.shape)
        return offspring + mask * noise

    return mutation


def vectorised_crossover(config: GAConfig, rng: np.random.Generator):
    """PyGAD's pairing (parent k with parent k+1) and crossover types, for all offspring at once."""

    def crossover(parents: np.ndarray, offspring_size: tuple, ga: pygad.GA) -> np.ndarray:
        count, genes = offspring_size
        k = np.arange(count)
        first, second = parents[k % len(parents)], parents[(k + 1) % len(parents)]
        if config.crossover_type in ("uniform", "scattered"):
            take_second = rng.random((count, genes)) < 0.5
        else:
            cuts = np.sort(rng.integers(0, genes, (count, 2 if config.crossover_type == "two_points" else 1)), axis=1)
            position = np.arange(genes)
            take_second = position >= cuts[:, :1]
            if config.crossover_type == "two_points":
                take_second &= position < cuts[:, 1:]
        # A pair is crossed with crossover_probability; otherwise the child is a copy of the first parent.
        take_second &= (rng.random(count) < config.crossover_probability)[:, None]
        return np.where(take_second, second, first)

    return crossover


def vectorised_tournament(config: GAConfig, rng: np.random.Generator):
    """Each parent is the fittest of `tournament_size` members drawn at random."""

    def select(fitness: np.ndarray, num_parents: int, ga: pygad.GA):
        contenders = rng.integers(0, len(fitness), (num_parents, config.tournament_size))
        winners = contenders[np.arange(num_parents), np.argmax(fitness[contenders], axis=1)]
        return ga.population[winners].copy(), winners

    return select


def episode_seed(seed: int, generation: int) -> int:
    """The episodes of one generation: every member of that generation sees the same ones."""
    return int(np.random.SeedSequence([seed, generation]).generate_state(1)[0])


def train(
    task: Task,
    architecture: Architecture,
    config: GAConfig,
    budget: Budget,
    seed: int,
    progress: ProgressCallback | None = None,
) -> RunResult:
    forward = PopulationForward(architecture)
    # The same initial-weight distribution as backprop's network; drawn from torch's seeded generator
    # (PyGAD's random_seed does not cover a population we build ourselves).
    initial_population = initial_vectors(architecture, config.population_size, config.init, config.init_scale).double().numpy()
    operator_rng = np.random.default_rng(seed)
    builtin = config.operators == "pygad"
    crossover = None if config.crossover_type == "none" else config.crossover_type
    if not builtin and crossover is not None:
        crossover = vectorised_crossover(config, operator_rng)
    selection = config.parent_selection_type
    if not builtin and selection == "tournament":
        selection = vectorised_tournament(config, operator_rng)
    clock = RunClock(budget, task.info.higher_is_better, progress)
    evaluated = {"generation": -1, "members": set()}  # who was scored on this generation's episodes
    best = {"weights": initial_population[0].copy()}
    last_check = {"champion": None, "verdict": None}

    def score_members(solutions: np.ndarray, generation: int) -> np.ndarray:
        fitness, used = task.fitness(forward.numpy(solutions), episode_seed(seed, generation))
        clock.evaluations += used
        return np.nan_to_num(np.asarray(fitness, dtype=np.float64), nan=WORST_FITNESS, neginf=WORST_FITNESS, posinf=WORST_FITNESS)

    def fitness_func(ga: pygad.GA, solutions: np.ndarray, indices) -> list[float]:
        if evaluated["generation"] != ga.generations_completed:
            evaluated.update(generation=ga.generations_completed, members=set())
        evaluated["members"].update(indices)
        # A list of Python floats: PyGAD validates each value, and that is cheaper on floats than on numpy scalars.
        return score_members(solutions, ga.generations_completed).tolist()

    def on_generation(ga: pygad.GA):
        fitness = ga.last_generation_fitness
        if task.info.noisy_fitness:
            scored = evaluated["members"] if evaluated["generation"] == ga.generations_completed else set()
            cached = [i for i in range(len(ga.population)) if i not in scored]
            if cached:
                fitness[cached] = score_members(ga.population[cached], ga.generations_completed)

        score = solved = None
        champion = ga.population[int(np.argmax(fitness))]
        if clock.step % task.info.eval_interval == 0:
            # With a deterministic fitness, an unchanged champion (an elite) has an unchanged score.
            if not task.info.noisy_fitness and last_check["champion"] is not None and np.array_equal(champion, last_check["champion"]):
                score, solved = last_check["verdict"]
            else:
                score, solved, _ = task.evaluate(forward.single(champion))
                last_check.update(champion=champion.copy(), verdict=(score, solved))
        if clock.record(score, bool(solved)):
            best["weights"] = champion.copy()
        if clock.should_stop():
            return "stop"

    ga = pygad.GA(
        num_generations=10**9,  # the budget, the solve rule or cancellation stops the run
        num_parents_mating=config.num_parents_mating,
        fitness_func=fitness_func,
        fitness_batch_size=config.population_size,
        initial_population=initial_population,
        gene_type=float,
        parent_selection_type=selection,
        K_tournament=config.tournament_size,
        crossover_type=crossover,
        crossover_probability=config.crossover_probability,
        mutation_type="random" if builtin else vectorised_mutation(config, operator_rng),
        mutation_probability=config.mutation_probability,
        random_mutation_min_val=-config.mutation_range,
        random_mutation_max_val=config.mutation_range,
        keep_elitism=config.keep_elitism,
        keep_parents=0 if config.keep_elitism == 0 else -1,
        on_generation=on_generation,
        random_seed=seed,
        suppress_warnings=True,
    )
    ga.run()

    score, solved, metrics = task.evaluate(forward.single(best["weights"]))
    return clock.finish(best["weights"], score, solved, metrics)
