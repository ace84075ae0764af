"""The verdict statistics against hand-worked examples (arena/verdict)."""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest
from scipy import stats

from arena import verdict
from arena.verdict import estimates, significance
from arena.verdict import intervals as bootstrap
from arena.verdict import table as run_table

Z = 1.959963984540054


def run(
    run_id: int,
    solved: bool,
    spent: float,
    *,
    seed: int | None = None,
    settings_hash: str = "h",
    method: str = "ga",
    status: str = "succeeded",
    cpu: bool = True,
) -> dict:
    """A run that spent `spent` evaluations (until it solved, if it did); wall seconds = spent / 10,
    CPU seconds = spent / 100 (None on an "old" run without CPU time)."""
    return {
        "id": run_id,
        "method": method,
        "algorithm": method,
        "settings_hash": settings_hash,
        "seed": run_id if seed is None else seed,
        "status": status,
        "solved": solved,
        "score": 1.0 if solved else 0.0,
        "evaluations": spent,
        "seconds": spent / 10,
        "cpu_seconds": spent / 100 if cpu else None,
        "evaluations_to_solve": spent if solved else None,
        "seconds_to_solve": spent / 10 if solved else None,
        "cpu_seconds_to_solve": (spent / 100 if cpu else None) if solved else None,
    }


def runs_spending(outcomes: list[tuple[bool, float]], first_id: int = 1, **kwargs) -> list[dict]:
    return [run(first_id + i, solved, spent, **kwargs) for i, (solved, spent) in enumerate(outcomes)]


def wilson_by_hand(successes: int, n: int) -> tuple[float, float]:
    p = successes / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def assert_plain_json(value) -> None:
    """Only plain Python types (no numpy scalars), and no NaN or infinity anywhere."""
    json.dumps(value, allow_nan=False)

    def walk(item):
        assert type(item) in (dict, list, str, int, float, bool, type(None)), (type(item), item)
        if isinstance(item, dict):
            for key, inner in item.items():
                assert type(key) is str
                walk(inner)
        elif isinstance(item, list):
            for inner in item:
                walk(inner)

    walk(value)


# --- distinct runs -----------------------------------------------------------------------------------


def test_repeated_seed_is_a_duplicate_counted_once_keeping_the_lowest_id():
    runs = [
        run(5, True, 10, seed=0),
        run(2, True, 12, seed=0),  # same configuration and seed, lower id: kept
        run(3, True, 30, seed=1),
        run(4, True, 30, seed=1, settings_hash="other"),  # another configuration: not a duplicate
        run(1, False, 99, seed=0, status="failed"),  # not evidence, not a duplicate
        run(6, False, 99, seed=2, status="cancelled"),
    ]
    kept, duplicates = verdict.distinct_runs(runs)
    assert [r["id"] for r in kept] == [2, 3, 4]
    assert duplicates == 1

    stats_ = verdict.configuration_stats([r for r in runs if r["settings_hash"] == "h"])
    assert (stats_["runs"], stats_["duplicates"], stats_["failed"], stats_["cancelled"]) == (2, 1, 1, 1)
    assert stats_["ert_evaluations"] == (12 + 30) / 2  # the kept run (id 2) spent 12, not 10


def test_resubmitted_seeds_do_not_narrow_the_interval():
    once = runs_spending([(True, 10 + i) for i in range(9)] + [(False, 100)])
    twice = once + [dict(r, id=r["id"] + 100) for r in once]
    single, doubled = verdict.configuration_stats(once), verdict.configuration_stats(twice)
    assert doubled["runs"] == 10 and doubled["duplicates"] == 10
    assert doubled["success_rate_ci"] == single["success_rate_ci"]
    assert doubled["ert_evaluations_ci"] == single["ert_evaluations_ci"]


# --- one configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("successes", [0, 7, 20])
def test_success_rate_has_the_wilson_interval_including_0_of_n_and_n_of_n(successes):
    runs = runs_spending([(i < successes, 10) for i in range(20)])
    stats_ = verdict.configuration_stats(runs)
    assert stats_["success_rate"] == successes / 20
    assert stats_["success_rate_ci"] == pytest.approx(wilson_by_hand(successes, 20), abs=1e-12)
    if successes == 0:
        assert stats_["success_rate_ci"][0] == pytest.approx(0.0, abs=1e-12)
        assert stats_["success_rate_ci"][1] > 0.1  # 0/20 does not prove the rate is 0
    if successes == 20:
        assert stats_["success_rate_ci"][1] == pytest.approx(1.0)


def test_ert_is_total_spent_over_number_solved():
    # Solved after 10 and 20 evaluations, one unsolved run spent 100: ERT = (10 + 20 + 100) / 2.
    runs = runs_spending([(True, 10), (True, 20), (False, 100)])
    stats_ = verdict.configuration_stats(runs)
    assert stats_["ert_evaluations"] == 65.0
    assert stats_["ert_seconds"] == pytest.approx(0.65)  # CPU seconds, not wall (6.5)
    assert stats_["solved"] == 2 and stats_["runs"] == 3


