"""The run contract, for both trainers: counting, budgets, reproducibility, cancellation, solving."""

import numpy as np
import pytest

from arena.contract import Budget
from arena.errors import ArenaError
from arena.methods import cmaes, ga, make_settings
from arena.models import Architecture
from arena.runspec import resolve
from arena.tasks.base import TaskInfo
from arena.runner import execute

METHODS = ["backprop", "ga", "cmaes"]
CONTRACT_FIELDS = {"score", "solved", "evaluations_to_solve", "seconds_to_solve", "evaluations", "seconds", "curve", "weights"}


def without_time(result):
    data = result.to_dict()
    for key in ("seconds", "seconds_to_solve", "cpu_seconds", "cpu_seconds_to_solve"):
        data.pop(key)
    data["curve"] = [{k: v for k, v in p.items() if k != "seconds"} for p in data["curve"]]
    return data


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_result_bit_for_bit(method):
    spec = resolve("parity-3", method, budget={"evaluations": 40_000, "stop_on_solve": False})
    first, second = execute(spec, 7), execute(spec, 7)
    assert without_time(first) == without_time(second)
    assert without_time(execute(spec, 8)) != without_time(first)


@pytest.mark.parametrize("method", METHODS)
def test_result_has_the_contract_fields(method):
    result = execute(resolve("xor", method), 0)
    data = result.to_dict()
    assert CONTRACT_FIELDS <= set(data)
    assert len(result.weights) == 17
    assert all(set(p) == {"evaluations", "seconds", "score"} for p in result.curve)
    evaluations = [p["evaluations"] for p in result.curve]
    assert evaluations == sorted(evaluations)
    scores = [p["score"] for p in result.curve]
    assert scores == sorted(scores, reverse=True)  # mse: best so far only goes down


def test_backprop_counts_three_evaluations_per_sample():
    steps = []
    result = execute(resolve("sine", "backprop", budget={"evaluations": 64 * 3 * 10, "stop_on_solve": False}), 0, progress=lambda p: steps.append(p))
    assert len(steps) == 10 and result.evaluations == 64 * 3 * 10
    assert [s.evaluations for s in steps] == [64 * 3 * (i + 1) for i in range(10)]


def test_backprop_minibatches_count_the_same():
    spec = resolve("sine", "backprop", budget={"evaluations": 64 * 3 * 5, "stop_on_solve": False}, settings={"batch_size": 10})
    assert execute(spec, 0).evaluations == 64 * 3 * 5


def test_ga_counts_every_evaluated_member_once():
    steps = []
    spec = resolve("xor", "ga", budget={"evaluations": 50_000, "stop_on_solve": False}, settings={"population_size": 20, "keep_elitism": 3, "num_parents_mating": 10})
    result = execute(spec, 0, progress=lambda p: steps.append(p))
    # Generation 0 evaluates all 20; later ones at most the 17 non-elites (PyGAD caches the fitness of
    # elites, and of any child identical to one), four rows each.
    assert (20 + 1) * 4 <= steps[0].evaluations <= (20 + 17) * 4
    deltas = [b.evaluations - a.evaluations for a, b in zip(steps, steps[1:])]
    assert all(0 <= d <= 17 * 4 and d % 4 == 0 for d in deltas) and max(deltas) == 17 * 4
    assert result.evaluations == steps[-1].evaluations


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("task", ["xor", "sine"])
def test_budget_is_never_overrun_by_more_than_one_step(method, task):
    steps = []
    spec = resolve(task, method, budget={"evaluations": 20_000, "stop_on_solve": False})
    result = execute(spec, 1, progress=lambda p: steps.append(p.evaluations))
    per_step = steps[-1] - steps[-2]
    assert 20_000 <= result.evaluations < 20_000 + per_step + 1
    assert result.stopped == "budget"


@pytest.mark.parametrize("method", METHODS)
def test_seconds_budget(method):
    result = execute(resolve("sine", method, budget={"seconds": 0.3, "stop_on_solve": False}), 0)
    assert 0.3 <= result.seconds < 0.8 and result.stopped == "budget"


