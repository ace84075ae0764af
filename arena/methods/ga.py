"""A genetic algorithm evolving the flat weight vector of the shared architecture: PyGAD's generation.

The GA is an ask/tell optimiser (`Generations`) driven by the population loop (arena/methods/loop.py),
which owns counting, the clock, the solve checks and stopping. `Generations` is PyGAD's generational
loop written out, with the same steps in the same order, so a run is bit for bit PyGAD's run with the
same settings and seed (tests/test_bitwise.py holds runs recorded from the PyGAD version):
- the initial population is scored first, with no solve check (PyGAD checks from its first generation);
- vectorised operators (tournament selection, crossover, mutation) with the semantics of PyGAD's
  built-ins, on each seed's own draws: PyGAD's built-ins loop in Python per gene or per parent, and
  once the fitness is batched they were most of a generation (benchmarks/ measures both);
- `keep_elitism` elites in front (PyGAD's stable sort) and PyGAD's fitness cache: a member identical to a
  last generation's elite or parent keeps its fitness and is not asked again (so it costs no evaluations).
It works on A seeds at once ((A, P, n) arrays), so many seeds in lock-step (`train_seeds`, what
`arena.execute_seeds` calls) pay the per-generation Python cost once, not once per seed.

PyGAD still runs the GA where writing it out would not be bit for bit (`batches` says which, and
`train_pygad` is PyGAD's own loop taking every counting, checking and stopping decision from the
loop's RunClock): `operators="pygad"` (its built-ins) and selections other than tournament draw from
numpy's global generator inside PyGAD; "none" crossover takes another PyGAD path; on control tasks
(`info.noisy_fitness`) PyGAD scores a generation in two calls, the new members and then the cached
survivors re-scored on the generation's episodes (so no member is credited with a score from easier
episodes), and a member's floats depend on its place in the batch, which one ask would change.

Counting: one evaluation per member per training sample (or per agent-step on control tasks).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from arena.contract import Budget, ProgressCallback, RunResult
from arena.methods import loop
from arena.methods.loop import WORST_FITNESS, ChampionCheck, RunClock
from arena.models.architecture import INIT_SCHEMES, Architecture
from arena.tasks.base import episode_seed
from arena.validation import Model, is_complete

NAME = "ga"
LABEL = "GA"
COLOUR = "#d62728"
LIBRARIES = ("pygad",)
WARM_IMPORTS = ("pygad",)


def memory_floats(architecture, settings) -> tuple[int, str | None, str]:
    """The floats a run holds at once, for the cost caps: every member's weights."""
    n = architecture.num_parameters
    return n * settings.population_size, "population_size", f"{n:,} parameters x population_size {settings.population_size}"


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
        if population is not None and info.field_name == "keep_elitism" and value >= population:
            # Every member would be an elite: no new network per generation, so the evaluations budget is never spent.
            raise ValueError(f"keep_elitism ({value}) must be below population_size ({population}): otherwise no new network is evaluated")
        return value


Settings = GASettings



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


class Generations:
    """The GA as ask/tell for A seeds at once (A = 1 for one run): PyGAD's generation written out.

    The same steps in the same order as the PyGAD run: the initial population (torch's draw after
    `seed_everything(seed)`, as backprop's network) is asked first; then each generation the operators
    (`tournament`, `crossover`, `mutate`, on each seed's own draws `draw_generation`), the
    `keep_elitism` best in front (PyGAD's stable descending sort), and fitness reused for members
    identical to a last generation's elite or parent (PyGAD's cache, so evaluations count the same):
    only the other members are asked. Vectorised over seeds, so the lock-step loop's per-generation
    Python cost is paid once for all of them, not once per seed.
    """

    def __init__(self, task, architecture: Architecture, settings: GASettings, seeds: list[int]):
        from arena.models.network import initial_vectors

        self.settings = settings
        initial, self.rngs = [], []
        for seed in seeds:
            loop.seed_everything(seed)  # the initial population is torch's draw, as backprop's network is
            initial.append(initial_vectors(architecture, settings.population_size, settings.init, settings.init_scale).double().numpy())
            self.rngs.append(np.random.default_rng(seed))
        self.population = np.stack(initial)  # (A, P, n)
        self.fitness = None  # (A, P) once the population is scored
        self.genes = architecture.num_parameters
        self.asked = np.ones(self.population.shape[:2], dtype=bool)  # which members were asked (the rest are cached)

    def ask(self) -> list[np.ndarray]:
        if self.fitness is None:  # the initial population
            return list(self.population)
        settings, elites = self.settings, self.settings.keep_elitism
        pop, fit = self.population, self.fitness
        rows = np.arange(len(pop))[:, None]
        draws = draw_generation(self.rngs, settings, settings.num_parents_mating, settings.population_size - elites, self.genes)
        winners = tournament(fit, draws)
        chosen = pop[rows, winners]  # (A, parents, n)
        children = mutate(crossover(chosen, draws, settings), draws, settings)
        # The next generation: the elites (PyGAD's stable descending sort) in front, then the children.
        elite_index = np.argsort(fit, axis=1, kind="stable")[:, ::-1][:, :elites]
        elite_members = pop[rows, elite_index]
        self.new = np.concatenate([elite_members, children], axis=1)
        self.new_fitness = np.full(self.new.shape[:2], np.nan)
        # PyGAD's cache: a member identical to a last generation's elite or parent keeps that fitness.
        if elites > 0:
            known = np.concatenate([elite_members, chosen], axis=1)
            known_fitness = np.concatenate([fit[rows, elite_index], fit[rows, winners]], axis=1)
            # Identical vectors agree on their first gene: compare whole vectors only for those pairs.
            match = self.new[:, :, None, 0] == known[:, None, :, 0]
            a, p, q = np.nonzero(match)
            match[a, p, q] = (self.new[a, p] == known[a, q]).all(axis=1)
            cached = match.any(axis=2)
            self.new_fitness[cached] = np.take_along_axis(known_fitness, np.argmax(match, axis=2), axis=1)[cached]
        else:
            cached = np.zeros(self.new.shape[:2], dtype=bool)
        self.asked = ~cached
        return [members[fresh] for members, fresh in zip(self.new, self.asked)]

    def tell(self, fitness: list[np.ndarray]) -> list[None]:
        if self.fitness is None:
            self.fitness = np.stack(fitness)
        else:
            self.new_fitness[self.asked] = np.concatenate(fitness)
            self.population, self.fitness = self.new, self.new_fitness
        return [None] * len(fitness)

    def champions(self) -> list:
        """Each seed's best member and its row among the members it asked (None: a cached one). None
        after the initial population: PyGAD checks nothing before its first generation."""
        if not hasattr(self, "new"):
            return [None] * len(self.population)
        index = np.argmax(self.fitness, axis=1)
        rows = np.cumsum(self.asked, axis=1) - 1
        return [
            (self.population[a, i], int(rows[a, i]) if self.asked[a, i] else None) for a, i in enumerate(index)
        ]

    def drop(self, stopped: list[int]) -> None:
        self.population, self.fitness = np.delete(self.population, stopped, axis=0), np.delete(self.fitness, stopped, axis=0)
        self.asked = np.delete(self.asked, stopped, axis=0)
        self.rngs = [rng for row, rng in enumerate(self.rngs) if row not in stopped]


