"""Bootstrap machinery and interval estimates: how sure each figure is.

Bootstraps use a fixed-seed generator, so the same runs always give the same answer, and are capped at
`CONFIGURATION_RESAMPLES` (ERT, IQM) resamples and vectorised. A resample is held as counts of the
sample's distinct values (`resampled_counts`): drawn run by run while resamples x runs <=
`MAX_BOOTSTRAP_CELLS` (up to 2,000 runs), else from the multinomial over distinct values when there are
few (e.g. evaluations in whole generations). Larger samples with many distinct values (tens of
thousands of runs) use the normal limit of the same bootstrap instead, each described where it is used:
ERT draws the number of successes exactly and the total spent from its normal approximation; IQM uses
the Tukey-McLaughlin standard error. The tests check each approximation against the exact bootstrap on
the same data. (The probability of improvement needs no bootstrap: see `significance.a12_interval`.)

- Success rate: Wilson (1927) score interval, honest at 0/n and n/n.
- ERT: the hull of the percentile and the studentised (bootstrap-t, log scale) bootstrap intervals.

scipy is imported inside the functions that need it: it takes about a second to import, which the API
should not pay at start-up.
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95
CONFIGURATION_RESAMPLES = 1000  # bootstrap resamples for ERT and IQM intervals
# Largest resampled-count matrix (resamples x distinct values) built; beyond it a normal approximation
# is used. 2e6 cells keep a bootstrap at a few tens of milliseconds and ~16 MB.
MAX_BOOTSTRAP_CELLS = 2_000_000
# Drawing counts of distinct values with a multinomial costs ~20x more per cell than drawing run
# indices, so that path gets a proportionally smaller share of the cell budget.
MULTINOMIAL_COST = 20
SEED = 20_240_801  # fixed: the same runs give the same intervals

Z = 1.959963984540054  # standard normal quantile at 97.5%
UNBOUNDED_RATIO = 1000.0  # an ERT interval's high end beyond this many times the estimate is shown as unbounded


def number(value) -> float | None:
    """A plain float for JSON, or None for missing, NaN and infinite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def interval(estimate, low, high) -> dict:
    return {"estimate": number(estimate), "low": number(low), "high": number(high)}


