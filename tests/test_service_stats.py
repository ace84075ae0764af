"""The service's adapter over the verdict (arena/service/stats.py) on known data: grouping runs into
configurations, ranking, each method's best configuration head to head, job comparisons, the summary.
The statistics themselves are checked in tests/test_verdict.py; over HTTP in tests/test_service_verdict.py."""

from __future__ import annotations

import json

import pytest

from arena.service import schemas
from arena.verdict import report as stats
from arena.verdict import statistics as verdict

_ids = iter(range(1, 1_000_000))


def run(method, digest, seed, solved, evaluations, status="succeeded", algorithm=None):
    return {
        "id": next(_ids), "method": method, "algorithm": algorithm or method, "settings_hash": digest, "seed": seed,
        "status": status, "solved": solved, "evaluations": evaluations, "seconds": evaluations / 1e4,
        "cpu_seconds": evaluations / 2e4, "evaluations_to_solve": evaluations if solved else None,
        "seconds_to_solve": evaluations / 1e4 if solved else None, "cpu_seconds_to_solve": evaluations / 2e4 if solved else None,
    }  # fmt: skip


def configuration(method, digest, outcomes, **kwargs):
    """outcomes: [(solved, evaluations)], one per seed."""
    return [run(method, digest, seed, solved, evaluations, **kwargs) for seed, (solved, evaluations) in enumerate(outcomes)]


# backprop "a": 10/10 solved fast; ga "b": 10/10 slowly; ga "c": 3/10; cmaes "d": 0/10 and a failed run.
FAST = configuration("backprop", "a", [(True, 100 + 10 * i) for i in range(10)])
SLOW = configuration("ga", "b", [(True, 5000 + 100 * i) for i in range(10)])
WEAK = configuration("ga", "c", [(i < 3, 400 if i < 3 else 20_000) for i in range(10)])
NONE = configuration("cmaes", "d", [(False, 20_000)] * 10) + [run("cmaes", "d", 15, None, 0, status="failed")]
SPECS = {digest: {"architecture": {"input_size": 2, "hidden_sizes": [4], "output_size": 1}, "settings": {"id": digest}, "budget": {"evaluations": 20_000}} for digest in "abcd"}


def test_leaderboard_ranks_by_success_rate_then_ert_and_names_each_methods_best():
    body, best = stats.leaderboard(NONE + WEAK + SLOW + FAST, SPECS)
    assert [(e["rank"], e["method"], e["settings_hash"]) for e in body["entries"]] == [
        (1, "backprop", "a"), (2, "ga", "b"), (3, "ga", "c"), (4, "cmaes", "d"),
    ]  # fmt: skip
    first = body["entries"][0]
    assert first["ert_evaluations"] == pytest.approx(sum(100 + 10 * i for i in range(10)) / 10)
    assert first["settings"] == {"id": "a"} and first["budget"] == {"evaluations": 20_000} and first["label"] == "backprop"
    assert body["entries"][3]["failed"] == 1 and body["entries"][3]["ert_evaluations"] is None
    # Both 10/10: their Wilson intervals overlap, but the ERT intervals do not: not tied.
    assert body["entries"][1]["tied_with_previous"] is False
    assert {m: b["settings_hash"] for m, b in best.items()} == {"backprop": "a", "ga": "b", "cmaes": "d"}
    assert body["best"]["ga"] == {"label": "ga", "settings_hash": "b", "rank": 2}
    assert len(body["comparisons"]) == 3  # every pair of the three methods' best configurations
    assert body["verdict"]["evaluations"]["winner"] == "backprop"
    assert "backprop needs fewer evaluations" in body["verdict"]["evaluations"]["text"]
    schemas.Leaderboard.model_validate({"task": "xor", "score_name": "mse", "higher_is_better": False, **body})


def test_a_tie_is_marked():
    twin = [{**r, "settings_hash": "a2", "id": r["id"] + 500_000} for r in FAST]
    body, _ = stats.leaderboard(FAST + twin, {})
    assert [e["tied_with_previous"] for e in body["entries"]] == [False, True]
    assert body["entries"][0]["tie_group"] == body["entries"][1]["tie_group"] == 1


def test_duplicates_are_counted_once_and_reported():
    again = [{**r, "id": r["id"] + 600_000} for r in FAST]
    body, _ = stats.leaderboard(FAST + again, {})
    (entry,) = body["entries"]
    assert (entry["runs"], entry["duplicates"], body["duplicates"]) == (10, 10, 10)
    assert entry["success_rate_ci"] == verdict.configuration_stats(FAST)["success_rate_ci"]


def test_car_methods_are_labelled_with_their_algorithm():
    ppo = configuration("backprop", "p", [(True, 1000)] * 3, algorithm="ppo")
    body, best = stats.leaderboard(ppo + configuration("ga", "g", [(True, 2000)] * 3), {})
    assert body["entries"][0]["label"] == "backprop (ppo)" and best["backprop"]["label"] == "backprop (ppo)"
    assert {c["first"] for c in body["comparisons"]} | {c["second"] for c in body["comparisons"]} == {"backprop (ppo)", "ga"}


def test_one_method_alone_has_nothing_to_compare():
    body, _ = stats.leaderboard(FAST, {})
    assert body["comparisons"] == []
    assert all(v["winner"] is None and "nothing to compare" in v["text"] for v in body["verdict"].values())