def test_ert_seconds_falls_back_to_wall_seconds_for_old_runs():
    runs = [run(1, True, 10, cpu=False), run(2, True, 20), run(3, False, 100, cpu=False)]
    # 10/10 wall, 20/100 CPU, 100/10 wall: (1 + 0.2 + 10) / 2
    assert verdict.configuration_stats(runs)["ert_seconds"] == pytest.approx(5.6)


def test_solved_run_counts_what_it_spent_until_solving_not_its_total():
    solved_early = dict(run(1, True, 10), evaluations=15)  # solved at 10, then spent 5 more
    assert verdict.configuration_stats([solved_early, run(2, False, 100)])["ert_evaluations"] == 110.0


def test_nothing_solved_gives_no_ert_no_median_and_no_iqm():
    stats_ = verdict.configuration_stats(runs_spending([(False, 100)] * 5))
    assert stats_["ert_evaluations"] is None and stats_["ert_evaluations_ci"] is None
    assert stats_["ert_seconds"] is None and stats_["ert_seconds_ci"] is None
    assert stats_["iqm_evaluations"] is None
    km = stats_["kaplan_meier"]["evaluations"]
    assert km["median"] == {"estimate": None, "low": None, "high": None}
    assert km["events"] == 0 and km["curve"] == [{"x": 100.0, "solved": 0.0}]


def test_no_succeeded_runs_at_all():
    stats_ = verdict.configuration_stats([run(1, False, 10, status="failed")])
    assert stats_["runs"] == 0 and stats_["failed"] == 1
    assert stats_["success_rate"] is None and stats_["success_rate_ci"] is None
    assert stats_["wall_seconds"] is None
    assert stats_["kaplan_meier"]["cpu_seconds"]["n"] == 0
    assert_plain_json(stats_)


def test_ert_interval_is_unbounded_when_a_resample_can_miss_every_success():
    # 1 of 3 solved: a resample has no success with probability (2/3)^3 = 0.30 > 2.5%.
    stats_ = verdict.configuration_stats(runs_spending([(True, 10), (False, 50), (False, 50)]))
    low, high = stats_["ert_evaluations_ci"]
    assert high is None
    assert low == 10.0  # the resample of three copies of the solved run


def test_ert_interval_collapses_when_every_run_is_the_same():
    stats_ = verdict.configuration_stats(runs_spending([(True, 40)] * 6))
    assert stats_["ert_evaluations"] == 40.0
    assert stats_["ert_evaluations_ci"] == [40.0, 40.0]


def test_kaplan_meier_median_accounts_for_censoring():
    # Solved at 10, 20, 30; unsolved runs censored at 15 and 40. By hand:
    #   at 10: 5 at risk, 1 solves -> unsolved 4/5 = 0.8,     proportion solved 0.2
    #   at 20: 3 at risk (15 censored) -> 0.8 * 2/3 = 8/15,  solved 7/15 = 0.467
    #   at 30: 2 at risk -> 8/15 * 1/2 = 4/15,               solved 11/15 = 0.733
    # Median: first time the proportion solved reaches 0.5 = 30 (the solved-only median says 20).
    runs = runs_spending([(True, 10), (False, 15), (True, 20), (True, 30), (False, 40)])
    km = verdict.configuration_stats(runs)["kaplan_meier"]["evaluations"]
    assert km["median"]["estimate"] == 30.0
    assert km["q1"]["estimate"] == 20.0
    assert km["q3"]["estimate"] is None  # 0.75 never reached within what the runs spent
    assert (km["n"], km["events"]) == (5, 3)
    assert [p["x"] for p in km["curve"]] == [10.0, 20.0, 30.0, 40.0]
    assert [p["solved"] for p in km["curve"]] == pytest.approx([0.2, 7 / 15, 11 / 15, 11 / 15])
    median = km["median"]
    assert median["low"] <= median["estimate"] and (median["high"] is None or median["high"] >= 30.0)
    # The CPU lens is the same curve at 1/100 of the scale.
    assert verdict.configuration_stats(runs)["kaplan_meier"]["cpu_seconds"]["median"]["estimate"] == pytest.approx(0.3)


def test_kaplan_meier_interval_brackets_the_median_and_narrows_with_more_runs():
    def median_interval(n):
        generator = np.random.default_rng(0)
        spent = np.round(generator.exponential(100, n)) + 1
        outcomes = [(bool(s <= 250), float(min(s, 250))) for s in spent]
        return verdict.configuration_stats(runs_spending(outcomes))["kaplan_meier"]["evaluations"]["median"]

    small, large = median_interval(40), median_interval(1000)
    for median in (small, large):
        assert median["low"] <= median["estimate"] <= median["high"]
    assert large["high"] - large["low"] < small["high"] - small["low"]
    assert large["estimate"] == pytest.approx(100 * math.log(2), rel=0.15)


def test_kaplan_meier_curve_is_thinned_but_keeps_its_last_point():
    runs = runs_spending([(True, i + 1) for i in range(1000)])
    curve = verdict.configuration_stats(runs)["kaplan_meier"]["evaluations"]["curve"]
    assert len(curve) <= verdict.CURVE_POINTS
    assert curve[0] == {"x": 1.0, "solved": pytest.approx(0.001)}
    assert curve[-1] == {"x": 1000.0, "solved": pytest.approx(1.0)}
    assert all(a["x"] < b["x"] and a["solved"] <= b["solved"] for a, b in itertools.pairwise(curve))


