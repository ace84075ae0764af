"""Two or more configurations head to head: effect sizes, tests, multiple testing and the decisions.

A comparison asks three questions, one per lens, each decided by its own test (`significance`):

- reliability: does one solve more often? Fisher's exact test on the 2x2 success table, with
  Newcombe's (1998, method 10) hybrid score interval for the difference of success rates;
- evaluations, cpu_seconds: among the runs that solved, does one need less? A permutation rank test
  (exact at every n), with the probability of improvement among solved runs (A12, Newcombe 2006).

Each lens is its own Holm (1979) family across every comparison reported together (`HOLM_FAMILIES`), so a
verdict row controls its family-wise error rate at `ALPHA`, and noise in one lens (CPU seconds vary with
machine load) never moves another lens's adjusted p-values. A configuration with fewer than `MIN_RUNS`
distinct runs enters no test ("too few runs"). When a method's configuration was *selected* among
several (the leaderboard compares each method's best-ranked one), its p-values are multiplied by the
number of configuration pairs it was chosen from (`selected_from`, Bonferroni) before Holm: without it,
picking the best of 5 configurations was declared better in 5.8% of null repetitions.

Also shown, for reference: the probability of improvement over all runs (an unsolved run worse than any
solved one, two unsolved runs tied), and the log-rank p-value (Mantel 1966; asymptotic, never decides).

scipy and statsmodels are imported inside the functions that need them (about a second to import).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from arena.verdict import words
from arena.verdict.intervals import CONFIDENCE, NO_INTERVAL, interval, number
from arena.verdict.significance import a12_with_interval, fisher_p, rank_test_p
from arena.verdict.table import LENSES, VERDICT_LENSES, RunTable, distinct

ALPHA = 0.05  # a verdict needs a Holm-adjusted p-value below this
MIN_RUNS = 5  # distinct runs a configuration needs on each side before it enters a verdict
# One Holm family per lens: reliability, evaluations and CPU seconds are three questions (solving at all;
# evaluations among solved runs; CPU time among solved runs, which depends on the machine and its load).
HOLM_FAMILIES = tuple((lens,) for lens in VERDICT_LENSES)


def _unsolved_last(times: np.ndarray, solved: np.ndarray) -> np.ndarray:
    """Times to solve with unsolved runs at +inf: worse than any solved run, tied with each other."""
    return np.where(solved, times, np.inf)


def probability_of_improvement(a_runs: list[dict] | RunTable, b_runs: list[dict] | RunTable, lens: str) -> dict:
    """P(a random run of A beats a random run of B) on time to solve: Vargha & Delaney's (2000) A12.

    All pairs of distinct succeeded runs; the run that solved with less (evaluations or CPU seconds,
    per `lens`) wins; an unsolved run is worse than any solved one; two unsolved runs tie (comparing what
    they spent would reward a smaller budget); ties count half. 0.5 = no difference, 1 = A always
    better. Returns {estimate, low, high} with Newcombe's (2006) 95% interval (all None when a group
    has no runs).
    """
    if lens not in LENSES:
        raise ValueError(f"unknown lens {lens!r}: expected one of {LENSES}")
    a_kept, _ = distinct(a_runs)
    b_kept, _ = distinct(b_runs)
    if not len(a_kept) or not len(b_kept):
        return dict(NO_INTERVAL)
    a_times = _unsolved_last(*a_kept.times_to_solve()[lens])
    b_times = _unsolved_last(*b_kept.times_to_solve()[lens])
    return a12_with_interval(a_times, b_times)


def _logrank_p(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float | None:
    """Two-sided log-rank p-value on (times, solved) of two groups; None when it cannot be computed
    (a group without runs, or no run solved at all)."""
    (a_times, a_solved), (b_times, b_solved) = a, b
    if len(a_times) == 0 or len(b_times) == 0 or not (a_solved.any() or b_solved.any()):
        return None
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.logrank(
            stats.CensoredData(uncensored=a_times[a_solved], right=a_times[~a_solved]),
            stats.CensoredData(uncensored=b_times[b_solved], right=b_times[~b_solved]),
        )
    return number(result.pvalue)


def _success_difference(a_solved: int, a_n: int, b_solved: int, b_n: int) -> dict:
    """Difference of success rates A - B with Newcombe's (1998) hybrid score interval."""
    if a_n == 0 or b_n == 0:
        return dict(NO_INTERVAL)
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        a_solved, a_n, b_solved, b_n, method="newcomb", compare="diff", alpha=1 - CONFIDENCE
    )
    return interval(a_solved / a_n - b_solved / b_n, low, high)