def test_job_comparison():
    result = stats.comparison(FAST + SLOW + [{**FAST[0], "id": 999_999}])
    assert set(result["methods"]) == {"backprop", "ga"} and result["duplicates"] == 1
    assert result["methods"]["backprop"]["runs"] == 10
    (pair,) = result["comparisons"]
    assert (pair["first"], pair["second"]) == ("backprop", "ga")
    assert pair["probability_of_improvement"]["evaluations"] == {"estimate": 1.0, "low": 1.0, "high": 1.0}
    assert pair["verdict"]["reliability"]["winner"] is None  # 10/10 against 10/10
    assert result["verdict"]["evaluations"]["winner"] == "backprop"
    json.dumps(result, allow_nan=False)


def test_summary_counts_tasks_won_lost_undecided():
    tasks = {
        "xor": stats.best_runs(FAST + SLOW),
        "and": stats.best_runs(FAST + [{**r, "settings_hash": "b2"} for r in SLOW]),
        "or": stats.best_runs(configuration("backprop", "a", [(True, 100)] * 3) + configuration("ga", "b", [(True, 100)] * 3)),
    }
    result = stats.summary(tasks)
    assert result["methods"]["backprop"]["evaluations"] == {"won": 2, "lost": 0, "undecided": 1}
    assert result["methods"]["ga"]["evaluations"] == {"won": 0, "lost": 2, "undecided": 1}
    assert result["tasks"]["xor"]["winner"]["evaluations"] == "backprop"
    assert result["tasks"]["or"]["verdict"]["evaluations"]["winner"] is None
    assert result["tasks"]["xor"]["n"] == {"backprop": 10, "ga": 10}
    profile = result["performance_profiles"]["evaluations"]
    assert profile["backprop"][0] == 1.0 and len(profile["tau"]) == len(profile["ga"])
    schemas.Summary.model_validate(result)


def _tables(runs):
    """Runs grouped as queries.task_run_tables gives them: {(method, hash): RunTable of succeeded runs}."""
    tables = {}
    for key, group in sorted(stats.group_configurations(runs).items()):
        succeeded = [r for r in group if r["status"] == "succeeded"]
        if succeeded:
            rows = [tuple(r[name] for name in verdict.RunTable.ROW_FIELDS) for r in succeeded]
            failed = sum(r["status"] == "failed" for r in group)
            tables[key] = verdict.RunTable.from_rows(rows, failed=failed, cancelled=sum(r["status"] == "cancelled" for r in group))
    return tables


def test_columnar_leaderboard_and_summary_equal_the_dict_ones():
    runs = NONE + WEAK + SLOW + FAST + [{**r, "id": r["id"] + 700_000} for r in SLOW[:4]]  # with duplicates
    specs = {digest: {**spec, "algorithm": {"a": "backprop", "d": "cmaes"}.get(digest, "ga")} for digest, spec in SPECS.items()}
    from_dicts, best_dicts = stats.leaderboard(runs, specs)
    from_tables, best_tables = stats.leaderboard(_tables(runs), specs)
    assert json.dumps(from_tables, sort_keys=True) == json.dumps(from_dicts, sort_keys=True)
    assert stats.summary({"xor": best_tables}) == stats.summary({"xor": best_dicts})


def test_task_run_tables_read_what_task_runs_reads(migrated_database):
    """The columnar read (numbers only, per configuration) against the dict read, on each database."""
    import uuid

    from sqlalchemy import insert

    from arena.store import queries
    from arena.store.db import session_scope
    from arena.store.tables import Job, Run, utcnow

    task = f"columnar-{uuid.uuid4().hex[:8]}"
    cancelled = {**run("ga", "b", 99, False, 0, status="cancelled"), "solved": None, "evaluations": None, "seconds": None, "cpu_seconds": None}
    runs = NONE + WEAK + SLOW + FAST + [{**r, "id": r["id"] + 800_000} for r in FAST[:3]] + [cancelled]
    now = utcnow()
    with session_scope(migrated_database) as session:
        job_id = session.execute(
            insert(Job).values(task=task, status="succeeded", methods=["backprop", "ga", "cmaes"], seeds=[0], request={}, created_at=now, cancel_requested=False).returning(Job.id)
        ).scalar_one()
        session.execute(
            insert(Run),
            [
                {key: value for key, value in r.items() if key != "id"}
                | {"job_id": job_id, "task": task, "spec": SPECS[r["settings_hash"]], "attempts": 1, "created_at": now}
                for r in sorted(runs, key=lambda r: r["id"])
            ],
        )
    with session_scope(migrated_database) as session:
        as_dicts = queries.task_runs(session, task)
        tables = queries.task_run_tables(session, task)
        specs = queries.configurations(session, task, sorted(tables))
    assert set(tables) == {("backprop", "a"), ("ga", "b"), ("ga", "c"), ("cmaes", "d")}
    assert (tables[("cmaes", "d")].failed, tables[("ga", "b")].cancelled, len(tables[("backprop", "a")])) == (1, 1, 13)
    from_dicts, _ = stats.leaderboard(as_dicts, specs)
    from_tables, _ = stats.leaderboard(tables, specs)
    assert json.dumps(from_tables, sort_keys=True) == json.dumps(from_dicts, sort_keys=True)
    assert from_tables["duplicates"] == 3