def test_iqm_is_the_mean_of_the_middle_half_only_when_every_run_solved():
    # 8 runs: cut 2 from each end -> mean(3, 4, 100, 200) = 76.75.
    runs = runs_spending([(True, v) for v in (1, 2, 3, 4, 100, 200, 300, 400)])
    iqm = verdict.configuration_stats(runs)["iqm_evaluations"]
    assert iqm["estimate"] == 76.75
    assert iqm["low"] <= 76.75 <= iqm["high"]
    assert verdict.configuration_stats(runs + [run(99, False, 500)])["iqm_evaluations"] is None


def test_iqm_from_counts_matches_trim_mean_of_the_expanded_sample():
    generator = np.random.default_rng(3)
    distinct = np.array([1.0, 2.0, 5.0, 9.0, 20.0])
    counts = generator.multinomial(11, np.full(5, 0.2), size=50)
    from_counts = estimates.interquartile_means_from_counts(distinct, counts)
    expanded = [stats.trim_mean(np.repeat(distinct, row), 0.25) for row in counts]
    assert from_counts == pytest.approx(expanded)


def test_wall_seconds_are_reported_for_information():
    stats_ = verdict.configuration_stats(runs_spending([(True, 10), (True, 20), (False, 100)]))
    assert stats_["wall_seconds"] == {"median": 2.0, "q1": 1.5, "q3": 6.0}


def test_statistics_do_not_depend_on_the_order_of_the_runs():
    runs = runs_spending([(i % 3 != 0, 10 + 7 * i) for i in range(30)])
    shuffled = runs[:]
    random.Random(1).shuffle(shuffled)
    assert verdict.configuration_stats(shuffled) == verdict.configuration_stats(runs)


def test_configuration_stats_output_is_plain_json():
    runs = runs_spending([(True, 10), (False, 15), (True, 20), (True, 30), (False, 40)])
    assert_plain_json(verdict.configuration_stats(runs))
    assert_plain_json(verdict.configuration_stats(runs_spending([(True, 5)] * 4)))


# --- probability of improvement ----------------------------------------------------------------------


def test_probability_of_improvement_counts_all_pairs_with_ties_half():
    # A needs [1, 2, 3], B needs [2, 4]. Pairs: 1<2 win, 1<4 win, 2=2 tie, 2<4 win, 3>2 loss, 3<4 win.
    # (4 + 0.5) / 6 = 0.75.
    a = runs_spending([(True, 1), (True, 2), (True, 3)])
    b = runs_spending([(True, 2), (True, 4)], first_id=10)
    assert verdict.probability_of_improvement(a, b, "evaluations")["estimate"] == 0.75
    assert verdict.probability_of_improvement(b, a, "evaluations")["estimate"] == 0.25
    assert verdict.probability_of_improvement(a, b, "cpu_seconds")["estimate"] == 0.75


def test_unsolved_run_loses_to_any_solved_run_and_ties_another_unsolved_one():
    # A: solved at 1000, unsolved at 5. B: two unsolved (one spent far more than the other).
    # Pairs: solved beats both unsolved (2), unsolved vs unsolved tie twice (2 x 0.5): 3/4.
    a = runs_spending([(True, 1000), (False, 5)])
    b = runs_spending([(False, 50), (False, 5000)], first_id=10)
    assert verdict.probability_of_improvement(a, b, "evaluations")["estimate"] == 0.75


def test_probability_of_improvement_matches_brute_force_with_ties():
    generator = np.random.default_rng(7)
    a_outcomes = [(bool(s), float(v)) for s, v in zip(generator.random(25) < 0.7, generator.integers(1, 8, 25))]
    b_outcomes = [(bool(s), float(v)) for s, v in zip(generator.random(17) < 0.5, generator.integers(1, 8, 17))]
    key = [math.inf if not s else v for s, v in a_outcomes], [math.inf if not s else v for s, v in b_outcomes]
    by_hand = sum((x < y) + 0.5 * (x == y) for x in key[0] for y in key[1]) / (25 * 17)
    result = verdict.probability_of_improvement(runs_spending(a_outcomes), runs_spending(b_outcomes, first_id=100), "evaluations")
    assert result["estimate"] == pytest.approx(by_hand)
    assert result["low"] < by_hand < result["high"]


def test_identical_groups_have_probability_one_half():
    group = runs_spending([(True, 10 + 3 * i) for i in range(12)] + [(False, 100)] * 3)
    result = verdict.probability_of_improvement(group, group, "evaluations")
    assert result["estimate"] == 0.5
    assert result["low"] < 0.5 < result["high"]
    # Issue 17: never a point where the data cannot support it: four unsolved runs a side tie (0.5),
    # but say little about the methods (was [0.5, 0.5]).
    all_unsolved = runs_spending([(False, 100)] * 4)
    result = verdict.probability_of_improvement(all_unsolved, all_unsolved, "evaluations")
    assert result["estimate"] == 0.5 and result["low"] < 0.3 and result["high"] > 0.7


def test_probability_of_improvement_without_runs_on_a_side_is_unknown():
    assert verdict.probability_of_improvement([], runs_spending([(True, 1)]), "evaluations") == {
        "estimate": None,
        "low": None,
        "high": None,
    }


