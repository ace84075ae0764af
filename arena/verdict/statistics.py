"""The verdict: which method is better on a task, and how sure we are (numpy, scipy and statsmodels only).

A *run* is one method x task x configuration x seed, given as a plain dict (see `distinct_runs`) or, on
the service's hot path, as columns of a `RunTable` (numpy arrays: no Python object per run; every
function taking runs takes either, with the same result). Only runs that finished normally (status
"succeeded") are evidence; failed and cancelled runs are counted, never treated as unsolved. A repeated
(configuration, seed) is deterministic in evaluations, so it is counted once and reported as a duplicate.

Every statistic is about *time to solve*, looked at through one of two lenses:

- "evaluations": `evaluations_to_solve` of a solved run; an unsolved run is right-censored at the
  `evaluations` it spent (it would have needed more than that, we do not know how many more).
- "cpu_seconds": the same on the run's thread CPU time (`cpu_seconds_to_solve`, censored at
  `cpu_seconds`), because machine load inflates wall time. Old runs without CPU time fall back, run by
  run, to wall `seconds_to_solve` / `seconds`. Wall seconds are reported for information only.

Statistics and references:

- Success rate with the Wilson score interval (Wilson 1927): honest at 0/n and n/n.
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
- Probability of improvement (Vargha & Delaney 2000, A12; rliable): P(a random run of A needs less than
  a random run of B), over all pairs, ties counted half; an unsolved run is worse than any solved one
  and two unsolved runs tie.
- Log-rank test (Mantel 1966; `scipy.stats.logrank`) on time to solve, censoring-aware.
- Fisher's exact test on the 2x2 success table, and Newcombe's (1998, method 10) hybrid score interval
  for the difference of success rates (`statsmodels` "newcomb").
- Holm's (1979) step-down correction across all p-values reported together, in two families (see
  `HOLM_FAMILIES`): the reproducible lenses (reliability, evaluations) and CPU seconds.
- Performance profiles (Dolan & More 2002): fraction of tasks on which a method's ERT is within a
  factor tau of the best method's ERT on that task.

Bootstraps are percentile intervals from a fixed-seed generator, so the same runs always give the same
answer, capped at `CONFIGURATION_RESAMPLES` (ERT, IQM) and `COMPARISON_RESAMPLES` (probability of
improvement) resamples and vectorised. A resample is held as counts of the sample's distinct values
(`_resampled_counts`): drawn run by run while resamples x runs <= `MAX_BOOTSTRAP_CELLS` (up to 2,000
runs for a configuration, 1,000 per side for a comparison), else from the multinomial over distinct
values when there are few (e.g. evaluations in whole generations). Larger samples with many distinct
values (tens of thousands of runs) use the normal limit of the same bootstrap instead, each described
where it is used: ERT draws the number of successes exactly and the total spent from its normal
approximation; IQM uses the Tukey-McLaughlin standard error; A12 uses DeLong's placement variance. The
tests check each approximation against the exact bootstrap on the same data.

scipy and statsmodels are imported inside the functions that need them: they take about a second to
import, which the API should not pay at start-up.
"""

from __future__ import annotations

import collections
import itertools
import math
import warnings

import numpy as np

CONFIDENCE = 0.95
ALPHA = 0.05  # a verdict needs a Holm-adjusted p-value below this
# Holm families: the p-values of the lenses in one family are corrected together (across every comparison
# reported together). Reliability and evaluations depend only on the seeds, so they reproduce exactly;
# CPU seconds depend on the machine and its load. In one family, CPU noise would move the reproducible
# lenses' adjusted p-values (a p-value's Holm multiplier depends on its rank among all of them) and
# could turn a reproducible verdict into "no detectable difference" on one run and not the next. Each
# family controls the family-wise error rate at ALPHA.
HOLM_FAMILIES = (("reliability", "evaluations"), ("cpu_seconds",))
LENSES = ("evaluations", "cpu_seconds")  # time-to-solve lenses
VERDICT_LENSES = ("reliability",) + LENSES

CONFIGURATION_RESAMPLES = 1000  # bootstrap resamples for ERT and IQM intervals
COMPARISON_RESAMPLES = 2000  # bootstrap resamples for the probability of improvement
# Largest resampled-count matrix (resamples x distinct values) built; beyond it a normal approximation
# is used. 2e6 cells keep a bootstrap at a few tens of milliseconds and ~16 MB.
MAX_BOOTSTRAP_CELLS = 2_000_000
# Drawing counts of distinct values with a multinomial costs ~20x more per cell than drawing run
# indices, so that path gets a proportionally smaller share of the cell budget.
MULTINOMIAL_COST = 20
SEED = 20_240_801  # fixed: the same runs give the same intervals
CURVE_POINTS = 200  # at most this many points in a Kaplan-Meier curve
PROFILE_POINTS = 50  # tau grid size of a performance profile

_Z = 1.959963984540054  # standard normal quantile at 97.5%


# ---------------------------------------------------------------------------------------------------
# Small helpers


