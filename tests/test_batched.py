"""Batched seeds (arena.execute_seeds): per-seed counts, order and results against unbatched runs.

Batched backprop differs from `execute` only in float reduction order (stacked matrix products), so
evaluation counts and solves are compared exactly, scores within float tolerance, and where a few
ulps could flip a decision the distributions over 30 seeds are compared. No wall-clock bounds.
"""

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

import arena
from arena.contract import Budget
from arena.methods.loop import RunClock, check_every
from arena.runner import execute, execute_seeds
from arena.runspec import resolve
from arena.tasks import make_task


def assert_lock_step_is_bit_for_bit(spec, seeds):
    """Each seed of `execute_seeds` is its `execute` run: counts, weights, curve and metrics. Returns the last alone run."""
    for seed, result in zip(seeds, execute_seeds(spec, seeds)):
        alone = execute(spec, seed)
        assert counts(result) == counts(alone), seed
        assert result.score == alone.score and result.weights == alone.weights, seed
        assert [p["score"] for p in result.curve] == [p["score"] for p in alone.curve]
        assert result.metrics == {**alone.metrics, "batched": len(seeds)}
    return alone


def counts(result):
    return (result.solved, result.evaluations_to_solve, result.evaluations, result.stopped, [p["evaluations"] for p in result.curve])


def test_public_entry_point():
    assert arena.execute_seeds is execute_seeds


def test_xor_stop_on_solve_same_counts_per_seed():
    spec = resolve("xor", "backprop", budget={"evaluations": 12_000})
    seeds = [3, 0, 11, 5, 8, 1, 2, 40]
    batched = execute_seeds(spec, seeds)
    assert len(batched) == len(seeds)
    for seed, result in zip(seeds, batched):
        alone = execute(spec, seed)
        assert counts(result) == counts(alone), seed
        assert result.score == pytest.approx(alone.score, rel=1e-4, abs=1e-6)
        np.testing.assert_allclose(result.weights, alone.weights, rtol=1e-4, atol=1e-5)
        assert result.metrics["batched"] == len(seeds)
        assert result.metrics["margin"] == pytest.approx(alone.metrics["margin"], abs=1e-5)


def test_initial_weights_are_the_unbatched_draws():
    # A budget of one epoch without solving: the curve's first point and the weights move by one step.
    spec = resolve("xor", "backprop", budget={"evaluations": 12, "stop_on_solve": False}, settings={"learning_rate": 1e-6})
    seeds = [0, 1, 2]
    for seed, result in zip(seeds, execute_seeds(spec, seeds)):
        np.testing.assert_allclose(result.weights, execute(spec, seed).weights, rtol=0, atol=1e-6)


def test_minibatches_and_functions_count_the_same_per_seed():
    spec = resolve("sine", "backprop", budget={"evaluations": 64 * 3 * 40, "stop_on_solve": False}, settings={"batch_size": 16})
    seeds = [0, 1, 2, 3]
    for seed, result in zip(seeds, execute_seeds(spec, seeds)):
        alone = execute(spec, seed)
        assert counts(result) == counts(alone)
        assert result.score == pytest.approx(alone.score, rel=1e-3)


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_other_optimisers_are_per_seed(optimizer):
    spec = resolve("xor", "backprop", budget={"evaluations": 3000, "stop_on_solve": False}, settings={"optimizer": optimizer, "learning_rate": 0.05})
    seeds = [4, 5, 6]
    for seed, result in zip(seeds, execute_seeds(spec, seeds)):
        alone = execute(spec, seed)
        # Not the curve: on a plateau it keeps points for improvements of a few ulps, where float noise decides.
        assert counts(result)[:4] == counts(alone)[:4]
        assert result.score == pytest.approx(alone.score, rel=1e-3, abs=1e-6)


def test_thirty_seeds_distributions_agree():
    spec = resolve("xor", "backprop", budget={"evaluations": 6000})
    seeds = list(range(30))
    batched = execute_seeds(spec, seeds)
    alone = [execute(spec, seed) for seed in seeds]
    identical = sum(counts(b) == counts(a) for b, a in zip(batched, alone))
    assert sum(r.solved for r in batched) == sum(r.solved for r in alone)
    solved_b = [r.evaluations_to_solve for r in batched if r.solved]
    solved_a = [r.evaluations_to_solve for r in alone if r.solved]
    assert np.median(solved_b) == np.median(solved_a)
    assert mannwhitneyu(solved_b, solved_a).pvalue > 0.05
    assert identical >= 27  # in practice all 30: float noise could only flip a near-tie


def test_seconds_are_shares_of_the_batch():
    spec = resolve("xor", "backprop", budget={"evaluations": 1200, "stop_on_solve": False})
    results = execute_seeds(spec, [0, 1, 2, 3])
    assert all(r.metrics["batched"] == 4 for r in results)
    # Same epochs for every seed, so the same share: one batch's time split four ways.
    assert len({round(r.seconds, 9) for r in results}) == 1
    assert all(r.cpu_seconds is not None for r in results)


def test_early_stopped_seeds_are_frozen_and_the_rest_go_on():
    spec = resolve("xor", "backprop", budget={"evaluations": 12_000})
    results = execute_seeds(spec, list(range(10)))
    stops = {r.evaluations for r in results}
    assert len(stops) > 1  # seeds stopped at different epochs
    for r in results:
        if r.solved:
            assert r.stopped == "solved" and r.evaluations == r.evaluations_to_solve


