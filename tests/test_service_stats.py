"""Leaderboard and comparison statistics on known data: the aggregation alone, and over the API."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from arena.runspec import resolve
from arena.service import queries, stats
from arena.service.db import session_scope
from arena.service.tables import utcnow


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The textbook Wilson score interval, written out, to check scipy's."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def run(method, digest, seed, solved, score, to_solve=None, status="succeeded"):
    return {
        "method": method, "settings_hash": digest, "status": status, "seed": seed, "score": score, "solved": solved,
        "evaluations_to_solve": to_solve, "seconds_to_solve": to_solve / 100 if to_solve else None,
        "evaluations": to_solve or 1000, "seconds": (to_solve or 1000) / 100,
    }


# Lower score is better (an MSE). Expected ranking: ga-b (2/2 solved), backprop-a (3/4), backprop-c (0/3).
KNOWN = [
    run("backprop", "a", 0, True, 0.01, 100),
    run("backprop", "a", 1, True, 0.02, 200),
    run("backprop", "a", 2, True, 0.03, 300),
    run("backprop", "a", 3, False, 0.40),
    run("backprop", "a", 4, None, None, status="failed"),
    run("ga", "b", 0, True, 0.05, 1000),
    run("ga", "b", 1, True, 0.04, 3000),
    run("backprop", "c", 0, False, 0.30),
    run("backprop", "c", 1, False, 0.20),
    run("backprop", "c", 2, False, 0.25, status="cancelled"),
]


def test_equal_success_rates_rank_by_median_seconds_to_solve():
    # "fast" needs more evaluations but fewer seconds than "frugal": seconds decide, as specified.
    fast = [{**run("ga", "fast", seed, True, 0.01, 5000), "seconds_to_solve": 0.5} for seed in range(2)]
    frugal = [{**run("backprop", "frugal", seed, True, 0.01, 500), "seconds_to_solve": 2.0} for seed in range(2)]
    board = stats.leaderboard(stats.summarize_groups(frugal + fast), higher_is_better=False)
    assert [e["settings_hash"] for e in board] == ["fast", "frugal"]


def test_leaderboard_on_known_data():
    specs = {digest: {"architecture": {"hidden_sizes": [4]}, "settings": {"id": digest}, "budget": {}} for digest in "abc"}
    board = stats.leaderboard(stats.summarize_groups(KNOWN), higher_is_better=False, configurations=specs)
    assert [(e["rank"], e["method"], e["settings_hash"]) for e in board] == [(1, "ga", "b"), (2, "backprop", "a"), (3, "backprop", "c")]
    assert [e["settings"]["id"] for e in board] == ["b", "a", "c"]
    a = board[1]
    assert (a["runs"], a["solved"], a["failed"], a["cancelled"]) == (4, 3, 1, 0)
    assert a["success_rate"] == 0.75
    assert a["success_rate_ci"] == pytest.approx(wilson(3, 4))
    assert a["evaluations_to_solve"] == {"median": 200.0, "q1": 150.0, "q3": 250.0, "iqr": 100.0, "n": 3}
    assert a["seconds_to_solve"]["median"] == pytest.approx(2.0)
    assert a["median_score"] == pytest.approx(0.025)  # over the 4 runs that finished normally
    c = board[2]
    assert (c["runs"], c["solved"], c["cancelled"], c["success_rate"]) == (2, 0, 1, 0.0)
    assert c["evaluations_to_solve"] is None and c["success_rate_ci"] == pytest.approx(wilson(0, 2))
    assert board[0]["success_rate_ci"][1] == pytest.approx(1.0)


def test_ties_on_success_rate_go_to_the_fewest_evaluations_then_the_best_score():
    runs = [run("ga", "slow", 0, True, 0.01, 5000), run("backprop", "fast", 0, True, 0.09, 50)]
    assert [e["settings_hash"] for e in stats.leaderboard(stats.summarize_groups(runs), higher_is_better=False)] == ["fast", "slow"]
    unsolved = [run("ga", "x", 0, False, 0.5), run("ga", "y", 0, False, 0.2)]
    assert [e["settings_hash"] for e in stats.leaderboard(stats.summarize_groups(unsolved), higher_is_better=False)] == ["y", "x"]
    assert [e["settings_hash"] for e in stats.leaderboard(stats.summarize_groups(unsolved), higher_is_better=True)] == ["x", "y"]


def test_head_to_head_by_seed():
    runs = [
        run("backprop", "a", 0, True, 0.01, 100), run("ga", "b", 0, True, 0.01, 900),  # backprop fewer evaluations
        run("backprop", "a", 1, False, 0.30), run("ga", "b", 1, True, 0.02, 2000),  # only ga solved
        run("backprop", "a", 2, False, 0.10), run("ga", "b", 2, False, 0.20),  # neither: lower MSE wins
        run("backprop", "a", 3, True, 0.01, 100), run("ga", "b", 3, None, None, status="failed"),  # not a pair
    ]
    result = stats.comparison(runs, higher_is_better=False)
    assert result["methods"]["backprop"]["runs"] == 4 and result["methods"]["ga"]["failed"] == 1
    (pair,) = result["head_to_head"]
    assert pair["seeds"] == 3
    assert pair["by_evaluations"] == {"backprop_wins": 2, "ga_wins": 1, "ties": 0, "p_backprop_better": pytest.approx(2 / 3)}


def test_leaderboard_over_the_api(service):
    """Known results written through the same queries a worker uses, read back over HTTP."""
    task = "or"
    plan = {  # method -> (settings, [(solved, score, evaluations_to_solve)])
        "backprop": ({"learning_rate": 0.05}, [(True, 0.01, 400), (True, 0.02, 800), (False, 0.3, None)]),
        "ga": ({"population_size": 20}, [(True, 0.05, 2000), (True, 0.04, 1000), (True, 0.03, 3000)]),
    }
    specs = {m: resolve(task, m, {"evaluations": 10_000}, settings).to_dict() for m, (settings, _) in plan.items()}
    with session_scope(service.database_url) as session:
        job = queries.create_job(session, task, [0, 1, 2], specs, {"note": "known data"})
        job_id, runs = job.id, [(r.id, r.method, r.seed) for r in job.runs]
    for run_id, method, seed in runs:
        solved, score, to_solve = plan[method][1][seed]
        result = {
            "score": score, "solved": solved, "evaluations_to_solve": to_solve, "seconds_to_solve": to_solve / 1000 if to_solve else None,
            "evaluations": to_solve or 10_000, "seconds": 1.0, "stopped": "solved" if solved else "budget", "metrics": {},
            "extra_parameters": 0, "curve": [], "weights": [0.0] * 17,
        }
        with session_scope(service.database_url) as session:
            claim = queries.claim_run(session, run_id, "test", utcnow(), 3)
            assert queries.record_result(session, run_id, claim.attempt, "succeeded", result=result)

    board = service.client.get("/leaderboard", params={"task": task}).json()
    assert board["score_name"] == "mse" and board["higher_is_better"] is False
    ga, backprop = board["entries"][:2]
    assert (ga["method"], ga["success_rate"], ga["solved"], ga["runs"]) == ("ga", 1.0, 3, 3)
    assert ga["evaluations_to_solve"]["median"] == 2000 and ga["evaluations_to_solve"]["iqr"] == 1000
    assert ga["settings"]["population_size"] == 20
    assert backprop["success_rate"] == pytest.approx(2 / 3)
    assert backprop["success_rate_ci"] == pytest.approx(wilson(2, 3))
    assert backprop["evaluations_to_solve"]["median"] == 600 and backprop["median_score"] == pytest.approx(0.02)

    # The API caches a leaderboard until a run of its task finishes: one more finished run shows at once.
    with session_scope(service.database_url) as session:
        extra = queries.create_job(session, task, [9], {"ga": specs["ga"]}, {"note": "one more"}).runs[0].id
    with session_scope(service.database_url) as session:
        claim = queries.claim_run(session, extra, "test", utcnow(), 3)
        queries.record_result(session, extra, claim.attempt, "succeeded", result={"score": 0.5, "solved": False, "evaluations": 10_000, "seconds": 1.0})
    again = service.client.get("/leaderboard", params={"task": task}).json()
    ga_again = next(e for e in again["entries"] if e["method"] == "ga")
    assert (ga_again["runs"], ga_again["solved"]) == (4, 3)

    comparison = service.client.get(f"/jobs/{job_id}/comparison").json()
    assert comparison["status"] == "succeeded"
    # seed 0: backprop 400 < 2000; seed 1: backprop 800 < 1000; seed 2: only ga solved.
    assert comparison["head_to_head"][0]["by_evaluations"]["backprop_wins"] == 2