def _compare_unadjusted(a_runs: list[dict] | RunTable, b_runs: list[dict] | RunTable, names: tuple[str, str]) -> dict:
    """Everything in a comparison except the Holm-adjusted p-values and the verdict."""
    first, second = names
    if first == second:
        raise ValueError(f"two configurations need two names, got {names!r}")
    a_kept, _ = distinct(a_runs)
    b_kept, _ = distinct(b_runs)
    a_by_lens, b_by_lens = a_kept.times_to_solve(), b_kept.times_to_solve()
    a_solved = int(a_by_lens["evaluations"][1].sum())
    b_solved = int(b_by_lens["evaluations"][1].sum())
    improvement, improvement_solved, logrank_p, speed_p = {}, {}, {}, {}
    for lens in LENSES:
        (a_times, a_is_solved), (b_times, b_is_solved) = a_by_lens[lens], b_by_lens[lens]
        if len(a_kept) and len(b_kept):
            improvement[lens] = a12_with_interval(_unsolved_last(a_times, a_is_solved), _unsolved_last(b_times, b_is_solved))
        else:
            improvement[lens] = dict(NO_INTERVAL)
        improvement_solved[lens] = a12_with_interval(a_times[a_is_solved], b_times[b_is_solved])
        if improvement_solved[lens]["estimate"] is None:
            improvement_solved[lens] = dict(NO_INTERVAL)
        speed_p[lens] = rank_test_p(a_times[a_is_solved], b_times[b_is_solved])
        logrank_p[lens] = _logrank_p(a_by_lens[lens], b_by_lens[lens])
    from scipy import stats

    success_table = [[a_solved, len(a_kept) - a_solved], [b_solved, len(b_kept) - b_solved]]
    success_p = float(stats.fisher_exact(success_table).pvalue)
    return {
        "first": first,
        "second": second,
        "n": {first: len(a_kept), second: len(b_kept)},
        "solved": {first: a_solved, second: b_solved},
        "selected_from": {first: 1, second: 1},
        "probability_of_improvement": improvement,
        "probability_of_improvement_solved": improvement_solved,
        "speed_p": speed_p,
        "logrank_p": logrank_p,
        "success_p": number(success_p),
        "success_difference": _success_difference(a_solved, len(a_kept), b_solved, len(b_kept)),
    }


def separation_p(a_runs: list[dict] | RunTable, b_runs: list[dict] | RunTable) -> tuple[float | None, float | None]:
    """(Fisher's p on success, the speed test's p on evaluations among solved runs) of two configurations,
    unadjusted; None for a side with fewer than `MIN_RUNS` runs. What a leaderboard's ties are decided
    on, without the rest of a comparison."""
    a_kept, _ = distinct(a_runs)
    b_kept, _ = distinct(b_runs)
    if len(a_kept) < MIN_RUNS or len(b_kept) < MIN_RUNS:
        return None, None
    (a_times, a_solved), (b_times, b_solved) = a_kept.times_to_solve()["evaluations"], b_kept.times_to_solve()["evaluations"]
    success_p = fisher_p(int(a_solved.sum()), len(a_kept), int(b_solved.sum()), len(b_kept))
    return success_p, rank_test_p(a_times[a_solved], b_times[b_solved])


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's (1979) step-down adjusted p-values, in input order.

    Controls the family-wise error rate over all the p-values given: the i-th smallest of m is
    multiplied by (m - i + 1), then made non-decreasing (running maximum) and capped at 1. None (a test
    that could not be computed) stays None and does not count in the family. Same values as statsmodels'
    multipletests(method="holm") (checked in the tests), written out because that function runs a full
    gc.collect() on every call: tens of milliseconds in an API process holding many runs.
    """
    present = [i for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    if not present:
        return adjusted
    values = np.asarray([pvalues[i] for i in present], dtype=np.float64)
    m = len(values)
    order = np.argsort(values, kind="stable")
    stepped = np.minimum(np.maximum.accumulate(values[order] * (m - np.arange(m))), 1.0)
    corrected = np.empty(m)
    corrected[order] = stepped
    for i, p in zip(present, corrected):
        adjusted[i] = float(p)
    return adjusted


def _enters_verdict(comparison: dict) -> bool:
    return all(n >= MIN_RUNS for n in comparison["n"].values())


def _selection_factor(comparison: dict) -> int:
    """How many configuration pairs this comparison's pair was chosen from (Bonferroni factor)."""
    chosen = comparison["selected_from"]
    return chosen[comparison["first"]] * chosen[comparison["second"]]


