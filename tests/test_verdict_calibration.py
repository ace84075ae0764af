"""The verdict's decisions measured by simulation (issue 17): false positives under the null at every n,
power and coverage at documented effect sizes. Deterministic (fixed random streams) and vectorised.

Run the file to print the table quoted in docs/statistics.md:

    .venv/bin/python tests/test_verdict_calibration.py

The model of a run (the documented scenarios): a run solves with probability `p` (runs that never
solve: non-proportional hazards, where the log-rank test loses its power), and then needs
ceil(median x exp(sigma x N(0, 1))) evaluations (log-normal, sigma = 1: a coefficient of variation of
1.3, as spread as seeds of the GA on the logic tasks); if that exceeds the budget it is unsolved too.
An unsolved run spent the whole budget. "Light" censoring is p = 0.9, "heavy" p = 0.3. A test "fails" when
a rate exceeds its nominal value by more than 3 Monte Carlo standard errors.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.verdict import comparisons, intervals, sequential, significance  # noqa: E402

ALPHA = comparisons.ALPHA
BUDGET = 100_000.0
REPETITIONS = 1000


def tolerance(rate: float, repetitions: int) -> float:
    """3 Monte Carlo standard errors of a rate estimated from `repetitions` independent repetitions."""
    return 3 * math.sqrt(rate * (1 - rate) / repetitions)


def draw(rng: np.random.Generator, shape, p: float, median: float = 1000.0, sigma: float = 1.0):
    """(times, solved) of runs under the documented model: times are evaluations to solve, or the
    budget for unsolved runs."""
    need = np.ceil(median * np.exp(sigma * rng.standard_normal(shape)))
    solved = (rng.random(shape) < p) & (need <= BUDGET)
    return np.where(solved, need, BUDGET), solved


@functools.lru_cache(maxsize=64)
def fisher_table(n_a: int, n_b: int) -> np.ndarray:
    """Fisher's exact p for every (solved a, solved b): the library's test, tabulated once per n."""
    return np.array([[significance.fisher_p(i, n_a, j, n_b) for j in range(n_b + 1)] for i in range(n_a + 1)])


def pair_p_values(ta, sa, tb, sb) -> tuple[float, float | None]:
    """The two p-values a comparison decides on: reliability (Fisher) and evaluations (the permutation
    rank test among solved runs), exactly as `comparisons` computes them."""
    success_p = fisher_table(len(sa), len(sb))[int(sa.sum()), int(sb.sum())]
    return float(success_p), significance.rank_test_p(ta[sa], tb[sb])


def null_rates(n: int, p: float, methods: int, repetitions: int, seed: int) -> dict:
    """Under the null (identical methods): the size of each test alone (one pair, raw p <= alpha), and
    the family-wise false-positive rate of the verdict per lens (every pair of `methods` methods, Holm,
    minimum n) and over both lenses together."""
    rng = np.random.default_rng(seed)
    times, solved = draw(rng, (repetitions, methods, n), p)
    raw = {"reliability": 0, "evaluations": 0}
    family = {"reliability": 0, "evaluations": 0, "any": 0}
    for r in range(repetitions):
        p_values = {"reliability": [], "evaluations": []}
        for a in range(methods):
            for b in range(a + 1, methods):
                success_p, speed_p = pair_p_values(times[r, a], solved[r, a], times[r, b], solved[r, b])
                p_values["reliability"].append(success_p)
                p_values["evaluations"].append(speed_p)
        raw["reliability"] += p_values["reliability"][0] <= ALPHA
        raw["evaluations"] += p_values["evaluations"][0] is not None and p_values["evaluations"][0] <= ALPHA
        any_false = False
        for lens, values in p_values.items():
            if n < comparisons.MIN_RUNS:
                continue  # too few runs: no verdict at all
            false = any(q is not None and q < ALPHA for q in comparisons.holm(values))
            family[lens] += false
            any_false |= false
        family["any"] += any_false
    return {"raw": {k: v / repetitions for k, v in raw.items()}, "family": {k: v / repetitions for k, v in family.items()}}


NULL_SCENARIOS = [(n, p) for n in (1, 2, 3, 5, 10, 30) for p in (0.9, 0.3)]


@pytest.mark.parametrize(("n", "p"), NULL_SCENARIOS)
def test_no_false_positive_rate_exceeds_alpha_under_the_null(n, p):
    repetitions = 600 if n == 30 else REPETITIONS
    rates = null_rates(n, p, methods=3, repetitions=repetitions, seed=1000 * n + int(10 * p))
    limit = ALPHA + tolerance(ALPHA, repetitions)
    # Each test alone is exact (Fisher; permutation), so its size is at most alpha at every n ...
    assert rates["raw"]["reliability"] <= limit and rates["raw"]["evaluations"] <= limit, rates
    # ... and each lens's verdict over 3 methods (3 pairs, Holm) controls its family-wise rate.
    assert rates["family"]["reliability"] <= limit and rates["family"]["evaluations"] <= limit, rates


def test_the_asymptotic_log_rank_was_anti_conservative_at_small_n_and_the_permutation_test_is_not():
    # 1 run against 20, the single run fastest: log-rank p = 7.7e-6; the exact two-sided p is 2/21.
    assert significance.rank_test_p(np.array([1.0]), np.arange(2.0, 22.0)) == pytest.approx(2 / 21)


def speed_power(n: int, p: float, ratio: float, repetitions: int, seed: int) -> dict:
    """How often the evaluations verdict finds the faster method (ratio x faster, same p), alone (one
    pair: Holm family of one) and, for comparison, the log-rank test the verdict used before."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    ta, sa = draw(rng, (repetitions, n), p, median=1000.0)
    tb, sb = draw(rng, (repetitions, n), p, median=1000.0 * ratio)
    found, log_rank = 0, 0
    for r in range(repetitions):
        speed_p = significance.rank_test_p(ta[r][sa[r]], tb[r][sb[r]])
        a12 = significance.a12(ta[r][sa[r]], tb[r][sb[r]])
        found += speed_p is not None and speed_p < ALPHA and a12 > 0.5
        if sa[r].any() or sb[r].any():
            result = stats.logrank(
                stats.CensoredData(uncensored=ta[r][sa[r]], right=ta[r][~sa[r]]),
                stats.CensoredData(uncensored=tb[r][sb[r]], right=tb[r][~sb[r]]),
            )
            log_rank += result.pvalue < ALPHA
    return {"verdict": found / repetitions, "log_rank": log_rank / repetitions}


