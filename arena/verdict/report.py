"""The service's side of the verdict: runs as the database gives them -> leaderboard, job comparison and
summary responses. Every statistic is computed in the `arena.verdict` library (numpy, scipy, statsmodels:
no torch); this module only groups runs, picks configurations and assembles the bodies.

A configuration is one (method, settings hash): the same task, architecture, settings and budget, over
any number of seeds. Runs are plain dicts with the columns in `queries.STAT_COLUMNS`, or, on the
leaderboard's hot path, already grouped by configuration as columns: {(method, settings hash):
RunTable} (`queries.task_run_tables`). Both give the same responses.
"""

from __future__ import annotations

from arena.methods import label as method_label
from arena.verdict.comparisons import compare_all
from arena.verdict.estimates import configuration_stats
from arena.verdict.rank import best_of_each_method, configurations_per_method, lens_verdicts, rank_leaderboard
from arena.verdict.rank import summary as summary_across_tasks
from arena.verdict.table import VERDICT_LENSES, RunTable, as_table, unrepeatable

Runs = list[dict] | RunTable

LENS_NAMES = {"reliability": "reliability", "evaluations": "evaluations", "cpu_seconds": "CPU seconds"}


def group_configurations(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """{(method, settings hash): its runs}, in first-seen order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["method"], run["settings_hash"]), []).append(run)
    return groups


def _algorithm(runs: list[dict]) -> str | None:
    return next((run["algorithm"] for run in runs if run.get("algorithm")), None)


def ranked_configurations(groups: dict[tuple[str, str], Runs], algorithms: dict[str, str | None] | None = None) -> list[dict]:
    """configuration_stats of every configuration with at least one run that finished normally, ranked
    by rank_leaderboard (enough runs first, success rate, then ERT in evaluations; tied unless a test separates).

    `algorithms`: {settings hash: algorithm}, needed for RunTables (which hold numbers only); run dicts
    carry their own. The algorithm is part of the spec, so a settings hash has one."""
    entries, kept = [], {}
    for (method, digest), runs in groups.items():
        stats = configuration_stats(runs)
        if not stats["runs"]:
            continue  # only failed or cancelled runs: nothing to rank
        algorithm = algorithms.get(digest) if algorithms is not None else _algorithm(runs)
        entries.append({"method": method, "algorithm": algorithm, "label": method_label(method, algorithm), "settings_hash": digest, **stats})
        kept[(method, digest)] = runs
    return rank_leaderboard(entries, kept)


def head_to_head(runs_by_name: dict[str, Runs], selected_from: dict[str, int] | None = None) -> dict:
    """compare_all (one Holm family per lens) over {name: runs}, and the verdict per lens in words.
    `selected_from`: {name: configurations its runs were chosen from} (see `compare_all`)."""
    comparisons = compare_all(runs_by_name, selected_from) if len(runs_by_name) > 1 else []
    return {"comparisons": comparisons, "verdict": lens_verdicts(comparisons, sorted(runs_by_name))}


def leaderboard(runs: list[dict] | dict[tuple[str, str], RunTable], configurations: dict[str, dict]) -> tuple[dict, dict[str, dict]]:
    """A task's leaderboard from its finished runs: run dicts, or {(method, settings hash): RunTable}
    (`queries.task_run_tables`, the columnar hot path; its algorithms are read from the specs).

    Returns (the response body without task fields, {method: {"label", "settings_hash", "runs"}} of
    each method's best configuration: what the summary compares). `configurations` maps a settings hash
    to its RunSpec dict (architecture, settings, budget, options).
    """
    if isinstance(runs, dict):
        groups = runs
        algorithms = {digest: (configurations.get(digest) or {}).get("algorithm") for _, digest in groups}
    else:
        groups = group_configurations(runs)
        algorithms = {digest: _algorithm(group) for (_, digest), group in groups.items()}
    groups = {key: _as_evidence(group, configurations.get(key[1])) for key, group in groups.items()}
    ranked = ranked_configurations(groups, algorithms)
    for entry in ranked:
        spec = configurations.get(entry["settings_hash"]) or {}
        entry.update(architecture=spec.get("architecture"), settings=spec.get("settings"), budget=spec.get("budget"), task_options=spec.get("task_options") or {})
    chosen_from = configurations_per_method(ranked)
    best = {
        entry["method"]: {
            "label": entry["label"], "settings_hash": entry["settings_hash"], "rank": entry["rank"],
            "runs": groups[(entry["method"], entry["settings_hash"])], "selected_from": chosen_from[entry["method"]],
        }
        for entry in best_of_each_method(ranked)
    }  # fmt: skip
    versus = head_to_head({b["label"]: b["runs"] for b in best.values()}, {b["label"]: b["selected_from"] for b in best.values()})
    body = {
        "entries": ranked,
        "duplicates": sum(entry["duplicates"] for entry in ranked),
        "best": {method: {k: b[k] for k in ("label", "settings_hash", "rank")} for method, b in best.items()},
        **versus,
    }
    return body, best


def comparison(runs: list[dict]) -> dict:
    """A job's methods side by side (one configuration each) and head to head, one Holm family."""
    by_method: dict[str, list[dict]] = {}
    for run in runs:
        by_method.setdefault(run["method"], []).append(run)
    methods, by_label = {}, {}
    for method, mine in by_method.items():
        algorithm = _algorithm(mine)
        name = method_label(method, algorithm)
        by_label[name] = mine
        methods[name] = {"method": method, "algorithm": algorithm, "label": name, "settings_hash": mine[0]["settings_hash"], **configuration_stats(mine)}
    return {"methods": methods, "duplicates": sum(m["duplicates"] for m in methods.values()), **head_to_head(by_label)}


def best_runs(runs: list[dict]) -> dict[str, dict]:
    """{method: {"label", "settings_hash", "runs"}} of each method's best-ranked configuration among `runs`."""
    groups = group_configurations(runs)
    ranked = ranked_configurations(groups)
    chosen_from = configurations_per_method(ranked)
    return {
        entry["method"]: {
            "label": entry["label"], "settings_hash": entry["settings_hash"],
            "runs": groups[(entry["method"], entry["settings_hash"])], "selected_from": chosen_from[entry["method"]],
        }
        for entry in best_of_each_method(ranked)
    }  # fmt: skip


def summary(best_by_task: dict[str, dict[str, dict]]) -> dict:
    """rank.summary over {task: {method: {"label", "settings_hash", "runs"}}} (each method's best
    configuration on each task), with one Holm family across all tasks, plus per task what a verdict
    table shows: labels, n per method and each lens's verdict in words."""
    task_results = {task: {method: best["runs"] for method, best in methods.items()} for task, methods in best_by_task.items() if methods}
    selected_from = {task: {method: best.get("selected_from", 1) for method, best in methods.items()} for task, methods in best_by_task.items() if methods}
    result = summary_across_tasks(task_results, selected_from=selected_from)
    tasks = {}
    for task, methods in best_by_task.items():
        if not methods:
            continue
        labels = {method: best["label"] for method, best in methods.items()}
        comparisons = result["comparisons"][task]
        # rank.summary names methods; say them with their labels ("backprop (ppo)") in words.
        for comparison in comparisons:
            comparison["labels"] = {name: labels[name] for name in (comparison["first"], comparison["second"])}
        counts = {method: as_table(best["runs"]).distinct()[0] for method, best in methods.items()}
        words = lens_verdicts(comparisons, sorted(methods))
        tasks[task] = {
            "labels": labels,
            "settings_hash": {method: best["settings_hash"] for method, best in methods.items()},
            "n": {method: len(kept) for method, kept in counts.items()},
            "solved": {method: int(kept.solved.sum()) for method, kept in counts.items()},
            "winner": result["tasks"][task],
            "verdict": {lens: {**words[lens], "winner": result["tasks"][task][lens]} for lens in VERDICT_LENSES},
        }
    return {
        "methods": result["methods"],
        "tasks": tasks,
        "performance_profiles": result["performance_profiles"],
        "comparisons": result["comparisons"],
        "corrected_across_tasks": True,
    }


def _as_evidence(runs: Runs, spec: dict | None) -> Runs:
    """Runs under a seconds budget are not reproducible (how far a run gets in a second depends on the
    machine's load), so two runs of the same (configuration, seed) are two pieces of evidence, never
    duplicates (issue 17: a repeated 1 s sine job's runs were dropped as duplicates)."""
    budget = (spec or {}).get("budget") or {}
    return unrepeatable(runs) if budget.get("seconds") is not None else runs
