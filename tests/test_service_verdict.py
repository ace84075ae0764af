"""The verdict over real HTTP (the `service` fixture: embedded and production modes): the leaderboard,
a job's comparison and the summary, with the issue's field names; and the CLI's commands on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arena.runspec import resolve
from arena.store import queries
from arena.store.db import session_scope
from arena.store.tables import utcnow
from conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]
LENSES = {"reliability", "evaluations", "cpu_seconds"}
STAT_FIELDS = {"runs", "duplicates", "solved", "success_rate", "success_rate_ci", "ert_evaluations", "ert_seconds", "kaplan_meier", "label"}
COMPARISON_FIELDS = {"first", "second", "n", "probability_of_improvement", "logrank_p", "success_p", "verdict"}


def record(service, task: str, plan: dict[str, tuple[dict, list[tuple[bool, int]]]], seeds: list[int]) -> int:
    """Store a job whose runs finish with known results, through the queries a worker uses."""
    specs = {m: resolve(task, m, {"evaluations": 10_000}, settings).to_dict() for m, (settings, _) in plan.items()}
    with session_scope(service.database_url) as session:
        job = queries.create_job(session, task, seeds, specs, {"note": "known data"})
        job_id, runs = job.id, [(r.id, r.method, r.seed) for r in job.runs]
    for run_id, method, seed in runs:
        solved, evaluations = plan[method][1][seeds.index(seed)]
        result = {
            "score": 0.01 if solved else 0.3, "solved": solved, "evaluations_to_solve": evaluations if solved else None,
            "seconds_to_solve": evaluations / 1e4 if solved else None, "evaluations": evaluations, "seconds": evaluations / 1e4,
            "cpu_seconds": evaluations / 2e4, "cpu_seconds_to_solve": evaluations / 2e4 if solved else None,
            "stopped": "solved" if solved else "budget", "metrics": {}, "extra_parameters": 0, "curve": [], "weights": [0.0] * 17,
        }  # fmt: skip
        with session_scope(service.database_url) as session:
            claim = queries.claim_run(session, run_id, "test", utcnow(), 3)
            assert queries.record_result(session, run_id, claim.attempt, "succeeded", result=result)
    return job_id


FAST = [(True, 100 + 10 * i) for i in range(10)]
SLOW = [(True, 3000 + 100 * i) for i in range(10)]
HALF = [(i % 2 == 0, 500 if i % 2 == 0 else 10_000) for i in range(10)]


def test_leaderboard_comparison_and_summary_on_known_data(service):
    task = "nand"
    plan = {"backprop": ({"learning_rate": 0.05}, FAST), "ga": ({"population_size": 20}, SLOW), "cmaes": ({}, HALF)}
    job_id = record(service, task, plan, list(range(10)))
    record(service, task, {"ga": ({"population_size": 30}, SLOW)}, list(range(10)))  # a second ga configuration, tied with the first

    board = service.client.get("/leaderboard", params={"task": task}).json()
    assert {"entries", "comparisons", "verdict", "duplicates", "best"} <= set(board)
    ranked = [(e["rank"], e["method"], e["settings"].get("population_size")) for e in board["entries"]]
    assert ranked[0] == (1, "backprop", None) and {r[1:] for r in ranked[1:3]} == {("ga", 20), ("ga", 30)} and ranked[3][1] == "cmaes"
    # Ties come from tests (issue 17): identical ga configurations tie; backprop is separated from ga by the
    # speed test; cmaes (5/10) is not separated from ga on reliability (Fisher, Holm), but its solved runs
    # are faster than ga's (exact rank test), so it is told apart (was "tied": intervals overlapped).
    assert [e["tied_with_previous"] for e in board["entries"]] == [False, False, True, False]
    first = board["entries"][0]
    assert STAT_FIELDS <= set(first) and first["label"] == "backprop"
    assert first["ert_evaluations"] == pytest.approx(sum(e for _, e in FAST) / 10)
    assert set(first["kaplan_meier"]) == {"evaluations", "cpu_seconds"} and first["kaplan_meier"]["evaluations"]["curve"]
    assert first["architecture"]["hidden_sizes"] and first["budget"]["evaluations"] == 10_000
    cmaes = board["entries"][3]
    assert cmaes["success_rate"] == 0.5 and cmaes["ert_evaluations"] == pytest.approx((5 * 500 + 5 * 10_000) / 5)
    assert len(board["comparisons"]) == 3 and COMPARISON_FIELDS <= set(board["comparisons"][0])
    assert set(board["comparisons"][0]["probability_of_improvement"]["evaluations"]) == {"estimate", "low", "high"}
    assert set(board["verdict"]) == LENSES
    assert board["verdict"]["evaluations"]["winner"] == "backprop"
    assert "backprop needs fewer evaluations" in board["verdict"]["evaluations"]["text"]
    assert "no detectable difference" in board["verdict"]["reliability"]["text"] or board["verdict"]["reliability"]["winner"]

    comparison = service.client.get(f"/jobs/{job_id}/comparison").json()
    assert set(comparison["methods"]) == {"backprop", "ga", "cmaes"} and comparison["duplicates"] == 0
    assert all(STAT_FIELDS <= set(m) and m["runs"] == 10 for m in comparison["methods"].values())
    assert set(comparison["verdict"]) == LENSES and comparison["verdict"]["evaluations"]["winner"] == "backprop"
    pair = next(c for c in comparison["comparisons"] if {c["first"], c["second"]} == {"backprop", "ga"})
    assert pair["probability_of_improvement"]["evaluations"]["estimate"] == (1.0 if pair["first"] == "backprop" else 0.0)

    summary = service.client.get("/summary").json()
    assert {"methods", "tasks", "performance_profiles", "comparisons"} <= set(summary)
    assert summary["tasks"][task]["winner"]["evaluations"] == "backprop"
    assert summary["tasks"][task]["n"] == {"backprop": 10, "ga": 10, "cmaes": 10}
    assert set(summary["methods"]["backprop"]) == LENSES and set(summary["methods"]["backprop"]["evaluations"]) == {"won", "lost", "undecided"}
    assert set(summary["performance_profiles"]) == {"evaluations", "cpu_seconds"} and "tau" in summary["performance_profiles"]["evaluations"]
    only_job = service.client.get("/summary", params={"jobs": str(job_id)}).json()
    assert list(only_job["tasks"]) == [task] and only_job["jobs"] == [job_id]

    # Cached per task version: one more finished run shows at once.
    record(service, task, {"cmaes": ({}, [(True, 200)])}, [42])
    again = service.client.get("/leaderboard", params={"task": task}).json()
    assert next(e for e in again["entries"] if e["method"] == "cmaes")["runs"] == 11


def test_resubmitted_seeds_are_counted_once(service):
    """The same seeds submitted twice, run by the real workers: duplicates, never new evidence."""
    # 5 seeds: the fewest that may represent a method in a verdict (issue 17; was 3).
    body = {"task": "nor", "methods": ["backprop", "ga"], "seeds": [0, 1, 2, 3, 4], "budget": {"evaluations": 100_000}}
    jobs = [service.client.post("/jobs", json=body).json()["job_id"] for _ in range(2)]
    for job_id in jobs:
        wait_for(lambda: service.client.get(f"/jobs/{job_id}").json()["status"] == "succeeded", timeout=300, message=f"job {job_id}")
    board = service.client.get("/leaderboard", params={"task": "nor"}).json()
    assert sorted((e["method"], e["runs"], e["duplicates"]) for e in board["entries"]) == [("backprop", 5, 5), ("ga", 5, 5)]
    assert board["duplicates"] == 10
    assert board["comparisons"] and all(c["n"] == {"backprop": 5, "ga": 5} for c in board["comparisons"])
    comparison = service.client.get(f"/jobs/{jobs[1]}/comparison").json()
    assert comparison["duplicates"] == 0 and comparison["methods"]["ga"]["runs"] == 5
    summary = service.client.get("/summary", params={"jobs": ",".join(map(str, jobs))}).json()
    assert summary["tasks"]["nor"]["n"] == {"backprop": 5, "ga": 5}


def test_unknown_job_and_task(service):
    assert service.client.get("/jobs/987654/comparison").status_code == 404
    assert service.client.get("/leaderboard", params={"task": "no-such-task"}).status_code == 404
    assert service.client.get("/summary", params={"jobs": "987654"}).status_code == 404
    assert service.client.get("/summary", params={"jobs": "x"}).status_code == 422


def arena(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL", "ARENA_URL")}
    return subprocess.run([sys.executable, "-m", "arena", *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("arena: ") and fragment in lines[0], result.stderr


def test_cli_commands(service):
    task = "xnor"
    job_id = record(service, task, {"backprop": ({}, FAST), "ga": ({}, SLOW)}, list(range(10)))
    board = arena("leaderboard", "--task", task, "--url", service.base_url)
    assert board.returncode == 0, board.stderr
    assert board.stdout.startswith(f"{task}: mse (lower is better)")
    assert "ERT evals" in board.stdout and "KM median" in board.stdout
    assert "backprop needs fewer evaluations" in board.stdout
    compare = arena("compare", str(job_id), "--url", service.base_url)
    assert compare.returncode == 0, compare.stderr
    assert "evaluations: backprop better than every other method" in compare.stdout
    assert json.loads(arena("compare", str(job_id), "--json", "--url", service.base_url).stdout)["job_id"] == job_id
    summary = arena("summary", "--url", service.base_url)
    assert summary.returncode == 0, summary.stderr
    assert "won/lost/undecided" in summary.stdout and task in summary.stdout
    assert set(json.loads(arena("summary", "--json", "--url", service.base_url).stdout)["tasks"]) >= {task}
    assert_one_line_error(arena("compare", "987654", "--url", service.base_url), "job 987654 not found")
    assert_one_line_error(arena("leaderboard", "--task", "no-such-task", "--url", service.base_url), "no-such-task")