def start(task, architecture: Architecture, settings: GASettings, seed: int):
    return loop.OneSeed(Generations(task, architecture, settings, [seed]))


def batches(task, settings: GASettings) -> bool:
    """Whether a run goes through the ask/tell loop (and many seeds through its lock-step): supervised
    tasks (one forward pass on the training set scores a member) with the default vectorised tournament,
    crossover and mutation. Everything else is PyGAD's own run (`train_pygad`): its built-in operators
    and other selections draw from numpy's global generator inside PyGAD, "none" crossover takes another
    PyGAD path, and on control tasks PyGAD scores a generation in two calls (the new members, then the
    survivors re-scored on the same episodes) whose floats a single ask would not reproduce."""
    return (
        loop.batches(task)
        and settings.operators == "vectorised"
        and settings.parent_selection_type == "tournament"
        and settings.crossover_type != "none"
    )


def train(task, architecture: Architecture, settings: GASettings, budget: Budget, seed: int, progress: ProgressCallback | None = None) -> RunResult:
    if not batches(task, settings):
        return train_pygad(task, architecture, settings, budget, seed, progress)
    return loop.train_population(start, task, architecture, settings, budget, seed, progress)


def train_seeds(task, architecture: Architecture, settings: GASettings, budget: Budget, seeds: list[int], progress=None) -> list[RunResult]:
    """S GA runs in lock-step through the loop (`arena.execute_seeds` calls it when `batches` says so):
    one stacked forward per generation for every seed, each seed bit for bit its `train` run.
    tests/test_batched.py and tests/test_bitwise.py check it; benchmarks/bench_seeds.py measures the gain."""
    return loop.train_population_seeds(start, task, architecture, settings, budget, seeds, progress, start_seeds=lambda *args: Generations(*args))


def train_pygad(
    task,
    architecture: Architecture,
    settings: GASettings,
    budget: Budget,
    seed: int,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """PyGAD's own loop, for the runs the ask/tell generation does not cover (see the module docstring),
    taking every decision about counting, checking and stopping from the loop's RunClock."""
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
    clock = RunClock.for_task(task, budget, progress)
    # Who was scored on this generation's episodes, and (logic tasks) their outputs on the truth table.
    evaluated = {"generation": -1, "members": set(), "rows": {}, "predictions": None}
    best = {"weights": initial_population[0].copy()}
    check = ChampionCheck(task, clock, forward.single)  # the solve check on each generation's champion
    reuse = getattr(task, "scores_on_training_set", False)
    progressed = {"evaluations": 0, "empty": 0}  # generations in a row that evaluated nothing new

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
        fitness = score_members(solutions, ga.generations_completed).tolist()
        if ga.generations_completed == 0:  # the initial population: progress is counted from here, as the loop does
            progressed["evaluations"] = clock.evaluations
        return fitness

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
        # The loop's rule for a run that evaluates nothing new (elites filling the population).
        progressed["empty"] = 0 if clock.evaluations > progressed["evaluations"] else progressed["empty"] + 1
        progressed["evaluations"] = clock.evaluations
        if progressed["empty"] >= loop.MAX_EMPTY_GENERATIONS:
            clock.stopped = "no progress"
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
