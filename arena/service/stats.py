"""Leaderboard and head-to-head comparison statistics (numpy and scipy only: this runs in the API).

A configuration is one (method, settings hash): the same task, architecture, settings and budget,
over any number of seeds. Only runs that finished normally (succeeded) count; failed and cancelled
runs are reported as counts, never as unsolved results.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95


def success_interval(successes: int, runs: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of a success rate: honest at 0/n and n/n, where the normal one collapses."""
    if runs == 0:
        return None
    from scipy import stats as scipy_stats  # about a second to import: not at API start

    interval = scipy_stats.binomtest(successes, runs).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def spread(values: list[float]) -> dict | None:
    """Median and interquartile range (linear interpolation between order statistics)."""
    if not values:
        return None
    q1, median, q3 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return spread_from_quartiles(q1, median, q3, len(values))


def spread_from_quartiles(q1: float, median: float, q3: float, n: int) -> dict:
    """The same shape as `spread`, from quartiles computed elsewhere (the database)."""
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1), "n": int(n)}


def summarize(runs: list[dict]) -> dict:
    """Aggregate the finished runs of one configuration (dicts with the run-contract fields and status)."""
    done = [r for r in runs if r["status"] == "succeeded"]
    solved = [r for r in done if r["solved"]]
    scores = [r["score"] for r in done if r["score"] is not None and np.isfinite(r["score"])]
    return {
        "runs": len(done),
        "failed": sum(r["status"] == "failed" for r in runs),
        "cancelled": sum(r["status"] == "cancelled" for r in runs),
        "solved": len(solved),
        # Over solved runs only: an unsolved run has no time to solve.
        "evaluations_to_solve": spread([r["evaluations_to_solve"] for r in solved if r["evaluations_to_solve"] is not None]),
        "seconds_to_solve": spread([r["seconds_to_solve"] for r in solved if r["seconds_to_solve"] is not None]),
        "median_score": float(np.median(scores)) if scores else None,
        "median_evaluations": float(np.median([r["evaluations"] for r in done])) if done else None,
        "median_seconds": float(np.median([r["seconds"] for r in done])) if done else None,
    }


def summarize_groups(runs: list[dict]) -> list[dict]:
    """Runs -> one summary per (method, settings hash): what queries.leaderboard_groups returns."""
    members: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        members.setdefault((run["method"], run["settings_hash"]), []).append(run)
    return [{"method": m, "settings_hash": h, **summarize(group)} for (m, h), group in members.items()]


def with_success_rate(summary: dict) -> dict:
    """Add the success rate and its 95% Wilson interval to a summary (or a database group)."""
    runs, solved = summary["runs"], summary["solved"]
    return {**summary, "success_rate": solved / runs if runs else None, "success_rate_ci": success_interval(solved, runs)}


def _rank_key(entry: dict, higher_is_better: bool):
    """Most reliable first, then fastest to solve (median seconds, as the issue and README specify), then best score."""
    rate = entry["success_rate"] if entry["success_rate"] is not None else -1.0
    to_solve = entry["seconds_to_solve"]["median"] if entry["seconds_to_solve"] else float("inf")
    score = entry["median_score"]
    score_key = float("inf") if score is None else (-score if higher_is_better else score)
    return (-rate, to_solve, score_key)


def leaderboard(groups: list[dict], higher_is_better: bool, configurations: dict[str, dict] | None = None) -> list[dict]:
    """One entry per (method, configuration) with finished runs, ranked.

    `groups` come from queries.leaderboard_groups (the output of `summarize` plus method and settings
    hash), `configurations` ({settings hash: RunSpec dict}) from queries.configurations.
    """
    entries = []
    for group in groups:
        if not group["runs"]:
            continue  # only failed or cancelled runs: nothing to rank
        spec = (configurations or {}).get(group["settings_hash"], {})
        entries.append(
            {
                **with_success_rate(group),
                "architecture": spec.get("architecture"),
                "settings": spec.get("settings"),
                "budget": spec.get("budget"),
                "task_options": spec.get("task_options") or {},
            }
        )
    entries.sort(key=lambda e: _rank_key(e, higher_is_better))
    for rank, entry in enumerate(entries, 1):
        entry["rank"] = rank
    return entries


def _better(a: dict, b: dict, by: str, higher_is_better: bool) -> int:
    """+1 if run a beat run b on the same seed, -1 if b won, 0 for a tie.

    Solving beats not solving; between two solved runs the one that needed less (`by`: evaluations or
    seconds) wins; between two unsolved runs the better final score wins.
    """
    if a["solved"] != b["solved"]:
        return 1 if a["solved"] else -1
    if a["solved"]:
        x, y = a[f"{by}_to_solve"], b[f"{by}_to_solve"]
        return (x < y) - (x > y)
    x, y = a["score"], b["score"]
    if higher_is_better:
        return (x > y) - (x < y)
    return (x < y) - (x > y)


def comparison(runs: list[dict], higher_is_better: bool) -> dict:
    """A job's methods side by side, and head to head on the seeds both finished."""
    methods: dict[str, list[dict]] = {}
    for run in runs:
        methods.setdefault(run["method"], []).append(run)
    result = {"methods": {m: with_success_rate(summarize(rs)) for m, rs in methods.items()}, "head_to_head": []}
    names = sorted(methods)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            a_by_seed = {r["seed"]: r for r in methods[first] if r["status"] == "succeeded"}
            b_by_seed = {r["seed"]: r for r in methods[second] if r["status"] == "succeeded"}
            seeds = sorted(set(a_by_seed) & set(b_by_seed))
            pair = {"first": first, "second": second, "seeds": len(seeds)}
            for by in ("evaluations", "seconds"):
                outcomes = [_better(a_by_seed[s], b_by_seed[s], by, higher_is_better) for s in seeds]
                wins, losses = outcomes.count(1), outcomes.count(-1)
                ties = len(outcomes) - wins - losses
                pair[f"by_{by}"] = {
                    f"{first}_wins": wins,
                    f"{second}_wins": losses,
                    "ties": ties,
                    # Probability that the first method beats the second on a random seed (ties count half).
                    f"p_{first}_better": (wins + ties / 2) / len(outcomes) if outcomes else None,
                }
            result["head_to_head"].append(pair)
    return result