# --- large-sample paths ------------------------------------------------------------------------------


def test_large_sample_approximations_agree_with_the_exact_bootstrap(monkeypatch):
    generator = np.random.default_rng(5)
    times = generator.exponential(100, 1500)
    solved = generator.random(1500) < 0.7
    times[~solved] = 300
    a = np.where(solved, times, np.inf)[:900]
    b = np.where(generator.random(800) < 0.6, generator.exponential(110, 800), np.inf)

    def intervals():
        rng = np.random.default_rng(1)
        return (
            bootstrap.ert_interval(times, solved, rng),
            estimates.iqm_with_interval(times[solved], rng),
            significance.a12_with_interval(a, b),  # Newcombe's score interval: no bootstrap, no cap
        )

    (ert, iqm, improvement) = intervals()
    monkeypatch.setattr(bootstrap, "MAX_BOOTSTRAP_CELLS", 0)  # force the normal approximations
    (ert_normal, iqm_normal, improvement_normal) = intervals()
    assert ert_normal == pytest.approx(ert, rel=0.02)
    assert [iqm_normal["low"], iqm_normal["high"]] == pytest.approx([iqm["low"], iqm["high"]], rel=0.02)
    assert [improvement_normal["low"], improvement_normal["high"]] == pytest.approx(
        [improvement["low"], improvement["high"]], abs=0.01
    )
    assert improvement_normal["estimate"] == improvement["estimate"]


def test_multinomial_resampling_of_distinct_values_matches_resampling_runs(monkeypatch):
    # 3000 runs over 30 distinct evaluation counts (whole generations): too many runs to resample one
    # by one within the cap, few enough distinct values for the multinomial.
    generator = np.random.default_rng(2)
    times = generator.integers(1, 31, 3000).astype(float) * 100
    solved = times <= 2500
    by_value = bootstrap.ert_interval(times, solved, np.random.default_rng(1))
    monkeypatch.setattr(bootstrap, "MAX_BOOTSTRAP_CELLS", 10**9)  # now resampled run by run
    by_run = bootstrap.ert_interval(times, solved, np.random.default_rng(1))
    assert by_value == pytest.approx(by_run, rel=0.01)
    assert by_value != by_run  # really two different paths


# --- Holm ----------------------------------------------------------------------------------------------