def test_cancel_one_seed_through_the_callback():
    spec = resolve("xor", "backprop", budget={"evaluations": 6000, "stop_on_solve": False})
    results = execute_seeds(spec, [0, 1, 2], progress=lambda seed, p: seed == 1 and p.step >= 5)
    assert [r.stopped for r in results] == ["budget", "cancelled", "budget"]
    assert results[1].evaluations == 5 * 12
    assert results[0].evaluations == 6000


@pytest.mark.parametrize(
    "method, settings, batched",
    [
        ("ga", {"operators": "pygad"}, None),  # PyGAD's own operators: one seed after another
        ("ga", {"parent_selection_type": "rank"}, None),
        ("ga", {"crossover_type": "none"}, None),
        ("ga", {}, 2),
        ("cmaes", {}, 2),
    ],
)
def test_execute_seeds_is_bit_for_bit_execute_batched_or_not(method, settings, batched):
    spec = resolve("xor", method, budget={"evaluations": 3000, "stop_on_solve": False}, settings=settings)
    seeds = [2, 9]
    for seed, result in zip(seeds, execute_seeds(spec, seeds)):
        alone = execute(spec, seed)
        assert counts(result) == counts(alone)
        assert result.score == alone.score and result.weights == alone.weights
        assert result.metrics.get("batched") == batched


@pytest.mark.parametrize(
    "task, budget, settings",
    [
        ("xor", {"evaluations": 20_000}, {}),
        ("xor", {"evaluations": 20_000, "stop_on_solve": False}, {}),
        ("parity-3", {"evaluations": 50_000}, {"crossover_type": "two_points", "tournament_size": 5}),
        ("full-adder", {"evaluations": 40_000}, {"crossover_type": "single_point", "mutation_type": "random"}),
        ("sine", {"evaluations": 100_000, "stop_on_solve": False}, {"population_size": 30, "num_parents_mating": 10}),
        ("xor", {"evaluations": 5_000}, {"keep_elitism": 0}),
        # Rare mutation and crossover: many children are copies of a parent, so PyGAD's fitness cache
        # (and the evaluations it saves) must be reproduced exactly.
        ("xor", {"evaluations": 5_000, "stop_on_solve": False}, {"mutation_probability": 0.01, "crossover_probability": 0.2}),
    ],
)
def test_ga_seeds_in_lock_step_are_bit_for_bit_their_pygad_runs(task, budget, settings):
    spec = resolve(task, "ga", budget=budget, settings=settings)
    assert_lock_step_is_bit_for_bit(spec, [0, 1, 2, 7, 30, 31])


@pytest.mark.parametrize(
    "task, budget, settings",
    [
        ("xor", {"evaluations": 100_000}, {}),
        ("parity-3", {"evaluations": 60_000}, {}),
        ("sine", {"evaluations": 30_000, "stop_on_solve": False}, {}),
        # pycma terminates early on this tiny step size: IPOP restarts (fresh means from torch's generator)
        ("xor", {"evaluations": 6_000, "stop_on_solve": False}, {"sigma0": 1e-5, "population_size": 6}),
    ],
)
def test_cmaes_seeds_in_lock_step_are_bit_for_bit_their_unbatched_runs(task, budget, settings):
    spec = resolve(task, "cmaes", budget=budget, settings=settings)
    last = assert_lock_step_is_bit_for_bit(spec, [0, 1, 2, 7, 30])
    if settings:
        assert last.metrics["restarts"] > 0


@pytest.mark.parametrize("method", ["ga", "cmaes"])
def test_lock_step_cancel_one_seed_and_shares_of_time(method):
    spec = resolve("xor", method, budget={"evaluations": 20_000, "stop_on_solve": False})
    calls = {}

    def progress(seed, report):
        calls[seed] = calls.get(seed, 0) + 1
        return seed == 4 and calls[seed] >= 3

    results = execute_seeds(spec, [3, 4, 5], progress)
    assert [r.stopped for r in results] == ["budget", "cancelled", "budget"]
    assert results[1].evaluations < min(results[0].evaluations, results[2].evaluations)
    assert all(r.seconds > 0 and r.cpu_seconds > 0 for r in results)
    alone = execute(spec, 5)
    assert counts(results[2]) == counts(alone) and results[2].weights == alone.weights  # a cancelled partner changes nothing


def test_check_cadence_in_evaluations():
    assert check_every(make_task("xor")) is None  # logic: every step (backprop reuses its forward)
    sine = make_task("sine")
    assert check_every(sine) == 2 * len(sine.x_test)
    clock = RunClock(Budget(evaluations=10_000), higher_is_better=False, check_every=1000)
    checks = []
    while not clock.should_stop():
        clock.evaluations += 192
        if clock.due():
            checks.append(clock.evaluations)
            clock.record(1.0)
        else:
            clock.record(None)
    # At most every 1000 evaluations, except the extra check when the budget runs out.
    assert checks[0] == 192 and all(b - a >= 1000 for a, b in zip(checks[:-1], checks[1:-1]))
    assert checks[-1] == clock.evaluations  # the last network is always judged


def test_backprop_on_sine_checks_at_most_every_k_evaluations():
    spec = resolve("sine", "backprop", budget={"evaluations": 64 * 3 * 60, "stop_on_solve": False})
    reports = []
    execute(spec, 0, progress=reports.append)
    assert len(reports) == 60  # progress still every epoch
    checked = [p.evaluations for p, q in zip(reports[1:], reports) if p.score != q.score]
    k = check_every(make_task("sine"))
    assert len(checked) >= 2 and all(b - a >= k for a, b in zip(checked[:-1], checked[1:-1]))  # last: the budget's end
