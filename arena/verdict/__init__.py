"""The statistics of a verdict, as a library with no I/O: runs in, estimates, intervals, comparisons and
words out (split the way rliable splits point estimates, intervals and comparisons).

Modules, each importing only those above it:

- `table`: runs as evidence (`RunTable`, `distinct_runs`), times to solve per lens;
- `intervals`: bootstrap machinery, Wilson, ERT intervals;
- `estimates`: success rate, ERT, IQM, Kaplan-Meier, `configuration_stats`;
- `significance`: the exact tests and effect sizes a decision rests on (permutation rank test, A12 with
  Newcombe's interval, Fisher), chosen by simulation (tests/test_verdict_calibration.py);
- `words`: the verdict in words;
- `comparisons`: comparisons, Holm per lens, the minimum n, the decisions (`compare`, `compare_all`);
- `rank`: ranking a leaderboard (ties from tests), performance profiles, the summary across tasks;
- `sequential`: seeds until the answer is clear (continue / stop, alpha spent across looks);
- `report`: the leaderboard, comparison and summary bodies the API serves.

The public names are re-exported here: `from arena import verdict; verdict.compare(a_runs, b_runs)`.
"""

from arena.verdict.table import LENSES, VERDICT_LENSES, RunTable, as_table, distinct, distinct_runs
from arena.verdict.intervals import CONFIDENCE, SEED, wilson_interval
from arena.verdict.estimates import CURVE_POINTS, configuration_stats, expected_running_time, interquartile_mean, kaplan_meier
from arena.verdict.comparisons import ALPHA, HOLM_FAMILIES, MIN_RUNS, compare, compare_all, holm, probability_of_improvement
from arena.verdict.rank import PROFILE_POINTS, performance_profile, rank_leaderboard, summary

__all__ = [
    "ALPHA", "CONFIDENCE", "CURVE_POINTS", "HOLM_FAMILIES", "LENSES", "MIN_RUNS", "PROFILE_POINTS", "SEED", "VERDICT_LENSES",
    "RunTable", "as_table", "compare", "compare_all", "configuration_stats", "distinct", "distinct_runs",
    "expected_running_time", "holm", "interquartile_mean", "kaplan_meier", "performance_profile",
    "probability_of_improvement", "rank_leaderboard", "summary", "wilson_interval",
]  # fmt: skip