NO_INTERVAL = {"estimate": None, "low": None, "high": None}


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval. Order statistics rounded outwards (never interpolated), so an
    infinite replicate (a resample without a success) gives an infinite end rather than NaN."""
    tail = (1 - confidence) / 2
    low = np.quantile(replicates, tail, method="lower")
    high = np.quantile(replicates, 1 - tail, method="higher")
    return float(low), float(high)


def resampled_counts(rng: np.random.Generator, counts: np.ndarray, n_resamples: int) -> np.ndarray | None:
    """Bootstrap resamples of a sample given as counts of its distinct values: (n_resamples, k) counts.

    Small samples are resampled run by run (n draws per resample); large samples with few distinct
    values (e.g. evaluations in whole generations) draw the counts directly from the multinomial, which
    is the same distribution. Returns None when neither fits in `MAX_BOOTSTRAP_CELLS`: the caller then
    uses a normal approximation, which is what the bootstrap converges to at such sample sizes.
    """
    n, k = int(counts.sum()), len(counts)
    if n_resamples * n <= MAX_BOOTSTRAP_CELLS:
        owner = np.repeat(np.arange(k), counts)  # run i has distinct value owner[i]
        drawn = owner[rng.integers(0, n, size=(n_resamples, n))]
        offsets = (np.arange(n_resamples) * k)[:, None]
        return np.bincount((drawn + offsets).ravel(), minlength=n_resamples * k).reshape(n_resamples, k)
    if n_resamples * k * MULTINOMIAL_COST <= MAX_BOOTSTRAP_CELLS:
        return rng.multinomial(n, counts / n, size=n_resamples)
    return None



def wilson_interval(successes: int, runs: int, confidence: float = CONFIDENCE) -> list[float] | None:
    """Wilson (1927) score interval of a success rate, [low, high]; None without runs."""
    if runs == 0:
        return None
    from scipy import stats

    interval = stats.binomtest(successes, runs).proportion_ci(confidence_level=confidence, method="wilson")
    return [float(interval.low), float(interval.high)]


def ert_interval(times: np.ndarray, solved: np.ndarray, rng: np.random.Generator) -> list[float | None] | None:
    """Bootstrap 95% interval of ERT, [low, high]; None when nothing solved.

    The hull of the percentile interval and the studentised bootstrap of log ERT (`_log_ert_bootstrap_t`):
    the percentile interval alone covered 80-92% at n = 10, the truth mostly above (skewed times; the
    simulation in tests/test_verdict_calibration.py). A resample without a success has an infinite ERT:
    a high end of None means unbounded. Runs are resampled whole (time and outcome together). When the sample is too large for an exact bootstrap
    (`resampled_counts`), the number of successes in a resample is still drawn exactly (binomial) and
    the total spent given that number from its normal approximation (mean and variance of the solved and
    of the unsolved runs' times: central limit theorem, accurate at the > 2,000 runs where it is used).
    """
    n = len(times)
    n_solved = int(solved.sum())
    if n_solved == 0:
        return None
    # Distinct (time, solved) pairs: solved and unsolved values kept apart.
    solved_values, solved_counts = np.unique(times[solved], return_counts=True)
    unsolved_values, unsolved_counts = np.unique(times[~solved], return_counts=True)
    values = np.concatenate([solved_values, unsolved_values])
    is_solved = np.concatenate([np.ones(len(solved_values)), np.zeros(len(unsolved_values))])
    counts = resampled_counts(rng, np.concatenate([solved_counts, unsolved_counts]), CONFIGURATION_RESAMPLES)
    if counts is not None:
        spent = counts @ values
        successes = counts @ is_solved
        with np.errstate(divide="ignore", invalid="ignore"):
            replicates = np.where(successes > 0, spent / np.maximum(successes, 1), np.inf)
        low, high = percentile_interval(replicates)
        sample = np.concatenate([solved_counts, unsolved_counts])
        t_low, t_high = _log_ert_bootstrap_t(sample, counts, values, is_solved)
        low, high = min(low, t_low), max(high, t_high)
        if high > UNBOUNDED_RATIO * times.sum() / n_solved:
            high = math.inf  # a resample with almost no spread studentises to absurd bounds: say unbounded
        return [number(low), number(high)]
    else:
        successes = rng.binomial(n, n_solved / n, size=CONFIGURATION_RESAMPLES).astype(np.float64)
        solved_times, unsolved_times = times[solved], times[~solved]
        mean_solved, var_solved = solved_times.mean(), solved_times.var()
        mean_unsolved = unsolved_times.mean() if len(unsolved_times) else 0.0
        var_unsolved = unsolved_times.var() if len(unsolved_times) else 0.0
        failures = n - successes
        spent = rng.normal(
            successes * mean_solved + failures * mean_unsolved,
            np.sqrt(successes * var_solved + failures * var_unsolved),
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = np.where(successes > 0, spent / np.maximum(successes, 1), np.inf)
    low, high = percentile_interval(replicates)
    return [number(low), number(high)]



def _log_ert_and_standard_error(n: int, total: np.ndarray, successes: np.ndarray, squares: np.ndarray, cross: np.ndarray):
    """log ERT and its delta-method standard error from sums over n runs (arrays: one per sample):
    total spent S, successes k, sum of squared spent, sum of spent x solved. log ERT = log S - log k;
    var = n (var(spent) / S^2 + var(solved) / k^2 - 2 cov(spent, solved) / (S k))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        var_spent = (squares - total**2 / n) / (n - 1)
        var_solved = (successes - successes**2 / n) / (n - 1)
        covariance = (cross - total * successes / n) / (n - 1)
        variance = n * (var_spent / total**2 + var_solved / successes**2 - 2 * covariance / (total * successes))
        return np.log(total / successes), np.sqrt(np.maximum(variance, 0.0))


def _log_ert_bootstrap_t(sample: np.ndarray, counts: np.ndarray, values: np.ndarray, is_solved: np.ndarray) -> tuple[float, float]:
    """Studentised (bootstrap-t) 95% interval of ERT on the log scale (Efron & Tibshirani 1993, ch. 12):
    the resamples' t = (log ERT* - log ERT) / se* give the pivot's quantiles. `sample`: the runs'
    counts of each distinct (value, solved); `counts`: the resamples' (rows). Resamples without a
    success have no log ERT and are left out (the percentile interval's unbounded high end speaks for
    them); with one run, or no spread, the interval is empty (the hull keeps the percentile one)."""
    n = int(sample.sum())
    if n < 2:
        return math.inf, -math.inf

    def sums(weights: np.ndarray):
        return weights @ values, weights @ is_solved, weights @ values**2, weights @ (values * is_solved)

    estimate, standard_error = _log_ert_and_standard_error(n, *sums(sample.astype(np.float64)))
    replicate, replicate_error = _log_ert_and_standard_error(n, *sums(counts.astype(np.float64)))
    with np.errstate(divide="ignore", invalid="ignore"):
        pivots = (replicate - estimate) / replicate_error
    pivots = pivots[np.isfinite(pivots)]
    if not len(pivots) or not standard_error > 0:
        return math.inf, -math.inf
    low_pivot, high_pivot = percentile_interval(pivots)
    with np.errstate(over="ignore"):  # a resample with almost no spread has a huge pivot: unbounded, not an error
        return float(np.exp(estimate - high_pivot * standard_error)), float(np.exp(estimate - low_pivot * standard_error))
