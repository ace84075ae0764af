"""Ranking configurations, performance profiles across tasks, and the summary of verdicts.

- Performance profiles (Dolan & More 2002): fraction of tasks on which a method's ERT is within a
  factor tau of the best method's ERT on that task.
"""

from __future__ import annotations

import math

import numpy as np

from arena.verdict import words
from arena.verdict.comparisons import ALPHA, MIN_RUNS, adjust, decide, every_pair_unadjusted, holm, lens_record, separation_p
from arena.verdict.estimates import expected_running_time
from arena.verdict.table import LENSES, VERDICT_LENSES, RunTable, distinct

PROFILE_POINTS = 50  # tau grid size of a performance profile


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


def rank_leaderboard(entries: list[dict], runs: dict[tuple[str, str], list[dict] | RunTable] | None = None) -> list[dict]:
    """Rank configurations (configuration_stats dicts with "method" and "settings_hash").

    Order: configurations with at least `MIN_RUNS` distinct runs first ("too_few_runs" False), then
    success rate (highest first, None last), then ERT in evaluations (lowest first, None last), then
    method name and settings hash, so equal statistics always rank the same way. Returns new dicts with
    "rank" (1, 2, ...), "too_few_runs", "tied_with_previous" and "tie_group" (1, 2, ...); ties chain: a
    group is a run of entries each tied with the one above.

    With `runs` ({(method, settings hash): its runs}), an entry is tied with the one above unless a test
    separates them: Fisher's exact test on success, or the permutation rank test on evaluations among
    solved runs, each Holm-corrected across the leaderboard's adjacent pairs (one family per lens), at
    `ALPHA` (issue 17: "not tied" used to mean only that 95% intervals did not overlap). An entry with too
    few runs is tied with the one above (it cannot be told apart from anything). Without `runs`, the
    conservative interval rule: tied when both the Wilson and the ERT-evaluations intervals overlap.
    CPU seconds are shown by the caller but never used to rank or to break ties.
    """

    def key(entry: dict):
        rate = entry["success_rate"]
        ert = entry["ert_evaluations"]
        return (
            _too_few(entry),
            rate is None,
            -(rate or 0.0),
            ert is None,
            ert if ert is not None else 0.0,
            entry["method"],
            entry["settings_hash"],
        )

    ranked = [dict(entry) for entry in sorted(entries, key=key)]
    separated = _separated_by_tests(ranked, runs) if runs is not None else None
    tie_group = 0
    for position, entry in enumerate(ranked):
        above = ranked[position - 1] if position else None
        if above is None:
            tied = False
        elif separated is not None:
            tied = _too_few(entry) or not separated[position - 1]
        else:
            tied = _intervals_overlap(entry["success_rate_ci"], above["success_rate_ci"]) and _intervals_overlap(
                entry["ert_evaluations_ci"], above["ert_evaluations_ci"]
            )
        if not tied:
            tie_group += 1
        entry["rank"] = position + 1
        entry["too_few_runs"] = _too_few(entry)
        entry["tied_with_previous"] = tied
        entry["tie_group"] = tie_group
    return ranked


def _too_few(entry: dict) -> bool:
    return entry.get("runs", MIN_RUNS) < MIN_RUNS


def _separated_by_tests(ranked: list[dict], runs: dict) -> list[bool]:
    """For each adjacent pair (i, i + 1) of the ranking: does a Holm-corrected test tell them apart?"""
    tests = [
        separation_p(runs[(upper["method"], upper["settings_hash"])], runs[(lower["method"], lower["settings_hash"])])
        for upper, lower in zip(ranked, ranked[1:])
    ]
    reliability = holm([success_p for success_p, _ in tests])
    evaluations = holm([speed_p for _, speed_p in tests])
    return [(r is not None and r < ALPHA) or (e is not None and e < ALPHA) for r, e in zip(reliability, evaluations)]