def _raw_p(comparison: dict, lens: str) -> float | None:
    """The p-value deciding `lens`, times the selection factor (capped at 1); None when the comparison
    cannot enter a verdict (too few runs) or the test cannot be computed."""
    if not _enters_verdict(comparison):
        return None
    p = comparison["success_p"] if lens == "reliability" else comparison["speed_p"][lens]
    return None if p is None else min(1.0, p * _selection_factor(comparison))


def comparable(comparison: dict, lens: str) -> bool:
    """Whether the pair can be told apart on `lens` at all: always on reliability; on a speed lens only
    when both sides solved at least once (speed among solved runs; never solving is reliability's
    question, so it is not counted a second time as slowness)."""
    return lens == "reliability" or comparison["probability_of_improvement_solved"][lens]["estimate"] is not None


def lens_record(comparisons: list[dict], names: list[str], lens: str) -> tuple[str | None, dict, dict]:
    """(the name that beats every other name it is comparable with on `lens`, or None; {name: pairs
    won}; {name: pairs lost}). A name comparable with no other never wins."""
    won, lost, comparable_pairs = dict.fromkeys(names, 0), dict.fromkeys(names, 0), dict.fromkeys(names, 0)
    for comparison in comparisons:
        if comparable(comparison, lens):
            comparable_pairs[comparison["first"]] += 1
            comparable_pairs[comparison["second"]] += 1
        winner = comparison["verdict"][lens]["winner"]
        if winner is not None:
            won[winner] += 1
            lost[comparison["second"] if winner == comparison["first"] else comparison["first"]] += 1
    overall = next((name for name in names if comparable_pairs[name] and won[name] == comparable_pairs[name]), None)
    return overall, won, lost


def adjust(comparisons: list[dict]) -> None:
    """Holm across the p-values of every comparison given, one family per `HOLM_FAMILIES` entry, stored
    as success_p_adjusted and speed_p_adjusted (and logrank_p_adjusted, the same values under the name
    earlier clients read)."""
    for comparison in comparisons:
        comparison["speed_p_adjusted"] = {}
    for family in HOLM_FAMILIES:
        slots = [(c, lens) for lens in family for c in comparisons]
        for (comparison, lens), p in zip(slots, holm([_raw_p(c, lens) for c, lens in slots])):
            if lens == "reliability":
                comparison["success_p_adjusted"] = p
            else:
                comparison["speed_p_adjusted"][lens] = p
    for comparison in comparisons:
        comparison["logrank_p_adjusted"] = dict(comparison["speed_p_adjusted"])