@pytest.mark.parametrize("method", METHODS)
def test_cancellation_through_the_callback(method):
    calls = []

    def progress(p):
        calls.append(p.step)
        return p.step >= 5  # ask to stop after the fifth epoch or generation

    result = execute(resolve("sine", method, budget={"evaluations": 10**9}), 0, progress=progress)
    assert result.stopped == "cancelled" and calls == [1, 2, 3, 4, 5]
    assert result.score == pytest.approx(result.curve[-1]["score"])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_methods_solve_xor_with_defaults(method, seed):
    result = execute(resolve("xor", method), seed)
    assert result.solved and result.stopped == "solved"
    assert result.evaluations_to_solve == result.evaluations
    assert result.metrics["margin"] > 0 and result.metrics["accuracy"] == 1.0


def test_ga_operators_choice_keeps_solving():
    result = execute(resolve("and", "ga", settings={"operators": "pygad", "crossover_type": "single_point"}), 0)
    assert result.solved


def test_vectorised_crossover_takes_genes_from_the_two_parents():
    rng = np.random.default_rng(0)
    parents = np.stack([np.zeros(10), np.ones(10), np.full(10, 2.0)])
    for kind in ("uniform", "single_point", "two_points"):
        config = ga.GASettings(crossover_type=kind, crossover_probability=1.0, num_parents_mating=3, population_size=8, keep_elitism=2)
        children = ga.crossover(parents[None], ga.draw_generation([rng], config, 3, 6, 10), config)[0]
        assert children.shape == (6, 10)
        for k, child in enumerate(children):
            assert set(child) <= {parents[k % 3][0], parents[(k + 1) % 3][0]}
    config = ga.GASettings(crossover_type="uniform", crossover_probability=0.0)
    assert np.array_equal(ga.crossover(parents[None], ga.draw_generation([rng], config, 3, 3, 10), config)[0], parents)


@pytest.mark.parametrize("kind", ["random", "gaussian"])
def test_vectorised_mutation_rate(kind):
    config = ga.GASettings(mutation_probability=0.1, mutation_range=0.5, mutation_type=kind)
    draws = ga.draw_generation([np.random.default_rng(0)], config, 20, 200, 100)
    mutated = ga.mutate(np.zeros((1, 200, 100)), draws, config)[0]
    changed = mutated != 0
    assert 0.08 < changed.mean() < 0.12
    if kind == "random":
        assert np.abs(mutated).max() <= 0.5 and mutated.min() < -0.45 and mutated.max() > 0.45
    else:
        assert 0.45 < mutated[changed].std() < 0.55


def test_tournament_picks_the_fittest_contender():
    config = ga.GASettings(population_size=6, tournament_size=3)
    draws = ga.draw_generation([np.random.default_rng(1), np.random.default_rng(2)], config, 20, 4, 5)
    fitness = np.array([[0.0, 5, 1, 2, 3, 4], [9.0, 1, 2, 3, 4, 5]])
    winners = ga.tournament(fitness, draws)
    for s in range(2):
        for j in range(20):
            assert fitness[s, winners[s, j]] == fitness[s, draws.contenders[s, j]].max()


class NoisyTask:
    """A tiny task whose fitness depends on the episodes: checks that survivors are re-scored."""

    info = TaskInfo(
        name="noisy", description="", kind="control", input_size=1, output_size=1,
        default_architecture=Architecture(1, (), 1), default_budget=Budget(evaluations=1000),
        score_name="s", higher_is_better=True, solved_rule="never", noisy_fitness=True,
    )

    def __init__(self):
        self.calls = []

    def fitness(self, population_forward, episode_seed=0):
        out = population_forward(np.ones((1, 1), dtype=np.float32))[:, 0, 0]
        self.calls.append((episode_seed, len(out)))
        return -np.abs(out - 1.0) + np.random.default_rng(episode_seed).normal(), len(out)

    def evaluate(self, forward):
        return float(-abs(forward(np.ones((1, 1), dtype=np.float32))[0, 0] - 1)), False, {}