def test_holm_on_a_hand_example():
    # Sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> raised to 0.06 (monotone).
    assert verdict.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert verdict.holm([0.5, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert verdict.holm([None]) == [None]
    assert verdict.holm([]) == []


def test_holm_agrees_with_statsmodels():
    from statsmodels.stats.multitest import multipletests

    pvalues = list(np.random.default_rng(4).uniform(0, 0.2, 17)) + [0.03, 0.03]
    assert verdict.holm(pvalues) == pytest.approx(list(multipletests(pvalues, method="holm")[1]))


# --- comparisons and verdicts -----------------------------------------------------------------------------


def test_clear_winner_on_every_lens():
    ga = runs_spending([(True, 10 + i) for i in range(20)])
    backprop = runs_spending([(False, 100)] * 20, first_id=100)
    result = verdict.compare(ga, backprop, names=("ga", "backprop"))
    assert result["n"] == {"ga": 20, "backprop": 20}
    # Fisher, table [[20, 0], [0, 20]]: only this table and its mirror are as extreme -> 2 / C(40, 20).
    assert result["success_p"] == pytest.approx(2 / math.comb(40, 20))
    assert result["success_difference"]["estimate"] == 1.0
    assert result["verdict"]["reliability"]["winner"] == "ga"
    assert result["verdict"]["reliability"]["text"] == "ga more reliable (20/20 vs 0/20, p<0.001)"
    # Issue 17: speed is compared among solved runs, so never solving is counted once (reliability),
    # not a second time as "needs fewer evaluations"; and 20 runs all beating 20 runs is not [1, 1].
    for lens in ("evaluations", "cpu_seconds"):
        assert result["verdict"][lens]["winner"] is None
    improvement = result["probability_of_improvement"]["evaluations"]
    assert improvement["estimate"] == 1.0 and improvement["high"] == 1.0 and 0.85 < improvement["low"] < 0.95
    # A clear speed winner, swapped sides: the winner is still ga, its probability stated from its side.
    quick = runs_spending([(True, 100 + i) for i in range(20)], first_id=100)
    swapped = verdict.compare(quick, ga, names=("backprop", "ga"))
    assert swapped["verdict"]["evaluations"]["winner"] == "ga"
    assert swapped["verdict"]["evaluations"]["text"].startswith("ga needs fewer evaluations")
    assert "probability of improvement among solved runs 1.00 [0.9" in swapped["verdict"]["evaluations"]["text"]
    assert_plain_json(result)


def test_tie_gives_no_detectable_difference():
    group = runs_spending([(True, 10 + 3 * i) for i in range(8)] + [(False, 100)] * 2)
    result = verdict.compare(group, [dict(r, id=r["id"] + 50) for r in group], names=("ga", "cmaes"))
    assert result["probability_of_improvement"]["evaluations"]["estimate"] == 0.5
    for lens in ("reliability", "evaluations", "cpu_seconds"):
        assert result["verdict"][lens] == {
            "winner": None,
            "text": "no detectable difference (n=10 vs 10)",
            "p": pytest.approx(1.0),
        }


def test_faster_with_equal_reliability_wins_the_time_lenses_only():
    fast = runs_spending([(True, 10 + i) for i in range(30)])
    slow = runs_spending([(True, 100 + i) for i in range(30)], first_id=100)
    result = verdict.compare(fast, slow, names=("fast", "slow"))
    assert result["verdict"]["reliability"]["winner"] is None
    assert result["verdict"]["evaluations"]["winner"] == "fast"
    assert result["verdict"]["cpu_seconds"]["winner"] == "fast"


def test_newcombe_interval_for_the_difference_of_success_rates():
    a = runs_spending([(i < 3, 10) for i in range(10)])
    b = runs_spending([(i < 5, 10) for i in range(10)], first_id=100)
    difference = verdict.compare(a, b)["success_difference"]
    # Newcombe (1998) method 10 from the two Wilson intervals.
    low_a, high_a = wilson_by_hand(3, 10)
    low_b, high_b = wilson_by_hand(5, 10)
    assert difference["estimate"] == pytest.approx(-0.2)
    assert difference["low"] == pytest.approx(-0.2 - math.hypot(0.3 - low_a, high_b - 0.5))
    assert difference["high"] == pytest.approx(-0.2 + math.hypot(high_a - 0.3, 0.5 - low_b))


def test_no_runs_on_one_side_gives_no_detectable_difference():
    result = verdict.compare(runs_spending([(True, 10)] * 20), [run(1, True, 5, status="failed")], names=("ga", "cmaes"))
    assert result["n"] == {"ga": 20, "cmaes": 0}
    assert result["logrank_p"] == {"evaluations": None, "cpu_seconds": None}
    assert result["probability_of_improvement"]["evaluations"]["estimate"] is None
    assert result["success_difference"] == {"estimate": None, "low": None, "high": None}
    for lens in ("reliability", "evaluations", "cpu_seconds"):
        assert result["verdict"][lens]["winner"] is None
        assert result["verdict"][lens]["text"] == "no detectable difference (n=20 vs 0)"
    assert_plain_json(result)


def test_logrank_is_none_when_no_run_solved():
    result = verdict.compare(runs_spending([(False, 100)] * 5), runs_spending([(False, 100)] * 5, first_id=10))
    assert result["logrank_p"] == {"evaluations": None, "cpu_seconds": None}
    assert result["verdict"]["evaluations"]["winner"] is None


def test_verdict_is_decided_on_the_holm_adjusted_p_value():
    # 10/10 (slowly) vs 5/10 (quickly): Fisher p = 0.0325. Issue 17: each lens is its own Holm family
    # (reliability, evaluations among solved runs, CPU seconds), so with one comparison nothing is
    # multiplied (was: reliability and evaluations together, 2 x 0.0325 = 0.065, undecided).
    a = runs_spending([(True, 90)] * 10)
    b = runs_spending([(True, 10)] * 5 + [(False, 100)] * 5, first_id=100)
    result = verdict.compare(a, b)
    assert result["success_p"] == pytest.approx(0.0325077, abs=1e-6)
    assert result["success_p_adjusted"] == pytest.approx(result["success_p"])
    assert result["speed_p_adjusted"] == result["speed_p"]  # each alone in its family
    assert result["verdict"]["reliability"]["winner"] == "a"
    # Among solved runs b is faster (5 runs at 10 against 10 at 90): exact permutation p = 1 / C(15, 5)
    # (only this arrangement is as extreme; its mirror cannot happen with these values).
    assert result["speed_p"]["evaluations"] == pytest.approx(1 / math.comb(15, 5))
    assert result["verdict"]["evaluations"]["winner"] == "b"
    # In a report of three pairs (a-b and c-b at p = 0.0325, a-c at 1), Holm triples the smallest.
    both = verdict.compare_all({"a": a, "b": b, "c": runs_spending([(True, 90)] * 10, first_id=200)})
    ab = next(c for c in both if (c["first"], c["second"]) == ("a", "b"))
    assert ab["success_p_adjusted"] == pytest.approx(3 * ab["success_p"])


def test_compare_all_corrects_across_every_reported_p_value():
    groups = {
        "ga": runs_spending([(True, 10 + i) for i in range(15)]),
        "backprop": runs_spending([(i < 9, 30 + i) for i in range(15)], first_id=100),
        "cmaes": runs_spending([(i < 4, 50 + i) for i in range(15)], first_id=200),
    }
    comparisons = verdict.compare_all(groups)
    assert [(c["first"], c["second"]) for c in comparisons] == [("backprop", "cmaes"), ("backprop", "ga"), ("cmaes", "ga")]
    # One family per lens (issue 17): reliability, evaluations, CPU seconds, each across every pair.
    raw = [c["success_p"] for c in comparisons]
    assert [c["success_p_adjusted"] for c in comparisons] == pytest.approx(verdict.holm(raw))
    for lens in ("evaluations", "cpu_seconds"):
        raw = [c["speed_p"][lens] for c in comparisons]
        assert [c["speed_p_adjusted"][lens] for c in comparisons] == pytest.approx(verdict.holm(raw))
    # Decided on adjusted values: a winner only where the adjusted p-value is below alpha.
    for comparison in comparisons:
        for lens, decision in comparison["verdict"].items():
            if decision["winner"] is not None:
                assert decision["p"] < verdict.ALPHA
    # Two groups: the same as compare.
    pair = verdict.compare_all({"ga": groups["ga"], "cmaes": groups["cmaes"]})
    assert pair == [verdict.compare(groups["cmaes"], groups["ga"], names=("cmaes", "ga"))]


# --- leaderboard -----------------------------------------------------------------------------------------------


def entry(method, settings_hash, rate, rate_ci, ert, ert_ci):
    return {
        "method": method,
        "settings_hash": settings_hash,
        "success_rate": rate,
        "success_rate_ci": rate_ci,
        "ert_evaluations": ert,
        "ert_evaluations_ci": ert_ci,
        "ert_seconds": 0.001,  # would put everything in reverse order if it were used
    }


def test_leaderboard_ranks_by_success_rate_then_ert_and_marks_overlaps_tied():
    entries = [
        entry("cmaes", "c", 1.0, [0.8, 1.0], 300.0, [250.0, 350.0]),  # clearly slower than a/b
        entry("ga", "b", 1.0, [0.8, 1.0], 105.0, [95.0, 120.0]),  # overlaps "a" on both
        entry("backprop", "d", 0.5, [0.3, 0.7], None, None),  # Wilson apart from "c"
        entry("ga", "a", 1.0, [0.8, 1.0], 100.0, [90.0, 110.0]),
        entry("ga", "e", 0.45, [0.25, 0.65], 900.0, [500.0, None]),  # overlaps "d" (None = unbounded)
    ]
    ranked = verdict.rank_leaderboard(entries)
    assert [e["settings_hash"] for e in ranked] == ["a", "b", "c", "d", "e"]
    assert [e["rank"] for e in ranked] == [1, 2, 3, 4, 5]
    assert [e["tied_with_previous"] for e in ranked] == [False, True, False, False, True]
    assert [e["tie_group"] for e in ranked] == [1, 1, 2, 3, 3]
    assert "rank" not in entries[0]  # inputs untouched


def test_leaderboard_order_is_deterministic_for_equal_statistics():
    same = dict(rate=1.0, rate_ci=[0.8, 1.0], ert=100.0, ert_ci=[90.0, 110.0])
    entries = [entry("ga", "z", **same), entry("backprop", "y", **same), entry("ga", "x", **same)]
    for order in itertools.permutations(entries):
        ranked = verdict.rank_leaderboard(list(order))
        assert [(e["method"], e["settings_hash"]) for e in ranked] == [("backprop", "y"), ("ga", "x"), ("ga", "z")]
        assert [e["tie_group"] for e in ranked] == [1, 1, 1]


def test_leaderboard_accepts_configuration_stats():
    fast = verdict.configuration_stats(runs_spending([(True, 10 + i) for i in range(30)]))
    slow = verdict.configuration_stats(runs_spending([(True, 100 + i) for i in range(30)]))
    ranked = verdict.rank_leaderboard(
        [{"method": "ga", "settings_hash": "slow", **slow}, {"method": "ga", "settings_hash": "fast", **fast}]
    )
    assert [e["settings_hash"] for e in ranked] == ["fast", "slow"]
    assert ranked[1]["tied_with_previous"] is False  # ERT intervals [10, 39] and [100, 129] are apart
    assert_plain_json(ranked)


# --- across tasks --------------------------------------------------------------------------------------------


def test_performance_profile_on_a_hand_example():
    # Task 1: x ERT 10, y ERT 20 -> ratios 1, 2. Task 2: x never solved, y ERT 5 -> ratios inf, 1.
    profile = verdict.performance_profile({"t1": {"x": 10.0, "y": 20.0}, "t2": {"x": None, "y": 5.0}}, ["x", "y"])
    tau = profile["tau"]
    assert len(tau) == verdict.PROFILE_POINTS
    assert tau[0] == 1.0 and tau[-1] == pytest.approx(2.2)
    assert all(b / a == pytest.approx(tau[1] / tau[0]) for a, b in itertools.pairwise(tau))  # log-spaced
    assert profile["x"] == [0.5] * len(tau)
    assert profile["y"] == [1.0 if t >= 2 else 0.5 for t in tau]


def test_summary_counts_tasks_won_lost_and_undecided():
    ga_wins = {
        "ga": runs_spending([(True, 10 + i) for i in range(20)]),
        "backprop": runs_spending([(False, 100)] * 20, first_id=100),
    }
    tie = {
        "ga": runs_spending([(True, 10 + i) for i in range(20)], first_id=200),
        "backprop": runs_spending([(True, 10 + i) for i in range(20)], first_id=300),
    }
    result = verdict.summary({"xor": ga_wins, "parity": tie})
    assert result["methods"]["ga"]["reliability"] == {"won": 1, "lost": 0, "undecided": 1}
    assert result["methods"]["backprop"]["reliability"] == {"won": 0, "lost": 1, "undecided": 1}
    assert result["tasks"]["xor"]["reliability"] == "ga"
    # Issue 17: each decision counted once: backprop never solving is a reliability loss, not also a
    # speed loss (speed is compared among solved runs).
    for lens in ("evaluations", "cpu_seconds"):
        assert result["methods"]["ga"][lens] == {"won": 0, "lost": 0, "undecided": 2}
        assert result["tasks"]["xor"][lens] is None
    for lens in verdict.VERDICT_LENSES:
        assert result["tasks"]["parity"][lens] is None
    profile = result["performance_profiles"]["evaluations"]
    # xor: backprop never solved (ratio inf); parity: identical ERT (ratio 1 each).
    assert profile["ga"] == [1.0] * len(profile["tau"])
    assert profile["backprop"] == [0.5] * len(profile["tau"])
    assert set(result["performance_profiles"]) == {"evaluations", "cpu_seconds"}
    assert len(result["comparisons"]["xor"]) == 1
    assert_plain_json(result)


def test_summary_needs_a_method_to_beat_every_other_one_to_win_a_task():
    task = {
        "ga": runs_spending([(True, 10 + i) for i in range(20)]),
        "cmaes": runs_spending([(True, 10 + i) for i in range(20)], first_id=100),
        "backprop": runs_spending([(False, 100)] * 20, first_id=200),
    }
    result = verdict.summary({"xor": task, "alone": {"ga": runs_spending([(True, 5)] * 3, first_id=300)}})
    reliability = {m: result["methods"][m]["reliability"] for m in ("ga", "cmaes", "backprop")}
    assert reliability["ga"] == {"won": 0, "lost": 0, "undecided": 2}  # ties cmaes; alone on "alone"
    assert reliability["cmaes"] == {"won": 0, "lost": 0, "undecided": 1}
    assert reliability["backprop"] == {"won": 0, "lost": 1, "undecided": 0}
    assert result["tasks"]["xor"]["reliability"] is None


def test_summary_corrects_across_all_tasks_unless_asked_per_task():
    # 10/10 vs 4/10: Fisher p = 0.0108. With five more tasks (10 more p-values) in the reliability and
    # evaluations family the reliability verdict is no longer significant; corrected per task (2
    # p-values in that family) it is.
    def tie(first_id):
        return {
            "ga": runs_spending([(True, 50)] * 10, first_id=first_id),
            "backprop": runs_spending([(True, 50)] * 10, first_id=first_id + 500),
        }

    close = {
        "ga": runs_spending([(True, 50)] * 10),
        "backprop": runs_spending([(True, 50)] * 4 + [(False, 50)] * 6, first_id=100),
    }
    tasks = {"close": close, **{f"tie{i}": tie(1000 * (i + 1)) for i in range(5)}}
    across = verdict.summary(tasks)
    per_task = verdict.summary(tasks, correct_across_tasks=False)
    assert across["tasks"]["close"]["reliability"] is None
    assert per_task["tasks"]["close"]["reliability"] == "ga"
    assert per_task["comparisons"]["close"] == verdict.compare_all(close)


# --- columns (RunTable) against dicts -------------------------------------------------------------------


def messy_runs(count: int, seed: int) -> list[dict]:
    """Runs with everything the database can hold: repeated seeds (duplicates, lowest id not first), two
    settings hashes sharing seeds, failed and cancelled runs, old runs without CPU time, solved runs
    missing their *_to_solve, and many tied times."""
    rng = random.Random(seed)
    ids = rng.sample(range(1, 10 * count), count)
    runs = []
    for run_id in ids:
        solved = rng.random() < 0.7
        spent = float(rng.choice([100, 200, 300]) if rng.random() < 0.3 else rng.randrange(50, 5000))
        one = run(run_id, solved, spent, seed=rng.randrange(count // 2), settings_hash=rng.choice("hh" + "k"), cpu=rng.random() < 0.8)
        draw = rng.random()
        if draw < 0.1:
            one.update(status="failed", solved=None, evaluations=None, seconds=None, cpu_seconds=None)
        elif draw < 0.15:
            one["status"] = "cancelled"
        elif solved and draw < 0.25:
            one.update(evaluations_to_solve=None, cpu_seconds_to_solve=None)  # falls back to totals
        runs.append(one)
    return runs


def as_rows(runs: list[dict]) -> verdict.RunTable:
    """The runs as the service builds them: succeeded runs as database tuples, other statuses counted."""
    succeeded = [r for r in runs if r["status"] == "succeeded"]
    hashes = sorted({r["settings_hash"] for r in succeeded})
    table = verdict.RunTable.from_rows(
        [tuple(r[name] for name in verdict.RunTable.ROW_FIELDS) for r in succeeded],
        key=[hashes.index(r["settings_hash"]) for r in succeeded],
        failed=sum(r["status"] == "failed" for r in runs),
        cancelled=sum(r["status"] == "cancelled" for r in runs),
    )
    return table


@pytest.mark.parametrize("seed", range(5))
def test_columns_keep_the_same_runs_and_times_as_the_dict_reference(seed):
    runs = messy_runs(300, seed)
    kept, duplicates = verdict.distinct_runs(runs)
    for table in (verdict.RunTable.from_dicts(runs), as_rows(runs)):
        kept_table, duplicates_table = table.distinct()
        assert kept_table.id.tolist() == [r["id"] for r in kept]
        assert duplicates_table == duplicates > 0
        reference = run_table._times_to_solve(kept)
        for lens, (times, solved) in kept_table.times_to_solve().items():
            np.testing.assert_array_equal(times, reference[lens][0])
            np.testing.assert_array_equal(solved, reference[lens][1])


@pytest.mark.parametrize("seed", range(3))
def test_columnar_and_dict_paths_give_the_same_statistics(seed):
    a, b = messy_runs(200, seed), messy_runs(150, seed + 100)
    b = [{**r, "solved": r["solved"] and r["evaluations"] < 3000} for r in b]  # B solves less often
    for table_a, table_b in ((verdict.RunTable.from_dicts(a), verdict.RunTable.from_dicts(b)), (as_rows(a), as_rows(b))):
        assert verdict.configuration_stats(table_a) == verdict.configuration_stats(a)
        assert verdict.compare(table_a, table_b, ("a", "b")) == verdict.compare(a, b, ("a", "b"))
        assert verdict.probability_of_improvement(table_a, table_b, "cpu_seconds") == verdict.probability_of_improvement(a, b, "cpu_seconds")
        assert verdict.summary({"t": {"a": table_a, "b": table_b}}) == verdict.summary({"t": {"a": a, "b": b}})


def test_an_empty_table_has_no_statistics():
    empty = verdict.RunTable.from_rows([], failed=2)
    stats_ = verdict.configuration_stats(empty)
    assert (stats_["runs"], stats_["failed"], stats_["success_rate"], stats_["ert_evaluations"]) == (0, 2, None, None)
    assert stats_ == verdict.configuration_stats([run(1, False, 0, status="failed"), run(2, False, 0, status="failed")])


def test_ert_interval_survives_resamples_without_spread():
    # Nearly equal solved runs and one far slower (issue 17, found over HTTP): a resample of the nearly
    # equal runs has almost no spread, so its studentised pivot is huge (math.exp overflowed); the
    # interval must be finite and sane, or unbounded (None), never an error.
    for outcomes in ([(True, 1000)] * 4 + [(True, 1001), (True, 100_000)], [(True, 3000)] * 2 + [(True, 3100), (True, 100_000)]):
        stats_ = verdict.configuration_stats(runs_spending(outcomes))
        low, high = stats_["ert_evaluations_ci"]
        assert low is not None and low <= stats_["ert_evaluations"]
        assert high is None or stats_["ert_evaluations"] <= high <= 1000 * stats_["ert_evaluations"]


# --- seeds until the answer is clear (arena/verdict/sequential.py) -----------------------------------


def test_alpha_spending_over_the_planned_looks_sums_to_alpha():
    from arena.verdict import sequential

    plan = sequential.Plan(minimum=10, maximum=200, round_size=10)
    assert plan.looks() == list(range(10, 201, 10))
    levels = [sequential.nominal_level(n, plan) for n in plan.looks()]
    assert sum(levels) == pytest.approx(verdict.ALPHA)
    assert levels[0] < 1e-9 and all(a < b for a, b in itertools.pairwise(levels[:5]))  # O'Brien-Fleming: strict early
    assert sequential.Plan(minimum=7, maximum=20, round_size=10).looks() == [7, 17, 20]
    with pytest.raises(ValueError):
        sequential.nominal_level(15, plan)
    with pytest.raises(ValueError):
        sequential.Plan(minimum=0, maximum=10)


def test_sequential_decision_on_run_dicts():
    from arena.verdict import sequential

    plan = sequential.Plan(minimum=10, maximum=40, round_size=10)
    fast = runs_spending([(True, 10 + i) for i in range(40)])
    slow = runs_spending([(True, 1000 + i) for i in range(40)], first_id=100)
    # First look (10 of 40 seeds): O'Brien-Fleming spends 8.9e-5, 3.0e-5 per lens, which 10 runs against 10
    # cannot reach with the Monte Carlo permutation test (its floor is 1/5,001): continue.
    early = sequential.decide({"fast": fast[:10], "slow": slow[:10]}, 10, plan)
    assert early["action"] == "continue" and early["next_n"] == 20
    assert early["level"] == pytest.approx(sequential.nominal_level(10, plan) / 3)
    # Second look: 20 against 20, all apart: decided on both speed lenses; reliability (20/20 each) has ruled
    # out a difference of 0.2 (futile): stop.
    second = sequential.decide({"fast": fast[:20], "slow": slow[:20]}, 20, plan)
    assert second["action"] == "stop-decided"
    assert second["lenses"]["evaluations"]["winner"] == "fast" and second["lenses"]["cpu_seconds"]["winner"] == "fast"
    assert second["lenses"]["reliability"]["winner"] is None and second["lenses"]["reliability"]["settled"]
    assert "stopped at 20 seeds" in second["reason"] and "20 of 40 seeds saved" in second["reason"]
    # Two identical methods never decide; at the maximum they stop with no winner.
    same = runs_spending([(i % 3 > 0, 50 + i) for i in range(40)], first_id=500)
    again = [dict(r, id=r["id"] + 1000) for r in same]
    look = sequential.decide({"a": same[:10], "b": again[:10]}, 10, plan)
    assert look["action"] == "continue" and look["next_n"] == 20
    last = sequential.decide({"a": same, "b": again}, 40, plan)
    assert last["action"] in ("stop-futility", "stop-max") and all(lens["winner"] is None for lens in last["lenses"].values())
