"""Point estimates of one configuration, with their intervals (`configuration_stats`).

- Expected running time, ERT (Hansen, Auger, Finck, Ros 2009-2021, COCO "Real-parameter black-box
  optimization benchmarking: experimental setup"): total spent by all runs (a solved run counts what it
  spent until it solved, an unsolved run everything it spent) divided by the number of solved runs.
  It is the expected cost to solve when failed runs are restarted independently.
- Kaplan-Meier estimator (Kaplan & Meier 1958) of the proportion solved against evaluations / CPU
  seconds, with unsolved runs censored; quantiles with intervals read off the log-log pointwise band
  (Brookmeyer & Crowley 1982 style inversion, as R's survfit does). `scipy.stats.ecdf`.
- Interquartile mean, IQM (Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice",
  rliable): mean of the middle 50% of evaluations to solve, `scipy.stats.trim_mean(x, 0.25)`; only
  when every run solved (otherwise the unsolved runs' times are unknown).
"""

from __future__ import annotations

import warnings

import numpy as np

from arena.verdict.intervals import (
    CONFIDENCE,
    CONFIGURATION_RESAMPLES,
    NO_INTERVAL,
    SEED,
    Z,
    ert_interval,
    interval,
    percentile_interval,
    resampled_counts,
    wilson_interval,
)
from arena.verdict.table import RunTable, distinct

CURVE_POINTS = 200  # at most this many points in a Kaplan-Meier curve


def expected_running_time(times: np.ndarray, solved: np.ndarray) -> float | None:
    """COCO's ERT (Hansen et al.): total spent by all runs / number solved; None when none solved.

    `times` holds what each run spent until it solved (solved runs) or in total (unsolved runs).
    """
    n_solved = int(solved.sum())
    return float(times.sum() / n_solved) if n_solved else None



def interquartile_mean(values: np.ndarray) -> float:
    """IQM (Agarwal et al. 2021, rliable): mean of the middle 50%, scipy.stats.trim_mean(x, 0.25).

    As in rliable, int(0.25 n) values are cut from each end.
    """
    from scipy import stats

    return float(stats.trim_mean(values, 0.25))


def iqm_with_interval(values: np.ndarray, rng: np.random.Generator) -> dict:
    """IQM with a bootstrap 95% interval.

    Each resample's IQM is computed from its counts of distinct sorted values (how many of each value
    fall inside the kept ranks), so no resample is sorted. Beyond the exact bootstrap's size, the
    interval is estimate +- 1.96 Tukey-McLaughlin standard errors (winsorized standard deviation,
    scipy.stats.mstats.trimmed_stde), the normal limit of the trimmed mean.
    """
    estimate = interquartile_mean(values)
    distinct, value_counts = np.unique(values, return_counts=True)
    counts = resampled_counts(rng, value_counts, CONFIGURATION_RESAMPLES)
    if counts is None:
        from scipy.stats import mstats

        standard_error = float(mstats.trimmed_stde(values, limits=(0.25, 0.25)))
        return interval(estimate, estimate - Z * standard_error, estimate + Z * standard_error)
    low, high = percentile_interval(interquartile_means_from_counts(distinct, counts))
    return interval(estimate, low, high)