def decide(comparison: dict) -> None:
    """The verdict per lens, from the adjusted p-values at `ALPHA`.

    - a side with no runs: "no detectable difference"; fewer than `MIN_RUNS`: "too few runs";
    - reliability: success_p_adjusted < ALPHA -> the higher success rate wins;
    - evaluations, cpu_seconds: speed_p_adjusted < ALPHA -> the side whose solved runs need less wins
      (the probability of improvement among solved runs says which, and by how much);
    - otherwise: "no detectable difference", with the n available ("we could not tell at this n").
    """
    first, second = comparison["first"], comparison["second"]
    n, solved = comparison["n"], comparison["solved"]
    if n[first] and n[second] and not _enters_verdict(comparison):
        undecided = words.too_few_runs(n[first], n[second], MIN_RUNS)
    else:
        undecided = words.undecided(n[first], n[second])
    verdict = {}

    p = comparison["success_p_adjusted"]
    winner = None
    if p is not None and p < ALPHA:
        rate = {name: solved[name] / n[name] for name in (first, second)}
        if rate[first] != rate[second]:
            winner = first if rate[first] > rate[second] else second
    if winner is None:
        verdict["reliability"] = {"winner": None, "text": undecided, "p": p}
    else:
        loser = second if winner == first else first
        verdict["reliability"] = {"winner": winner, "text": words.more_reliable(winner, loser, solved, n, p), "p": p}

    for lens in LENSES:
        p = comparison["speed_p_adjusted"][lens]
        improvement = comparison["probability_of_improvement_solved"][lens]
        winner = None
        if p is not None and p < ALPHA and improvement["estimate"] is not None and improvement["estimate"] != 0.5:
            winner = first if improvement["estimate"] > 0.5 else second
        if winner is None:
            verdict[lens] = {"winner": None, "text": undecided, "p": p}
            continue
        # Probability of improvement stated from the winner's side.
        estimate, low, high = improvement["estimate"], improvement["low"], improvement["high"]
        if winner == second:
            estimate, low, high = 1 - estimate, 1 - high, 1 - low
        verdict[lens] = {"winner": winner, "text": words.faster(winner, lens, (estimate, low, high), p), "p": p}
    comparison["verdict"] = verdict


def compare(a_runs: list[dict] | RunTable, b_runs: list[dict] | RunTable, names: tuple[str, str] = ("a", "b")) -> dict:
    """Two configurations head to head (runs of any status, as dicts or `RunTable`s; distinct succeeded
    runs are used).

    Returns {"first", "second", "n": {name: n}, "solved": {name: solved}, "selected_from": {name: k},
    "probability_of_improvement": {lens: {estimate, low, high}} (first beating second, all runs),
    "probability_of_improvement_solved": {lens: {estimate, low, high}} (among solved runs),
    "speed_p", "speed_p_adjusted": {lens: p or None} (the permutation rank test among solved runs),
    "logrank_p": {lens: p or None} (for reference), "logrank_p_adjusted" (= speed_p_adjusted),
    "success_p", "success_p_adjusted" (Fisher's exact, two-sided),
    "success_difference": {estimate, low, high} (rate first - rate second, Newcombe 95%),
    "verdict": {"reliability"|"evaluations"|"cpu_seconds": {"winner": name or None, "text", "p"}}}.
    See `decide` for the decision rules.
    """
    comparison = _compare_unadjusted(a_runs, b_runs, names)
    adjust([comparison])
    decide(comparison)
    return comparison


def every_pair_unadjusted(groups: dict[str, list[dict] | RunTable], selected_from: dict[str, int] | None = None) -> list[dict]:
    comparisons = [_compare_unadjusted(groups[a], groups[b], (a, b)) for a, b in itertools.combinations(sorted(groups), 2)]
    for comparison in comparisons:
        for name in comparison["selected_from"]:
            comparison["selected_from"][name] = max(1, int((selected_from or {}).get(name, 1)))
    return comparisons


def compare_all(groups: dict[str, list[dict] | RunTable], selected_from: dict[str, int] | None = None) -> list[dict]:
    """Every pair of groups ({name: runs or RunTable}) compared, in sorted name order, as `compare` does,
    with Holm's correction across ALL p-values reported together, one family per lens. `selected_from`:
    {name: number of configurations that name's runs were selected from} (default 1 each)."""
    comparisons = every_pair_unadjusted(groups, selected_from)
    adjust(comparisons)
    for comparison in comparisons:
        decide(comparison)
    return comparisons
