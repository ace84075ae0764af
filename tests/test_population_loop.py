"""The population loop (arena/methods/loop.py): a method supplies ask/tell, the loop counts, checks and stops.

The cadence test is the point of the loop: a plug-in written from docs/methods.md's "Adding a method",
which never mentions the solve-check cadence, is judged at exactly the evaluation counts the GA and
CMA-ES are, on a task where the cadence matters (sine: a check at most every 2,000 evaluations, a
generation of 10 members costs 640).
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from arena.methods import ALGORITHMS, METHODS, Method, loop
from arena.runner import execute, execute_seeds
from arena.runspec import resolve
from arena.tasks import make_task

ROOT = Path(__file__).resolve().parents[1]


def plug_in(monkeypatch):
    """docs/methods.md's example module, registered with its one line."""
    text = (ROOT / "docs" / "methods.md").read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("### Adding a method") :], re.S).group(1)
    module = types.ModuleType("random_search")
    exec(compile(code, "docs/methods.md:random_search", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "random_search", module)
    monkeypatch.setitem(METHODS, "random_search", Method("random_search", "random search", module, module))
    monkeypatch.setitem(ALGORITHMS, "random_search", module)
    return module


def solve_checks(monkeypatch) -> list[list[int]]:
    """Every finished run's solve-check evaluation counts (RunClock.checks), in the order runs finish."""
    seen = []
    finish = loop.RunClock.finish

    def spy(self, *args, **kwargs):
        seen.append(list(self.checks))
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(loop.RunClock, "finish", spy)
    return seen


def expected_checks(per_generation: int, every: int, budget: int, before: int = 0) -> list[int]:
    """The cadence rule written out: the first generation, then the first generation at least `every`
    evaluations after the last check, and the generation that spends the budget. `before`: evaluations
    spent before the first generation (the GA's initial population, scored before PyGAD's generation 1)."""
    checks, evaluations = [], before
    while evaluations < budget:
        evaluations += per_generation
        if not checks or evaluations - checks[-1] >= every or evaluations >= budget:
            checks.append(evaluations)
    return checks


def test_a_plug_in_from_the_docs_is_checked_at_the_same_counts_as_the_ga_and_cmaes(monkeypatch):
    plug_in(monkeypatch)
    seen = solve_checks(monkeypatch)
    budget = {"evaluations": 20_000, "stop_on_solve": False}
    population = {"random_search": {"population_size": 10}, "ga": {"population_size": 10, "num_parents_mating": 4, "keep_elitism": 0},
                  "cmaes": {"population_size": 10, "ipop_restarts": False}}
    results = {method: execute(resolve("sine", method, budget=budget, settings=settings), 0) for method, settings in population.items()}
    checks = dict(zip(population, seen))

    every = loop.check_every(make_task("sine"))
    assert every == 2000
    expected = expected_checks(10 * 64, every, 20_000)
    assert expected[:4] == [640, 3200, 5760, 8320]  # every 4th generation: the cadence matters here
    assert checks["random_search"] == checks["cmaes"] == expected
    assert checks["ga"] == expected_checks(10 * 64, every, 20_000, before=10 * 64)  # the same rule, from its first generation
    assert [result.evaluations for result in results.values()] == [expected[-1], checks["ga"][-1], expected[-1]]


def test_the_plug_in_runs_seeds_in_lock_step_bit_for_bit(monkeypatch):
    plug_in(monkeypatch)
    spec = resolve("sine", "random_search", budget={"evaluations": 30_000})
    seeds = [0, 1, 2]
    for seed, batched in zip(seeds, execute_seeds(spec, seeds)):
        alone = execute(spec, seed)
        assert batched.weights == alone.weights and batched.curve[-1]["score"] == alone.curve[-1]["score"]
        assert (batched.evaluations, batched.stopped) == (alone.evaluations, alone.stopped)
        assert batched.metrics == {**alone.metrics, "batched": len(seeds)}


def test_the_plug_in_solves_xor_and_stops_on_solve(monkeypatch):
    plug_in(monkeypatch)
    result = execute(resolve("xor", "random_search", budget={"evaluations": 200_000}, settings={"step": 0.5}), 0)
    assert result.solved and result.stopped == "solved" and result.evaluations == result.evaluations_to_solve


@pytest.mark.parametrize("operators", ["vectorised", "pygad"])
def test_a_ga_that_never_tries_a_new_network_stops_with_no_progress(operators):
    # Issue 22's run that never ended: with no crossover and no mutation every child is a copy of a
    # parent, whose fitness is cached, so no generation evaluates anything and an evaluations budget is
    # never spent. (keep_elitism = population_size, the example, is refused by the settings.)
    settings = {"population_size": 4, "num_parents_mating": 2, "keep_elitism": 1, "crossover_probability": 0.0,
                "mutation_probability": 0.0, "operators": operators, "crossover_type": "single_point"}
    spec = resolve("xor", "ga", budget={"evaluations": 1000}, settings=settings)
    steps = []
    result = execute(spec, 0, progress=lambda p: steps.append(p.evaluations))
    assert result.stopped == "no progress"
    assert result.evaluations == 4 * 4  # the initial population only
    assert len(steps) == loop.MAX_EMPTY_GENERATIONS and set(steps) == {16}
    assert [r.stopped for r in execute_seeds(spec, [0, 1])] == ["no progress"] * 2


class Silent:
    """An optimiser that asks for nothing, ever."""

    def __init__(self, task, architecture, settings, seed):
        self.weights = np.zeros(architecture.num_parameters)

    def ask(self):
        return np.empty((0, self.weights.size))

    def tell(self, fitness):
        assert len(fitness) == 0

    def champion(self):
        return self.weights, None


class Converging:
    """An optimiser that gives up after three generations (as pycma's termination criteria do)."""

    def __init__(self, task, architecture, settings, seed):
        self.rng, self.n, self.generations = np.random.default_rng(seed), architecture.num_parameters, 0

    def ask(self):
        if self.generations == 3:
            return None
        self.members = self.rng.standard_normal((5, self.n))
        return self.members

    def tell(self, fitness):
        self.generations += 1
        self.row = int(np.argmax(fitness))
        return 7  # extra evaluations it spent itself

    def champion(self):
        return self.members[self.row], self.row

    def metrics(self):
        return {"generations": self.generations}


def train(start, task_name="xor", budget=None, seeds=None):
    spec = resolve(task_name, "ga", budget=budget or {"evaluations": 10_000})
    task = make_task(task_name)
    if seeds is None:
        return loop.train_population(start, task, spec.architecture, None, spec.budget, 0)
    return loop.train_population_seeds(start, task, spec.architecture, None, spec.budget, seeds)


def test_a_method_that_asks_for_nothing_stops_after_a_bounded_number_of_generations():
    steps = []
    spec = resolve("xor", "ga", budget={"evaluations": 10_000})
    result = loop.train_population(Silent, make_task("xor"), spec.architecture, None, spec.budget, 0, progress=lambda p: steps.append(p.step))
    assert result.stopped == "no progress" and result.evaluations == 0
    assert len(steps) == loop.MAX_EMPTY_GENERATIONS
    assert [r.stopped for r in train(Silent, seeds=[0, 1])] == ["no progress"] * 2


def test_an_optimiser_that_converges_ends_the_run_and_its_extra_evaluations_count():
    alone = train(Converging, budget={"evaluations": 10_000, "stop_on_solve": False})
    assert alone.stopped == "budget" and alone.metrics["generations"] == 3
    assert alone.evaluations == 3 * (5 * 4 + 7)  # 5 members x 4 rows, plus 7 it spent itself, per generation
    batched = train(Converging, budget={"evaluations": 10_000, "stop_on_solve": False}, seeds=[0, 3])
    assert batched[0].weights == alone.weights and batched[0].evaluations == alone.evaluations
    assert batched[0].metrics == {**alone.metrics, "batched": 2}


def test_the_loop_is_where_seeds_and_clocks_live():
    # contract.py is the data only; nothing imports the runner from below it.
    import arena.contract as contract

    assert not hasattr(contract, "RunClock") and not hasattr(contract, "check_every")
    for name in ("ga", "cmaes", "backprop", "ppo", "loop"):
        source = (ROOT / "arena" / "methods" / f"{name}.py").read_text()
        assert "arena.runner" not in source.replace("arena.runner.execute_seeds", ""), name