def best_of_each_method(ranked: list[dict]) -> list[dict]:
    """The highest-ranked configuration of each method, in rank order: one with at least `MIN_RUNS` runs
    whenever the method has one (a configuration with too few runs never beats it to represent the
    method); a method with only such configurations is represented by its best, whose comparisons then
    read "too few runs" and decide nothing."""
    best: dict[str, dict] = {}
    for entry in ranked:
        if not entry["too_few_runs"]:
            best.setdefault(entry["method"], entry)
    for entry in ranked:
        best.setdefault(entry["method"], entry)
    return sorted(best.values(), key=lambda entry: entry["rank"])


def configurations_per_method(ranked: list[dict]) -> dict[str, int]:
    """{method: how many of its configurations could have represented it}: the number its best was
    selected from (`comparisons.compare_all`'s `selected_from`)."""
    counts: dict[str, int] = {}
    for entry in ranked:
        counts[entry["method"]] = counts.get(entry["method"], 0) + (not entry["too_few_runs"])
    return {method: max(count, 1) for method, count in counts.items()}


def _ert(runs: list[dict] | RunTable, lens: str) -> float | None:
    kept, _ = distinct(runs)
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


def summary(
    task_results: dict[str, dict[str, list[dict] | RunTable]],
    correct_across_tasks: bool = True,
    selected_from: dict[str, dict[str, int]] | None = None,
) -> dict:
    """Across tasks: {task: {method: runs (dicts or RunTable) of that method's best configuration on the
    task}} ->

    - "methods": {method: {lens: {"won", "lost", "undecided"}}} over the tasks the method ran on:
      won = its verdict beats every other method it can be compared with on the task (on a speed lens,
      every other method that solved at least once; a method alone on a task is undecided), lost =
      some other method beats it, else undecided; each decision is counted once: never solving is a
      reliability loss, not also a speed loss; lenses "reliability", "evaluations",
      "cpu_seconds";
    - "tasks": {task: {lens: the method that won the task, or None}};
    - "performance_profiles": {"evaluations"|"cpu_seconds": see `performance_profile`};
    - "comparisons": {task: [comparison, as `compare` gives]}.

    With `correct_across_tasks` (the default) all comparisons of all tasks are corrected together (one
    Holm family per `HOLM_FAMILIES` entry), since they are reported together and "tasks won" counts
    would otherwise collect false wins across tasks; a task's verdict here can then be more cautious
    than on its own. False: per task, exactly `compare_all` on each task. `selected_from`: {task:
    {method: configurations its best was chosen from}} (see `compare_all`).
    """
    selected_from = selected_from or {}
    comparisons_by_task = {task: every_pair_unadjusted(methods, selected_from.get(task)) for task, methods in task_results.items()}
    if correct_across_tasks:
        adjust([c for comparisons in comparisons_by_task.values() for c in comparisons])
    else:
        for comparisons in comparisons_by_task.values():
            adjust(comparisons)
    all_methods = sorted({method for methods in task_results.values() for method in methods})
    record = {m: {lens: {"won": 0, "lost": 0, "undecided": 0} for lens in VERDICT_LENSES} for m in all_methods}
    task_winners = {}
    for task, comparisons in comparisons_by_task.items():
        for comparison in comparisons:
            decide(comparison)
        present = sorted(task_results[task])
        task_winners[task] = {}
        for lens in VERDICT_LENSES:
            winner, _, lost = lens_record(comparisons, present, lens)
            task_winners[task][lens] = winner
            for method in present:
                outcome = "won" if method == winner else "lost" if lost[method] else "undecided"
                record[method][lens][outcome] += 1
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



def lens_verdicts(comparisons: list[dict], names: list[str]) -> dict[str, dict]:
    """Per lens, the comparisons' verdicts in one sentence: {lens: {"winner", "text"}}.

    winner: the one name that beats every other it can be compared with (`lens_record`), else None.
    text: that, then each pair's verdict.
    """
    result = {}
    for lens in VERDICT_LENSES:
        overall, _, _ = lens_record(comparisons, names, lens)
        result[lens] = {"winner": overall, "text": words.lens_text(comparisons, names, lens, overall)}
    return result