def test_power_to_detect_a_2x_speed_difference_when_30_percent_of_runs_never_solve():
    power = speed_power(n=30, p=0.7, ratio=2.0, repetitions=REPETITIONS, seed=17)
    assert power["verdict"] >= 0.60 - tolerance(0.6, REPETITIONS), power  # target 60% (was 12%)
    assert power["verdict"] > 2 * power["log_rank"], power


def selection_rate(k: int, n: int, p: float, repetitions: int, seed: int, corrected: bool) -> float:
    """Two identical methods with k configurations each (all identical): each method's best-ranked
    configuration (success rate, then ERT) is compared; how often is one declared better on either
    lens? `corrected`: p-values multiplied by k x k (as `comparisons` does with `selected_from`)."""
    rng = np.random.default_rng(seed)
    times, solved = draw(rng, (repetitions, 2, k, n), p)
    rate = solved.mean(axis=-1)
    with np.errstate(divide="ignore"):
        ert = np.where(rate > 0, times.sum(axis=-1) / np.maximum(solved.sum(axis=-1), 1), np.inf)
    false = 0
    for r in range(repetitions):
        picks = [min(range(k), key=lambda c: (-rate[r, m, c], ert[r, m, c])) for m in range(2)]
        (ta, sa), (tb, sb) = [(times[r, m, c], solved[r, m, c]) for m, c in enumerate(picks)]
        factor = k * k if corrected else 1
        success_p, speed_p = pair_p_values(ta, sa, tb, sb)
        false += min(1.0, success_p * factor) < ALPHA or (speed_p is not None and min(1.0, speed_p * factor) < ALPHA)
    return false / repetitions