def _number(value) -> float | None:
    """A plain float for JSON, or None for missing, NaN and infinite values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _interval(estimate, low, high) -> dict:
    return {"estimate": _number(estimate), "low": _number(low), "high": _number(high)}


_NO_INTERVAL = {"estimate": None, "low": None, "high": None}


def _percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval. Order statistics rounded outwards (never interpolated), so an
    infinite replicate (a resample without a success) gives an infinite end rather than NaN."""
    tail = (1 - confidence) / 2
    low = np.quantile(replicates, tail, method="lower")
    high = np.quantile(replicates, 1 - tail, method="higher")
    return float(low), float(high)


def _resampled_counts(rng: np.random.Generator, counts: np.ndarray, n_resamples: int) -> np.ndarray | None:
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


def _format_p(p: float | None) -> str:
    if p is None:
        return "p unavailable"
    return "p<0.001" if p < 0.001 else f"p={p:.3g}"


# ---------------------------------------------------------------------------------------------------
# Runs


def distinct_runs(runs: list[dict]) -> tuple[list[dict], int]:
    """The succeeded runs, one per (settings_hash, seed), and the number of duplicates dropped.

    A run is deterministic in evaluations given its configuration and seed, so a repeated
    (configuration, seed) adds no evidence: the lowest id is kept. Failed and cancelled runs are never
    kept (they are not evidence) and never count as duplicates. Kept runs are sorted by id, so that
    every statistic (bootstraps included) is independent of the order the runs came in.

    The reference on dicts; the statistics use `RunTable.distinct`, its columnar twin (the tests check
    that both keep the same runs).
    """
    first_by_key: dict[tuple[str, int], dict] = {}
    duplicates = 0
    for run in runs:
        if run["status"] != "succeeded":
            continue
        key = (run["settings_hash"], run["seed"])
        kept = first_by_key.get(key)
        if kept is None:
            first_by_key[key] = run
            continue
        duplicates += 1
        if run["id"] < kept["id"]:
            first_by_key[key] = run
    return sorted(first_by_key.values(), key=lambda r: r["id"]), duplicates