def interquartile_means_from_counts(distinct: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """IQM of samples given as counts (last axis) of sorted distinct values, as trim_mean(x, 0.25) on
    the expanded samples: how many of each value fall inside the kept ranks [cut, n - cut)."""
    n = int(counts.sum(axis=-1).flat[0])
    cut = int(0.25 * n)
    ranks_end = np.cumsum(counts, axis=-1)  # each value occupies ranks [end - count, end)
    ranks_start = ranks_end - counts
    kept = np.clip(np.minimum(ranks_end, n - cut) - np.maximum(ranks_start, cut), 0, None)
    return (kept @ distinct) / (n - 2 * cut)


def _empty_kaplan_meier() -> dict:
    return {
        "median": dict(NO_INTERVAL),
        "q1": dict(NO_INTERVAL),
        "q3": dict(NO_INTERVAL),
        "curve": [],
        "n": 0,
        "events": 0,
    }


def kaplan_meier(times: np.ndarray, solved: np.ndarray) -> dict:
    """Kaplan-Meier estimate of the proportion solved against time (evaluations or CPU seconds).

    Unsolved runs are right-censored at what they spent. Returns:
    - "median", "q1", "q3": each {estimate, low, high}; the p-quantile is the smallest time at which
      the estimated proportion solved reaches p (None when it never does, e.g. the median when fewer
      than half solved within the budget). Its 95% interval inverts the pointwise log-log band: low is
      when the band's upper edge reaches p, high when its lower edge does (None if it never does).
    - "curve": [{"x", "solved"}] step points (proportion solved from x on) at each time a run solved,
      plus the longest time observed; evenly thinned to at most `CURVE_POINTS`, keeping the last.
    - "n" runs and "events" (runs that solved).
    """
    n = len(times)
    if n == 0:
        return _empty_kaplan_meier()
    from scipy import stats

    events = int(solved.sum())
    data = stats.CensoredData(uncensored=times[solved], right=times[~solved])
    result = stats.ecdf(data)
    x = result.cdf.quantiles
    proportion = result.cdf.probabilities
    survival = result.sf.probabilities
    with warnings.catch_warnings():
        # The log-log band is undefined where survival is 0 or 1; those points are set below.
        warnings.simplefilter("ignore", RuntimeWarning)
        band = result.sf.confidence_interval(confidence_level=CONFIDENCE, method="log-log")
    # Where nothing has solved yet the band is the point (1); where everything has, 0; any other
    # undefined point gets the widest band.
    survival_low = np.nan_to_num(band.low.probabilities, nan=0.0)
    survival_high = np.nan_to_num(band.high.probabilities, nan=1.0)
    survival_low = np.where(survival >= 1, 1.0, np.where(survival <= 0, 0.0, survival_low))
    survival_high = np.where(survival >= 1, 1.0, np.where(survival <= 0, 0.0, survival_high))
    proportion_low, proportion_high = 1 - survival_high, 1 - survival_low

    def first_reaching(curve: np.ndarray, p: float) -> float | None:
        reached = np.flatnonzero(curve >= p - 1e-12)  # tolerance: products of fractions land on 0.5 +- ulp
        return float(x[reached[0]]) if len(reached) else None

    def quantile(p: float) -> dict:
        # The earliest time the band's upper edge reaches p bounds the quantile from below, and so on.
        return interval(
            first_reaching(proportion, p), first_reaching(proportion_high, p), first_reaching(proportion_low, p)
        )

    return {
        "median": quantile(0.5),
        "q1": quantile(0.25),
        "q3": quantile(0.75),
        "curve": _kaplan_meier_curve(times[solved], x, proportion, float(times.max())),
        "n": n,
        "events": events,
    }


def _kaplan_meier_curve(event_times: np.ndarray, x: np.ndarray, proportion: np.ndarray, longest: float) -> list[dict]:
    """Step points at the event times (where the proportion solved changes) and at the longest time."""
    at_events = np.isin(x, event_times)
    points_x, points_y = x[at_events], proportion[at_events]
    if len(points_x) == 0 or points_x[-1] < longest:
        points_x = np.append(points_x, longest)
        points_y = np.append(points_y, points_y[-1] if len(points_y) else 0.0)
    if len(points_x) > CURVE_POINTS:
        keep = np.unique(np.round(np.linspace(0, len(points_x) - 1, CURVE_POINTS)).astype(int))
        points_x, points_y = points_x[keep], points_y[keep]
    return [{"x": float(a), "solved": float(b)} for a, b in zip(points_x, points_y)]


def configuration_stats(runs: list[dict] | RunTable) -> dict:
    """Statistics of the runs of ONE configuration (any status), over distinct succeeded runs.

    `runs`: run dicts, or the same runs as a `RunTable` (what the service passes: no dict per run);
    both give the same result.

    Fields:
    - "runs" (distinct succeeded runs), "failed", "cancelled", "duplicates", "solved";
    - "success_rate" and "success_rate_ci" ([low, high], Wilson 95%; None without runs);
    - "ert_evaluations", "ert_seconds" (ERT on CPU seconds; None when nothing solved) and
      "ert_evaluations_ci", "ert_seconds_ci" ([low, high] bootstrap 95%, high None = unbounded; None
      when nothing solved);
    - "kaplan_meier": {"evaluations": km, "cpu_seconds": km}, see `kaplan_meier`;
    - "iqm_evaluations": {estimate, low, high} IQM of evaluations to solve with a bootstrap 95%
      interval, only when every run solved (else None);
    - "wall_seconds": {"median", "q1", "q3"} of the runs' wall seconds, for information only (machine
      load makes it noisy: nothing is ranked or decided on it). None without runs.
    """
    kept, duplicates = distinct(runs)
    n = len(kept)
    rng = np.random.default_rng(SEED)
    by_lens = kept.times_to_solve()
    evaluations, solved = by_lens["evaluations"]
    cpu_seconds, _ = by_lens["cpu_seconds"]
    n_solved = int(solved.sum())
    wall_quartiles = np.percentile(kept.seconds, [25, 50, 75]) if n else None
    return {
        "runs": n,
        "failed": kept.failed,
        "cancelled": kept.cancelled,
        "duplicates": duplicates,
        "solved": n_solved,
        "success_rate": n_solved / n if n else None,
        "success_rate_ci": wilson_interval(n_solved, n),
        "ert_evaluations": expected_running_time(evaluations, solved),
        "ert_evaluations_ci": ert_interval(evaluations, solved, rng),
        "ert_seconds": expected_running_time(cpu_seconds, solved),
        "ert_seconds_ci": ert_interval(cpu_seconds, solved, rng),
        "kaplan_meier": {
            "evaluations": kaplan_meier(evaluations, solved),
            "cpu_seconds": kaplan_meier(cpu_seconds, solved),
        },
        "iqm_evaluations": iqm_with_interval(evaluations, rng) if n and n_solved == n else None,
        "wall_seconds": (
            {"median": float(wall_quartiles[1]), "q1": float(wall_quartiles[0]), "q3": float(wall_quartiles[2])}
            if n
            else None
        ),
    }
