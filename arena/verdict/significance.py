"""The tests and effect sizes that decide a comparison, chosen by simulation (tests/test_verdict_calibration.py,
docs/statistics.md "How the tests were chosen").

- Speed (the evaluations and CPU-seconds lenses): among the runs that solved, a two-sided permutation
  test of the normal-scores (van der Waerden) statistic: ranks (ties mid-ranked) mapped to normal
  quantiles, so the test is invariant to how time is measured, exact with ties, and robust to a few
  very slow seeds like any rank test, yet never less efficient than the t-test (Chernoff & Savage
  1958) and as efficient as a t-test on log times when those are normal. Its null distribution is the
  *permutation* distribution of the data at hand: exact by enumeration when there are few
  relabellings, Monte Carlo with `PERMUTATIONS` relabellings (fixed seed) in between (below its floor
  of 1 / 5,001, the normal limit says how far), the normal limit when both sides have at least
  `NORMAL_FROM` solved runs. Exact at every n, unlike the asymptotic
  log-rank (1 run against 20: p = 7.7e-6 where the truth is 2/21 two-sided). Conditioning on solving
  keeps the speed question apart from the reliability one (Fisher), so a difference in success rates
  is never counted twice, and it is where the power is when some runs never solve (docs/statistics.md).
- Effect size: Vargha & Delaney's A12 (probability of improvement) with Newcombe's (2006) score-type
  interval (method 5: the Hanley-McNeil variance at the candidate value, inverted like Wilson's), which
  covers at small n and is never a point: 10 runs all beating 10 runs give [0.83, 1], not [1, 1].
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from arena.verdict.intervals import Z

PERMUTATIONS = 5000  # Monte Carlo relabellings of the permutation test (p >= 1/5001)
EXACT_UP_TO = 5000  # enumerate every relabelling when there are at most this many
NORMAL_FROM = 50  # solved runs on each side from which the permutation distribution's normal limit is used
PERMUTATION_SEED = 20_240_802
_GRID = np.linspace(0.0, 1.0, 20_001)  # candidate A12 values for inverting the score interval


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Van der Waerden's normal scores: Phi^-1(rank / (m + 1)), ties sharing the score of their mid-rank."""
    from scipy import stats

    return stats.norm.ppf(stats.rankdata(values) / (len(values) + 1))


def rank_test_p(a: np.ndarray, b: np.ndarray, rng: np.random.Generator | None = None) -> float | None:
    """Two-sided permutation p-value of the normal-scores (van der Waerden) two-sample statistic of a and
    b (the sum of a's scores); None when a side is empty. The permutation distribution is computed
    exactly (every relabelling) when there are at most `EXACT_UP_TO` relabellings, from `PERMUTATIONS`
    random relabellings (fixed seed) while a side has fewer than `NORMAL_FROM` values, and from its
    normal limit beyond (the permutation mean and variance of the statistic, exact for any ties)."""
    k, m = len(a), len(a) + len(b)
    if k == 0 or k == m:
        return None
    scores = normal_scores(np.concatenate([a, b]))
    scores = scores - scores.mean()  # the statistic's permutation mean is then 0
    observed = abs(scores[:k].sum())
    tolerance = 1e-9 * max(1.0, float(np.abs(scores).sum()))  # equal statistics count as "as extreme"
    variance = k * (m - k) / (m * (m - 1)) * float(np.sum(scores**2))  # of the statistic, over relabellings
    normal_p = float(min(1.0, math.erfc(observed / math.sqrt(2 * variance)))) if variance > 0 else 1.0
    if min(k, m - k) >= NORMAL_FROM:
        return normal_p
    if math.comb(m, k) <= EXACT_UP_TO:
        statistics = np.abs(scores[_relabellings(m, k)].sum(axis=1))
        return float(np.mean(statistics >= observed - tolerance))
    rng = rng if rng is not None else np.random.default_rng(PERMUTATION_SEED)
    shuffled = rng.permuted(np.broadcast_to(scores, (PERMUTATIONS, m)), axis=1)
    as_extreme = int(np.sum(np.abs(shuffled[:, :k].sum(axis=1)) >= observed - tolerance))
    if as_extreme == 0:
        # More extreme than every relabelling drawn: below the Monte Carlo floor 1 / (PERMUTATIONS + 1),
        # where the normal limit says how far (what sequential looks and large Holm families need).
        return min(1.0 / (PERMUTATIONS + 1), normal_p)
    return float((1 + as_extreme) / (PERMUTATIONS + 1))


@functools.lru_cache(maxsize=256)
def _relabellings(m: int, k: int) -> np.ndarray:
    """Every way to choose which k of m pooled runs belong to the first side: (C(m, k), k) indices."""
    return np.array(list(itertools.combinations(range(m), k)), dtype=np.intp).reshape(-1, k)


def a12(a: np.ndarray, b: np.ndarray) -> float | None:
    """P(a random value of a is below a random value of b), ties half (Vargha & Delaney's A12 with lower
    = better); None when a side is empty. Infinite values (unsolved runs) tie with each other."""
    if len(a) == 0 or len(b) == 0:
        return None
    b_sorted = np.sort(b)
    below_or_equal = np.searchsorted(b_sorted, a, "right")
    below = np.searchsorted(b_sorted, a, "left")
    wins = np.sum(len(b) - below_or_equal) + 0.5 * np.sum(below_or_equal - below)
    return float(wins / (len(a) * len(b)))


def a12_interval(estimate: float | None, n_a: int, n_b: int) -> tuple[float | None, float | None]:
    """Newcombe's (2006) method-5 95% interval for A12: every theta with (estimate - theta)^2 <= z^2
    var(theta), var(theta) = theta (1 - theta) / (n_a n_b) [1 + (N - 1)(1 - theta)/(2 - theta)
    + (N - 1) theta / (1 + theta)], N = (n_a + n_b) / 2. Like Wilson's interval, it widens towards 0
    and 1 instead of collapsing to a point."""
    if estimate is None or n_a == 0 or n_b == 0:
        return None, None
    theta = _GRID
    half = (n_a + n_b) / 2 - 1
    variance = theta * (1 - theta) / (n_a * n_b) * (1 + half * (1 - theta) / (2 - theta) + half * theta / (1 + theta))
    inside = np.flatnonzero((estimate - theta) ** 2 <= Z**2 * variance + 1e-15)
    if len(inside) == 0:  # only at floating-point edges: the estimate itself
        return estimate, estimate
    step = theta[1] - theta[0]  # rounded outwards to the grid
    return float(max(0.0, theta[inside[0]] - step * (inside[0] > 0))), float(min(1.0, theta[inside[-1]] + step * (inside[-1] < len(theta) - 1)))


def a12_with_interval(a: np.ndarray, b: np.ndarray) -> dict:
    estimate = a12(a, b)
    low, high = a12_interval(estimate, len(a), len(b))
    return {"estimate": estimate, "low": low, "high": high}


def fisher_p(a_solved: int, a_n: int, b_solved: int, b_n: int) -> float | None:
    """Fisher's exact two-sided p-value on the 2x2 table solved / unsolved; None when a side is empty."""
    if a_n == 0 or b_n == 0:
        return None
    from scipy import stats

    return float(stats.fisher_exact([[a_solved, a_n - a_solved], [b_solved, b_n - b_solved]]).pvalue)