def _times_to_solve(runs: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{lens: (times, solved)}: a solved run's time to solve, an unsolved run's total spent.

    A solved run missing its *_to_solve falls back to its total (runs stop on solving, so they agree);
    missing CPU times fall back to wall seconds, run by run (old runs did not record CPU time). The
    reference on dicts; the statistics use `RunTable.times_to_solve` (checked equal in the tests).
    """
    evaluations, cpu_seconds, solved = [], [], []
    for run in runs:
        cpu_total = run.get("cpu_seconds")
        if cpu_total is None:
            cpu_total = run["seconds"]
        if run["solved"]:
            to_solve = run["evaluations_to_solve"]
            cpu_to_solve = run.get("cpu_seconds_to_solve")
            if cpu_to_solve is None:
                cpu_to_solve = run["seconds_to_solve"]
            evaluations.append(run["evaluations"] if to_solve is None else to_solve)
            cpu_seconds.append(cpu_total if cpu_to_solve is None else cpu_to_solve)
            solved.append(True)
        else:
            evaluations.append(run["evaluations"])
            cpu_seconds.append(cpu_total)
            solved.append(False)
    solved_array = np.array(solved, dtype=bool)
    return {
        "evaluations": (np.array(evaluations, dtype=np.float64), solved_array),
        "cpu_seconds": (np.array(cpu_seconds, dtype=np.float64), solved_array),
    }


class RunTable:
    """Runs as columns: one numpy array per field, one element per run (the hot path's representation).

    Every statistic reads these arrays; a list of run dicts is converted once (`from_dicts`), and the
    service builds tables straight from database rows (`from_rows`), so 50,000 runs never become 50,000
    Python dicts. Fields (missing values are NaN in the float columns):

    - `id`, `seed` (int64); `key` (int64): the configuration (settings hash) as a code, so that a
      repeated (key, seed) is a duplicate; `succeeded` (bool): status "succeeded", the only evidence;
    - `solved` (bool), `evaluations`, `seconds`, `cpu_seconds`, `evaluations_to_solve`,
      `seconds_to_solve`, `cpu_seconds_to_solve` (float64);
    - `failed`, `cancelled`: how many runs of those statuses the table stands for (counted, not kept).
    """

    NUMBERS = ("evaluations", "seconds", "cpu_seconds", "evaluations_to_solve", "seconds_to_solve", "cpu_seconds_to_solve")
    # The columns of `from_rows`, in order.
    ROW_FIELDS = ("id", "seed", "solved") + NUMBERS
    __slots__ = ("id", "seed", "key", "succeeded", "solved", *NUMBERS, "failed", "cancelled")

    def __init__(self, *, id, seed, key, succeeded, solved, failed: int = 0, cancelled: int = 0, **numbers):
        self.id = np.asarray(id, dtype=np.int64)
        self.seed = np.asarray(seed, dtype=np.int64)
        self.key = np.asarray(key, dtype=np.int64)
        self.succeeded = np.asarray(succeeded, dtype=bool)
        self.solved = np.asarray(solved, dtype=bool)
        for name in self.NUMBERS:
            setattr(self, name, np.asarray(numbers[name], dtype=np.float64))
        self.failed, self.cancelled = int(failed), int(cancelled)

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_dicts(cls, runs: list[dict]) -> RunTable:
        """Runs of any status as dicts (the fields of `distinct_runs`); settings hashes become codes in
        first-seen order."""
        codes: dict = {}
        statuses = collections.Counter(run["status"] for run in runs)

        def column(name: str) -> list:
            return [run.get(name) for run in runs]

        return cls(
            id=column("id"),
            seed=column("seed"),
            key=[codes.setdefault(run["settings_hash"], len(codes)) for run in runs],
            succeeded=[run["status"] == "succeeded" for run in runs],
            solved=[bool(run["solved"]) for run in runs],
            failed=statuses["failed"],
            cancelled=statuses["cancelled"],
            **{name: _floats(column(name)) for name in cls.NUMBERS},
        )

    @classmethod
    def from_rows(cls, rows: list[tuple], key=0, failed: int = 0, cancelled: int = 0) -> RunTable:
        """Succeeded runs as database rows (tuples of `ROW_FIELDS`, None where missing), all of one
        configuration unless `key` gives a code per row; `failed` and `cancelled` are counts."""
        n = len(rows)
        if n == 0:
            matrix = np.empty((0, len(cls.ROW_FIELDS)))
        else:
            # One conversion for the whole block: None -> NaN, booleans -> 0/1 (ids and seeds are
            # 32-bit integers in the schema, exact in float64).
            matrix = np.array(rows, dtype=np.float64)
        columns = dict(zip(cls.ROW_FIELDS, matrix.T))
        return cls(
            id=columns["id"].astype(np.int64),
            seed=columns["seed"].astype(np.int64),
            key=np.broadcast_to(np.asarray(key, dtype=np.int64), (n,)),
            succeeded=np.ones(n, dtype=bool),
            solved=columns["solved"] == 1,
            failed=failed,
            cancelled=cancelled,
            **{name: columns[name] for name in cls.NUMBERS},
        )

    def take(self, index: np.ndarray, failed: int = 0, cancelled: int = 0) -> RunTable:
        """The runs at `index` (an index array or boolean mask), with the given counts."""
        return RunTable(
            id=self.id[index], seed=self.seed[index], key=self.key[index], succeeded=self.succeeded[index],
            solved=self.solved[index], failed=failed, cancelled=cancelled,
            **{name: getattr(self, name)[index] for name in self.NUMBERS},
        )  # fmt: skip

    def distinct(self) -> tuple[RunTable, int]:
        """`distinct_runs` on columns: the succeeded runs, one per (key, seed) keeping the lowest id,
        sorted by id, and the number of duplicates dropped (failed and cancelled runs are neither)."""
        candidates = np.flatnonzero(self.succeeded)
        # Sorted by key, then seed, then id (lexsort: last key is primary): each group's first is kept.
        order = candidates[np.lexsort((self.id[candidates], self.seed[candidates], self.key[candidates]))]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (self.key[order[1:]] != self.key[order[:-1]]) | (self.seed[order[1:]] != self.seed[order[:-1]])
        kept = order[first]
        kept = kept[np.argsort(self.id[kept], kind="stable")]
        return self.take(kept, self.failed, self.cancelled), len(order) - len(kept)

    def times_to_solve(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """`_times_to_solve` on columns (same rules, same values)."""
        solved = self.solved
        evaluations = np.where(solved & ~np.isnan(self.evaluations_to_solve), self.evaluations_to_solve, self.evaluations)
        cpu_total = np.where(np.isnan(self.cpu_seconds), self.seconds, self.cpu_seconds)
        cpu_to_solve = np.where(np.isnan(self.cpu_seconds_to_solve), self.seconds_to_solve, self.cpu_seconds_to_solve)
        cpu_seconds = np.where(solved & ~np.isnan(cpu_to_solve), cpu_to_solve, cpu_total)
        return {"evaluations": (evaluations, solved.copy()), "cpu_seconds": (cpu_seconds, solved.copy())}


def _floats(values: list) -> np.ndarray:
    """float64 with None as NaN."""
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def as_table(runs: list[dict] | RunTable) -> RunTable:
    """The runs as a `RunTable` (converted once when given as dicts)."""
    return runs if isinstance(runs, RunTable) else RunTable.from_dicts(runs)


def _distinct(runs: list[dict] | RunTable) -> tuple[RunTable, int]:
    return as_table(runs).distinct()


# ---------------------------------------------------------------------------------------------------
# One configuration


def wilson_interval(successes: int, runs: int, confidence: float = CONFIDENCE) -> list[float] | None:
    """Wilson (1927) score interval of a success rate, [low, high]; None without runs."""
    if runs == 0:
        return None
    from scipy import stats

    interval = stats.binomtest(successes, runs).proportion_ci(confidence_level=confidence, method="wilson")
    return [float(interval.low), float(interval.high)]


def expected_running_time(times: np.ndarray, solved: np.ndarray) -> float | None:
    """COCO's ERT (Hansen et al.): total spent by all runs / number solved; None when none solved.

    `times` holds what each run spent until it solved (solved runs) or in total (unsolved runs).
    """
    n_solved = int(solved.sum())
    return float(times.sum() / n_solved) if n_solved else None


def _ert_interval(times: np.ndarray, solved: np.ndarray, rng: np.random.Generator) -> list[float | None] | None:
    """Bootstrap 95% interval of ERT, [low, high]; None when nothing solved.

    A resample without a success has an infinite ERT: a high end of None means unbounded. Runs are
    resampled whole (time and outcome together). When the sample is too large for an exact bootstrap
    (`_resampled_counts`), the number of successes in a resample is still drawn exactly (binomial) and
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
    counts = _resampled_counts(rng, np.concatenate([solved_counts, unsolved_counts]), CONFIGURATION_RESAMPLES)
    if counts is not None:
        spent = counts @ values
        successes = counts @ is_solved
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
    low, high = _percentile_interval(replicates)
    return [_number(low), _number(high)]


def interquartile_mean(values: np.ndarray) -> float:
    """IQM (Agarwal et al. 2021, rliable): mean of the middle 50%, scipy.stats.trim_mean(x, 0.25).

    As in rliable, int(0.25 n) values are cut from each end.
    """
    from scipy import stats

    return float(stats.trim_mean(values, 0.25))


def _iqm_with_interval(values: np.ndarray, rng: np.random.Generator) -> dict:
    """IQM with a bootstrap 95% interval.

    Each resample's IQM is computed from its counts of distinct sorted values (how many of each value
    fall inside the kept ranks), so no resample is sorted. Beyond the exact bootstrap's size, the
    interval is estimate +- 1.96 Tukey-McLaughlin standard errors (winsorized standard deviation,
    scipy.stats.mstats.trimmed_stde), the normal limit of the trimmed mean.
    """
    estimate = interquartile_mean(values)
    distinct, value_counts = np.unique(values, return_counts=True)
    counts = _resampled_counts(rng, value_counts, CONFIGURATION_RESAMPLES)
    if counts is None:
        from scipy.stats import mstats

        standard_error = float(mstats.trimmed_stde(values, limits=(0.25, 0.25)))
        return _interval(estimate, estimate - _Z * standard_error, estimate + _Z * standard_error)
    low, high = _percentile_interval(_interquartile_means_from_counts(distinct, counts))
    return _interval(estimate, low, high)


def _interquartile_means_from_counts(distinct: np.ndarray, counts: np.ndarray) -> np.ndarray:
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
        "median": dict(_NO_INTERVAL),
        "q1": dict(_NO_INTERVAL),
        "q3": dict(_NO_INTERVAL),
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
        return _interval(
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
    kept, duplicates = _distinct(runs)
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
        "ert_evaluations_ci": _ert_interval(evaluations, solved, rng),
        "ert_seconds": expected_running_time(cpu_seconds, solved),
        "ert_seconds_ci": _ert_interval(cpu_seconds, solved, rng),
        "kaplan_meier": {
            "evaluations": kaplan_meier(evaluations, solved),
            "cpu_seconds": kaplan_meier(cpu_seconds, solved),
        },
        "iqm_evaluations": _iqm_with_interval(evaluations, rng) if n and n_solved == n else None,
        "wall_seconds": (
            {"median": float(wall_quartiles[1]), "q1": float(wall_quartiles[0]), "q3": float(wall_quartiles[2])}
            if n
            else None
        ),
    }


# ---------------------------------------------------------------------------------------------------
# Two configurations


def _probability_of_improvement(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> dict:
    """A12 of times to solve (lower is better, unsolved = +inf) with a bootstrap 95% interval.

    Both groups are resampled independently (the methods share no random numbers, so pairing by seed
    adds noise, not power). A resample's A12 needs no sorting: with the distinct values of B sorted and
    its resampled counts accumulated, the number of B-values above / equal to each distinct A-value is a
    lookup. Beyond the exact bootstrap's size the interval is estimate +- 1.96 standard errors from the
    placement values of DeLong, DeLong & Clarke-Pearson (1988), the normal limit of A12.
    """
    a_values, a_counts = np.unique(a, return_counts=True)
    b_values, b_counts = np.unique(b, return_counts=True)
    n_a, n_b = len(a), len(b)
    # For each distinct A-value: index range of equal B-values in the sorted distinct B-values.
    equal_start = np.searchsorted(b_values, a_values, side="left")
    equal_end = np.searchsorted(b_values, a_values, side="right")

    def wins(a_count: np.ndarray, b_count: np.ndarray) -> np.ndarray:
        """Pairs won by A (ties half) for count vectors (last axis = distinct values)."""
        cumulative = np.concatenate([np.zeros(b_count.shape[:-1] + (1,)), np.cumsum(b_count, axis=-1)], axis=-1)
        below_end, below_start = cumulative[..., equal_end], cumulative[..., equal_start]
        b_greater = n_b - below_end
        b_equal = below_end - below_start
        return np.sum(a_count * (b_greater + 0.5 * b_equal), axis=-1)

    estimate = float(wins(a_counts, b_counts)) / (n_a * n_b)
    resampled_a = _resampled_counts(rng, a_counts, COMPARISON_RESAMPLES)
    resampled_b = _resampled_counts(rng, b_counts, COMPARISON_RESAMPLES)
    if resampled_a is not None and resampled_b is not None:
        low, high = _percentile_interval(wins(resampled_a, resampled_b) / (n_a * n_b))
        return _interval(estimate, low, high)
    # DeLong placements: how much each run of A beats B, and each run of B is beaten by A.
    a_sorted, b_sorted = np.sort(a), np.sort(b)
    b_below_or_equal, b_below = np.searchsorted(b_sorted, a, "right"), np.searchsorted(b_sorted, a, "left")
    a_below_or_equal, a_below = np.searchsorted(a_sorted, b, "right"), np.searchsorted(a_sorted, b, "left")
    a_placement = (n_b - b_below_or_equal + 0.5 * (b_below_or_equal - b_below)) / n_b
    b_placement = (a_below + 0.5 * (a_below_or_equal - a_below)) / n_a
    variance = (a_placement.var(ddof=1) if n_a > 1 else 0.0) / n_a + (b_placement.var(ddof=1) if n_b > 1 else 0.0) / n_b
    half_width = _Z * math.sqrt(variance)
    return _interval(estimate, max(0.0, estimate - half_width), min(1.0, estimate + half_width))


def probability_of_improvement(a_runs: list[dict] | RunTable, b_runs: list[dict] | RunTable, lens: str) -> dict:
    """P(a random run of A beats a random run of B) on time to solve: Vargha & Delaney's (2000) A12.

    All pairs of distinct succeeded runs; the run that solved with less (evaluations or CPU seconds,
    per `lens`) wins; an unsolved run is worse than any solved one; two unsolved runs tie (comparing what
    they spent would reward a smaller budget); ties count half. 0.5 = no difference, 1 = A always
    better. Returns {estimate, low, high} with a seeded bootstrap 95% interval (all None when a group
    has no runs).
    """
    a_kept, _ = _distinct(a_runs)
    b_kept, _ = _distinct(b_runs)
    if not len(a_kept) or not len(b_kept):
        return dict(_NO_INTERVAL)
    if lens not in LENSES:
        raise ValueError(f"unknown lens {lens!r}: expected one of {LENSES}")
    a_times = _unsolved_last(*a_kept.times_to_solve()[lens])
    b_times = _unsolved_last(*b_kept.times_to_solve()[lens])
    return _probability_of_improvement(a_times, b_times, np.random.default_rng(SEED))


def _unsolved_last(times: np.ndarray, solved: np.ndarray) -> np.ndarray:
    """Times to solve with unsolved runs at +inf: worse than any solved run, tied with each other."""
    return np.where(solved, times, np.inf)


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
    return _number(result.pvalue)


def _success_difference(a_solved: int, a_n: int, b_solved: int, b_n: int) -> dict:
    """Difference of success rates A - B with Newcombe's (1998) hybrid score interval."""
    if a_n == 0 or b_n == 0:
        return dict(_NO_INTERVAL)
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        a_solved, a_n, b_solved, b_n, method="newcomb", compare="diff", alpha=1 - CONFIDENCE
    )
    return _interval(a_solved / a_n - b_solved / b_n, low, high)


def _compare_unadjusted(a_runs: list[dict] | RunTable, b_runs: list[dict] | RunTable, names: tuple[str, str]) -> dict:
    """Everything in a comparison except the Holm-adjusted p-values and the verdict."""
    first, second = names
    if first == second:
        raise ValueError(f"two configurations need two names, got {names!r}")
    a_kept, _ = _distinct(a_runs)
    b_kept, _ = _distinct(b_runs)
    a_by_lens, b_by_lens = a_kept.times_to_solve(), b_kept.times_to_solve()
    a_solved = int(a_by_lens["evaluations"][1].sum())
    b_solved = int(b_by_lens["evaluations"][1].sum())
    rng = np.random.default_rng(SEED)
    improvement, logrank_p = {}, {}
    for lens in LENSES:
        a_lens, b_lens = a_by_lens[lens], b_by_lens[lens]
        if len(a_kept) and len(b_kept):
            improvement[lens] = _probability_of_improvement(_unsolved_last(*a_lens), _unsolved_last(*b_lens), rng)
        else:
            improvement[lens] = dict(_NO_INTERVAL)
        logrank_p[lens] = _logrank_p(a_lens, b_lens)
    from scipy import stats

    success_table = [[a_solved, len(a_kept) - a_solved], [b_solved, len(b_kept) - b_solved]]
    success_p = float(stats.fisher_exact(success_table).pvalue)
    return {
        "first": first,
        "second": second,
        "n": {first: len(a_kept), second: len(b_kept)},
        "solved": {first: a_solved, second: b_solved},
        "probability_of_improvement": improvement,
        "logrank_p": logrank_p,
        "success_p": _number(success_p),
        "success_difference": _success_difference(a_solved, len(a_kept), b_solved, len(b_kept)),
    }


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


def _adjust(comparisons: list[dict]) -> None:
    """Holm across the p-values of every comparison given, one family per `HOLM_FAMILIES` entry (all
    comparisons' p-values of those lenses together), stored as *_adjusted."""
    for comparison in comparisons:
        comparison["logrank_p_adjusted"] = {}
    for family in HOLM_FAMILIES:
        slots = [(c, lens) for lens in family for c in comparisons]
        raw = [c["success_p"] if lens == "reliability" else c["logrank_p"][lens] for c, lens in slots]
        for (comparison, lens), p in zip(slots, holm(raw)):
            if lens == "reliability":
                comparison["success_p_adjusted"] = p
            else:
                comparison["logrank_p_adjusted"][lens] = p


_LENS_WORDS = {"evaluations": "needs fewer evaluations", "cpu_seconds": "needs less CPU time"}


def _decide(comparison: dict) -> None:
    """The verdict per lens, from the adjusted p-values at `ALPHA`.

    - reliability: success_p_adjusted < ALPHA -> the higher success rate wins;
    - evaluations, cpu_seconds: logrank_p_adjusted < ALPHA and the probability-of-improvement interval
      excludes 0.5 -> the side it favours wins (both must agree: the log-rank test can detect curves
      that cross, which no side wins);
    - otherwise, or with no runs on a side: "no detectable difference", with the n available.
    """
    first, second = comparison["first"], comparison["second"]
    n, solved = comparison["n"], comparison["solved"]
    undecided = f"no detectable difference (n={n[first]} vs {n[second]})"
    both_have_runs = n[first] > 0 and n[second] > 0
    verdict = {}

    p = comparison["success_p_adjusted"]
    winner = None
    if both_have_runs and p is not None and p < ALPHA:
        rate = {name: solved[name] / n[name] for name in (first, second)}
        if rate[first] != rate[second]:
            winner = first if rate[first] > rate[second] else second
    if winner is None:
        verdict["reliability"] = {"winner": None, "text": undecided, "p": p}
    else:
        loser = second if winner == first else first
        text = f"{winner} more reliable ({solved[winner]}/{n[winner]} vs {solved[loser]}/{n[loser]}, {_format_p(p)})"
        verdict["reliability"] = {"winner": winner, "text": text, "p": p}

    for lens in LENSES:
        p = comparison["logrank_p_adjusted"][lens]
        improvement = comparison["probability_of_improvement"][lens]
        low, high = improvement["low"], improvement["high"]
        winner = None
        if both_have_runs and p is not None and p < ALPHA and low is not None and high is not None:
            if low > 0.5:
                winner = first
            elif high < 0.5:
                winner = second
        if winner is None:
            verdict[lens] = {"winner": None, "text": undecided, "p": p}
            continue
        # Probability of improvement stated from the winner's side.
        if winner == first:
            estimate = improvement["estimate"]
        else:
            estimate, low, high = 1 - improvement["estimate"], 1 - high, 1 - low
        text = (
            f"{winner} {_LENS_WORDS[lens]} (probability of improvement {estimate:.2f} "
            f"[{low:.2f}, {high:.2f}], {_format_p(p)})"
        )
        verdict[lens] = {"winner": winner, "text": text, "p": p}
    comparison["verdict"] = verdict


def compare(a_runs: list[dict] | RunTable, b_runs: list[dict] | RunTable, names: tuple[str, str] = ("a", "b")) -> dict:
    """Two configurations head to head (runs of any status, as dicts or `RunTable`s; distinct succeeded
    runs are used).

    Returns {"first", "second", "n": {name: n}, "solved": {name: solved},
    "probability_of_improvement": {lens: {estimate, low, high}} (first beating second),
    "logrank_p": {lens: p or None}, "logrank_p_adjusted": {lens: p or None},
    "success_p", "success_p_adjusted" (Fisher's exact, two-sided),
    "success_difference": {estimate, low, high} (rate first - rate second, Newcombe 95%),
    "verdict": {"reliability"|"evaluations"|"cpu_seconds": {"winner": name or None, "text", "p"}}}.
    Its p-values are Holm-corrected per `HOLM_FAMILIES` (success and evaluations together, CPU seconds
    alone); `compare_all` makes the families span several comparisons.
    See `_decide` for the decision rules.
    """
    comparison = _compare_unadjusted(a_runs, b_runs, names)
    _adjust([comparison])
    _decide(comparison)
    return comparison


def _every_pair_unadjusted(groups: dict[str, list[dict] | RunTable]) -> list[dict]:
    return [_compare_unadjusted(groups[a], groups[b], (a, b)) for a, b in itertools.combinations(sorted(groups), 2)]


def compare_all(groups: dict[str, list[dict] | RunTable]) -> list[dict]:
    """Every pair of groups ({name: runs or RunTable}) compared, in sorted name order, as `compare` does, with
    Holm's correction across ALL p-values reported together, per `HOLM_FAMILIES` (every pair's
    success_p and evaluations logrank_p in one family, every pair's CPU-seconds logrank_p in another)."""
    comparisons = _every_pair_unadjusted(groups)
    _adjust(comparisons)
    for comparison in comparisons:
        _decide(comparison)
    return comparisons


# ---------------------------------------------------------------------------------------------------
# Leaderboard and summary


def _intervals_overlap(first: list | None, second: list | None) -> bool:
    """Whether two [low, high] intervals overlap; None (unknown) overlaps everything, None ends are
    unbounded."""
    if first is None or second is None:
        return True
    low_1 = -math.inf if first[0] is None else first[0]
    high_1 = math.inf if first[1] is None else first[1]
    low_2 = -math.inf if second[0] is None else second[0]
    high_2 = math.inf if second[1] is None else second[1]
    return low_1 <= high_2 and low_2 <= high_1


def rank_leaderboard(entries: list[dict]) -> list[dict]:
    """Rank configurations (configuration_stats dicts with "method" and "settings_hash").

    Order: success rate (highest first, None last), then ERT in evaluations (lowest first, None last),
    then method name and settings hash, so equal statistics always rank the same way. Returns new dicts
    with "rank" (1, 2, ...), "tied_with_previous" and "tie_group" (1, 2, ...): an entry is tied with the
    one above when both their Wilson intervals and their ERT-evaluations bootstrap intervals overlap
    (None intervals overlap everything). Ties chain: a group is a run of entries each tied with the one
    above. Overlap of 95% intervals is a conservative "cannot tell apart", not a test. CPU seconds are
    shown by the caller but never used to rank or to break ties: they are noisy under machine load.
    """

    def key(entry: dict):
        rate = entry["success_rate"]
        ert = entry["ert_evaluations"]
        return (
            rate is None,
            -(rate or 0.0),
            ert is None,
            ert if ert is not None else 0.0,
            entry["method"],
            entry["settings_hash"],
        )

    ranked = [dict(entry) for entry in sorted(entries, key=key)]
    tie_group = 0
    for position, entry in enumerate(ranked):
        above = ranked[position - 1] if position else None
        tied = above is not None and (
            _intervals_overlap(entry["success_rate_ci"], above["success_rate_ci"])
            and _intervals_overlap(entry["ert_evaluations_ci"], above["ert_evaluations_ci"])
        )
        if not tied:
            tie_group += 1
        entry["rank"] = position + 1
        entry["tied_with_previous"] = tied
        entry["tie_group"] = tie_group
    return ranked


def _ert(runs: list[dict] | RunTable, lens: str) -> float | None:
    kept, _ = _distinct(runs)
    return expected_running_time(*kept.times_to_solve()[lens])


def performance_profile(ert_by_task: dict[str, dict[str, float | None]], methods: list[str]) -> dict:
    """Dolan & More (2002) performance profile of ERTs: {"tau": [...], method: [fraction, ...]}.

    On each task the ratio of a method's ERT to the best ERT on that task (1 for the best); a method
    without ERT on a task (never solved, or not run) has an infinite ratio, never within tau. The
    fraction is over all tasks. tau is log-spaced from 1 to 1.1 x the largest finite ratio.
    """
    ratios = np.full((len(ert_by_task), len(methods)), np.inf)
    for row, erts in enumerate(ert_by_task.values()):
        finite = [value for value in erts.values() if value is not None]
        if not finite:
            continue
        best = min(finite)
        for column, method in enumerate(methods):
            value = erts.get(method)
            if value is not None:
                ratios[row, column] = value / best if best > 0 else (1.0 if value == best else np.inf)
    finite_ratios = ratios[np.isfinite(ratios)]
    largest = float(finite_ratios.max()) if finite_ratios.size else 1.0
    tau = np.geomspace(1.0, max(largest, 1.0) * 1.1, PROFILE_POINTS)
    profile: dict[str, list[float]] = {"tau": [float(t) for t in tau]}
    n_tasks = max(len(ert_by_task), 1)
    for column, method in enumerate(methods):
        within = (ratios[:, column][None, :] <= tau[:, None]).sum(axis=1) / n_tasks
        profile[method] = [float(f) for f in within]
    return profile


def summary(task_results: dict[str, dict[str, list[dict] | RunTable]], correct_across_tasks: bool = True) -> dict:
    """Across tasks: {task: {method: runs (dicts or RunTable) of that method's best configuration on the
    task}} ->

    - "methods": {method: {lens: {"won", "lost", "undecided"}}} over the tasks the method ran on:
      won = its verdict beats every other method on the task (a method alone on a task is undecided),
      lost = some other method beats it, else undecided; lenses "reliability", "evaluations",
      "cpu_seconds";
    - "tasks": {task: {lens: the method that won the task, or None}};
    - "performance_profiles": {"evaluations"|"cpu_seconds": see `performance_profile`};
    - "comparisons": {task: [comparison, as `compare` gives]}.

    With `correct_across_tasks` (the default) all comparisons of all tasks are corrected together (one
    Holm family per `HOLM_FAMILIES` entry), since they are reported together and "tasks won" counts
    would otherwise collect false wins across tasks; a task's verdict here can then be more cautious
    than on its own. False: per task, exactly `compare_all` on each task.
    """
    comparisons_by_task = {task: _every_pair_unadjusted(methods) for task, methods in task_results.items()}
    if correct_across_tasks:
        _adjust([c for comparisons in comparisons_by_task.values() for c in comparisons])
    else:
        for comparisons in comparisons_by_task.values():
            _adjust(comparisons)
    all_methods = sorted({method for methods in task_results.values() for method in methods})
    record = {m: {lens: {"won": 0, "lost": 0, "undecided": 0} for lens in VERDICT_LENSES} for m in all_methods}
    task_winners = {}
    for task, comparisons in comparisons_by_task.items():
        for comparison in comparisons:
            _decide(comparison)
        present = sorted(task_results[task])
        task_winners[task] = {}
        for lens in VERDICT_LENSES:
            pairs_won = dict.fromkeys(present, 0)
            pairs_lost = dict.fromkeys(present, 0)
            for comparison in comparisons:
                winner = comparison["verdict"][lens]["winner"]
                if winner is not None:
                    pairs_won[winner] += 1
                    pairs_lost[comparison["second"] if winner == comparison["first"] else comparison["first"]] += 1
            task_winners[task][lens] = None
            for method in present:
                if len(present) > 1 and pairs_won[method] == len(present) - 1:
                    record[method][lens]["won"] += 1
                    task_winners[task][lens] = method
                elif pairs_lost[method]:
                    record[method][lens]["lost"] += 1
                else:
                    record[method][lens]["undecided"] += 1
    ert_by_lens = {
        lens: {task: {m: _ert(runs, lens) for m, runs in methods.items()} for task, methods in task_results.items()}
        for lens in LENSES
    }
    return {
        "methods": record,
        "tasks": task_winners,
        "performance_profiles": {lens: performance_profile(ert_by_lens[lens], all_methods) for lens in LENSES},
        "comparisons": comparisons_by_task,
    }


if __name__ == "__main__":  # timing check: python -m arena.verdict.statistics
    import time

    def synthetic_runs(n: int, method: str, settings_hash: str, solve_probability: float, scale: float, seed: int):
        generator = np.random.default_rng(seed)
        need = generator.exponential(scale, n)
        budget = 3 * scale
        runs = []
        for i in range(n):
            solved = bool(generator.random() < solve_probability and need[i] < budget)
            evaluations = int(need[i]) if solved else int(budget)
            cpu = evaluations / 1e4 * (1 + 0.1 * generator.random())
            runs.append(
                {
                    "id": seed * 1_000_000 + i, "method": method, "algorithm": method, "settings_hash": settings_hash,
                    "seed": i, "status": "succeeded", "solved": solved, "score": 1.0, "evaluations": evaluations,
                    "seconds": cpu * 1.5, "cpu_seconds": cpu, "evaluations_to_solve": evaluations if solved else None,
                    "seconds_to_solve": cpu * 1.5 if solved else None, "cpu_seconds_to_solve": cpu if solved else None,
                }
            )
        return runs

    def timed(label: str, function, *args):
        function(*args)  # warm: imports
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{label}: {1000 * wall:.1f} ms wall, {1000 * cpu:.1f} ms CPU")
        return result

    big_ga = synthetic_runs(50_000, "ga", "h1", 0.8, 10_000, 1)
    big_backprop = synthetic_runs(50_000, "backprop", "h2", 0.9, 8_000, 2)
    timed("configuration_stats, 50,000 run dicts", configuration_stats, big_ga)
    big_ga_table, big_backprop_table = RunTable.from_dicts(big_ga), RunTable.from_dicts(big_backprop)
    timed("configuration_stats, 50,000 runs as a RunTable", configuration_stats, big_ga_table)
    timed("compare, 50,000 vs 50,000 run dicts", compare, big_ga, big_backprop, ("ga", "backprop"))
    timed("compare, 50,000 vs 50,000 runs as RunTables", compare, big_ga_table, big_backprop_table, ("ga", "backprop"))
    configs = [synthetic_runs(30, f"m{i % 3}", f"h{i}", 0.7 + 0.01 * i, 1000 * (1 + i % 5), i) for i in range(20)]
    entries = [{"method": c[0]["method"], "settings_hash": c[0]["settings_hash"], **configuration_stats(c)} for c in configs]
    timed("configuration_stats x 20 (30 runs each)", lambda: [configuration_stats(c) for c in configs])
    timed("rank_leaderboard, 20 configurations", rank_leaderboard, entries)
    tasks = {
        f"task{t}": {
            method: synthetic_runs(30, method, f"{method}{t}", 0.8, 1000 * (1 + t % 3), 100 * t + k)
            for k, method in enumerate(("backprop", "ga", "cmaes"))
        }
        for t in range(19)
    }
    timed("summary, 19 tasks x 3 methods x 30 runs", summary, tasks)