def test_noisy_fitness_rescores_survivors_on_the_generations_episodes():
    task = NoisyTask()
    config = make_settings("ga", "control", overrides={"population_size": 10, "num_parents_mating": 4, "keep_elitism": 3})
    result = ga.train(task, task.info.default_architecture, config, Budget(evaluations=200, stop_on_solve=False), 0)
    by_seed = {}
    for seed, count in task.calls:
        by_seed[seed] = by_seed.get(seed, 0) + count
    assert all(count == 10 for count in by_seed.values())  # every member, every generation, same episodes
    assert result.evaluations == sum(by_seed.values())


def test_bad_settings_are_refused_with_the_field():
    cases = [
        (dict(settings={"population_size": 0}), "population_size"),
        (dict(settings={"num_parents_mating": 80}), "num_parents_mating"),
        (dict(settings={"mutation_probability": 1.5}), "mutation_probability"),
        (dict(settings={"crossover_type": "zigzag"}), "crossover_type"),
        (dict(settings={"learning_rate": 0.1}), "learning_rate"),  # a backprop setting given to the GA
        (dict(budget={"evaluations": 0}), "evaluations"),
        (dict(budget={"seconds": float("nan")}), "seconds"),
        (dict(budget={}), "budget"),
        (dict(budget={"steps": 3}), "steps"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ArenaError) as error:
            resolve("xor", "ga", **kwargs)
        assert error.value.field == field, (kwargs, error.value)
    with pytest.raises(ArenaError) as error:
        resolve("xor", "backprop", settings={"optimizer": "adamw"})
    assert error.value.field == "optimizer" and "'adam', 'sgd' or 'rmsprop'" in str(error.value)
    assert "did you mean 'adam'?" in str(error.value)
    with pytest.raises(ArenaError, match="valid methods: backprop, ga, cmaes"):
        resolve("xor", "hill-climbing")  # ("es" was the unknown name here until OpenAI-ES became a method)


class CountingTask(NoisyTask):
    """NoisyTask's shape, deterministic fitness: records each fitness call's population size."""

    def fitness(self, population_forward, episode_seed=0):
        out = population_forward(np.ones((1, 1), dtype=np.float32))[:, 0, 0]
        self.calls.append((episode_seed, len(out)))
        return -np.abs(out - 1.0), len(out)


def test_cmaes_scores_each_generation_in_one_stacked_call_and_counts_it():
    task = CountingTask()
    settings = make_settings("cmaes", "control", overrides={"population_size": 8, "ipop_restarts": False})
    result = cmaes.train(task, task.info.default_architecture, settings, Budget(evaluations=80, stop_on_solve=False), 0)
    assert [count for _, count in task.calls] == [8] * 10  # one call per generation, the whole population
    assert len({seed for seed, _ in task.calls}) == 10  # a fresh set of episodes each generation
    assert result.evaluations == 80 and result.metrics["generations"] == 10


def test_cmaes_ipop_doubles_the_population_after_convergence():
    # A 2-parameter network converges in a few generations on a fitness that is exactly reachable.
    spec = resolve("xor", "cmaes", budget={"evaluations": 400_000, "stop_on_solve": False}, settings={"population_size": 6})
    result = execute(spec, 0)
    assert result.metrics["restarts"] >= 1
    assert result.metrics["final_population_size"] == 6 * 2 ** result.metrics["restarts"]
    no_restarts = execute(resolve("xor", "cmaes", budget={"evaluations": 400_000, "stop_on_solve": False},
                                  settings={"population_size": 6, "ipop_restarts": False}), 0)
    assert no_restarts.metrics["restarts"] == 0 and no_restarts.evaluations < 400_000


def test_cmaes_covariance_choice():
    small = execute(resolve("xor", "cmaes", budget={"evaluations": 5_000}), 0)
    assert small.metrics["diagonal"] is False  # 17 parameters: full covariance under "auto"
    diagonal = execute(resolve("xor", "cmaes", budget={"evaluations": 5_000}, settings={"covariance": "diagonal"}), 0)
    assert diagonal.metrics["diagonal"] is True
    wide = resolve("sine", "cmaes", budget={"evaluations": 10_000}, architecture={"input_size": 1, "hidden_sizes": [400], "output_size": 1})
    assert execute(wide, 0).metrics["diagonal"] is True  # 1,201 parameters: sep-CMA-ES under "auto"