def test_choosing_a_methods_best_configuration_among_five_is_corrected():
    corrected = selection_rate(k=5, n=10, p=0.7, repetitions=REPETITIONS, seed=23, corrected=True)
    assert corrected <= ALPHA + tolerance(ALPHA, REPETITIONS)


def true_ert(p: float, sigma: float) -> float:
    times, solved = draw(np.random.default_rng(99), 2_000_000, p, sigma=sigma)
    return float(times.mean() / solved.mean())


def ert_coverage(n: int, p: float, sigma: float, repetitions: int, seed: int) -> float:
    truth = true_ert(p, sigma)
    rng = np.random.default_rng(seed)
    times, solved = draw(rng, (repetitions, n), p, sigma=sigma)
    covered = counted = 0
    for r in range(repetitions):
        interval = intervals.ert_interval(times[r], solved[r], np.random.default_rng(intervals.SEED))
        if interval is None:
            continue  # nothing solved: no ERT is shown
        low, high = interval[0], math.inf if interval[1] is None else interval[1]
        covered += low <= truth <= high
        counted += 1
    return covered / counted


@pytest.mark.parametrize(("p", "sigma"), [(0.3, 1.0), (0.7, 1.0), (0.7, 0.5), (1.0, 0.5)])
def test_ert_interval_covers_at_n_10(p, sigma):
    coverage = ert_coverage(10, p, sigma, repetitions=400, seed=31)
    assert coverage >= 0.93 - tolerance(0.93, 400), coverage


def a12_coverage(n: int, p: float, ratio: float, repetitions: int, seed: int) -> tuple[float, int]:
    """Coverage of the probability-of-improvement interval (all runs, unsolved worst), and how many
    intervals were a single point."""
    big_a, big_a_solved = draw(np.random.default_rng(98), 400_000, p)
    big_b, big_b_solved = draw(np.random.default_rng(97), 400_000, p, median=1000.0 * ratio)
    truth = significance.a12(np.where(big_a_solved, big_a, np.inf), np.where(big_b_solved, big_b, np.inf))
    rng = np.random.default_rng(seed)
    ta, sa = draw(rng, (repetitions, n), p)
    tb, sb = draw(rng, (repetitions, n), p, median=1000.0 * ratio)
    covered = points = 0
    for r in range(repetitions):
        result = significance.a12_with_interval(np.where(sa[r], ta[r], np.inf), np.where(sb[r], tb[r], np.inf))
        covered += result["low"] <= truth <= result["high"]
        points += result["low"] == result["high"]
    return covered / repetitions, points


@pytest.mark.parametrize(("p", "ratio"), [(1.0, 1.0), (1.0, 4.0), (1.0, 16.0), (0.7, 4.0)])
def test_probability_of_improvement_interval_covers_at_n_10_and_is_never_a_point(p, ratio):
    coverage, points = a12_coverage(10, p, ratio, repetitions=REPETITIONS, seed=41)
    assert coverage >= 0.93 - tolerance(0.93, REPETITIONS), coverage
    assert points == 0


def sequential_outcomes(ratio: float, p: float, repetitions: int, seed: int, plan=None) -> dict:
    """Seeds added in rounds until `sequential.decide` stops: how each repetition ended and how many
    seeds it used."""
    plan = plan or sequential.Plan(minimum=10, maximum=100, round_size=10)
    rng = np.random.default_rng(seed)
    ta, sa = draw(rng, (repetitions, plan.maximum), p)
    tb, sb = draw(rng, (repetitions, plan.maximum), p, median=1000.0 * ratio)
    ends, seeds, wrong = {}, [], 0
    for r in range(repetitions):
        n = plan.minimum
        while True:
            samples = {"a": {"evaluations": (ta[r, :n], sa[r, :n])}, "b": {"evaluations": (tb[r, :n], sb[r, :n])}}
            decision = sequential.decide(samples, n, plan)
            if decision["action"] != "continue":
                break
            n = decision["next_n"]
        ends[decision["action"]] = ends.get(decision["action"], 0) + 1
        seeds.append(n)
        wrong += any(lens["winner"] is not None for lens in decision["lenses"].values()) if ratio == 1.0 else 0
    return {"ends": {k: v / repetitions for k, v in ends.items()}, "mean_seeds": float(np.mean(seeds)), "false": wrong / repetitions}


def test_seeds_until_decided_controls_false_positives_across_looks():
    outcome = sequential_outcomes(ratio=1.0, p=0.7, repetitions=400, seed=51)
    # Two identical methods stop on futility or at the maximum with "no detectable difference".
    assert outcome["false"] <= ALPHA + tolerance(ALPHA, 400), outcome
    assert outcome["ends"].get("stop-futility", 0) + outcome["ends"].get("stop-max", 0) >= 1 - ALPHA - tolerance(ALPHA, 400)


def test_seeds_until_decided_stops_early_on_a_clear_difference():
    outcome = sequential_outcomes(ratio=4.0, p=0.9, repetitions=200, seed=52)
    assert outcome["ends"].get("stop-decided", 0) >= 0.8, outcome
    assert outcome["mean_seeds"] < 50, outcome


def test_end_to_end_a_small_sample_is_marked_too_few_runs():
    rng = np.random.default_rng(3)
    runs = []
    for method, count in (("a", 3), ("b", 12)):
        times, solved = draw(rng, count, 0.9)
        runs.append([
            {"id": 100 * (method == "b") + i, "settings_hash": method, "seed": i, "status": "succeeded", "solved": bool(s),
             "evaluations": float(t), "seconds": 1.0, "cpu_seconds": 1.0, "evaluations_to_solve": float(t) if s else None,
             "seconds_to_solve": 1.0 if s else None, "cpu_seconds_to_solve": 1.0 if s else None}
            for i, (t, s) in enumerate(zip(times, solved))
        ])  # fmt: skip
    (result,) = comparisons.compare_all({"a": runs[0], "b": runs[1]})
    for lens in ("reliability", "evaluations", "cpu_seconds"):
        assert result["verdict"][lens]["winner"] is None
        assert result["verdict"][lens]["text"].startswith("no detectable difference: too few runs (n=3 vs 12")
    assert result["success_p_adjusted"] is None


def main() -> None:
    """The numbers in docs/statistics.md."""
    print("null, 3 identical methods: raw size of each test on one pair | family-wise per lens (Holm, 3 pairs) | any lens")
    for n, p in NULL_SCENARIOS:
        rates = null_rates(n, p, methods=3, repetitions=REPETITIONS, seed=1000 * n + int(10 * p))
        print(f"  n={n:>2} p={p}: raw {rates['raw']} family {rates['family']}")
    for n in (10, 20, 30):
        print(f"power, 2x faster, p=0.7 both, n={n}: {speed_power(n, 0.7, 2.0, REPETITIONS, 17)}")
    for k in (1, 5):
        print(f"selection among k={k}: corrected {selection_rate(k, 10, 0.7, REPETITIONS, 23, True):.3f}, "
              f"uncorrected {selection_rate(k, 10, 0.7, REPETITIONS, 23, False):.3f}")  # fmt: skip
    for p, sigma in [(0.3, 1.0), (0.7, 1.0), (1.0, 1.0), (0.7, 0.5), (1.0, 0.5)]:
        print(f"ERT coverage n=10 p={p} sigma={sigma}: {ert_coverage(10, p, sigma, 1000, 31):.3f}")
    for p, ratio in [(1.0, 1.0), (1.0, 4.0), (1.0, 16.0), (0.7, 4.0)]:
        print(f"A12 coverage n=10 p={p} ratio={ratio}: {a12_coverage(10, p, ratio, REPETITIONS, 41)}")
    for ratio, p in [(1.0, 0.7), (2.0, 0.7), (4.0, 0.9)]:
        print(f"sequential ratio={ratio} p={p}: {sequential_outcomes(ratio, p, 400, 51)}")


if __name__ == "__main__":
    main()
