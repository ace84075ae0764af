"""The service's adapter over the verdict (arena/verdict/report.py) on known data: grouping runs into
configurations, ranking, each method's best configuration head to head, job comparisons, the summary.
The statistics themselves are checked in tests/test_verdict.py; over HTTP in tests/test_service_verdict.py."""

from __future__ import annotations

import json

import pytest

from arena.service import schemas
from arena import verdict
from arena.verdict import report as stats

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
    ppo = configuration("backprop", "p", [(True, 1000)] * 5, algorithm="ppo")  # 5: the minimum to represent a method
    body, best = stats.leaderboard(ppo + configuration("ga", "g", [(True, 2000)] * 5), {})
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
    # 10 runs all beating 10 runs: certain for these runs, not for the methods (issue 17: not [1, 1]).
    improvement = pair["probability_of_improvement"]["evaluations"]
    assert improvement["estimate"] == 1.0 and improvement["high"] == 1.0 and 0.75 < improvement["low"] < 0.9
    assert pair["verdict"]["reliability"]["winner"] is None  # 10/10 against 10/10
    assert result["verdict"]["evaluations"]["winner"] == "backprop"
    json.dumps(result, allow_nan=False)


def test_summary_counts_tasks_won_lost_undecided():
    tasks = {
        "xor": stats.best_runs(FAST + SLOW),
        "and": stats.best_runs(FAST + [{**r, "settings_hash": "b2"} for r in SLOW]),
        # 5 runs each: the fewest that may represent a method (issue 17; was 3).
        "or": stats.best_runs(configuration("backprop", "a", [(True, 100)] * 5) + configuration("ga", "b", [(True, 100)] * 5)),
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


# --- issue 17: minimum n, ties from tests, selection, seconds budgets -------------------------------------


def test_a_one_run_configuration_is_shown_but_never_a_methods_best_nor_in_a_verdict():
    lucky = configuration("backprop", "one", [(True, 5)])  # one seed that solved at once
    body, best = stats.leaderboard(lucky + FAST + SLOW, SPECS)
    one = next(e for e in body["entries"] if e["settings_hash"] == "one")
    assert one["too_few_runs"] is True and one["rank"] == len(body["entries"])  # ranked last, shown
    assert best["backprop"]["settings_hash"] == "a"  # the 10-run configuration represents backprop
    assert all(c["n"]["backprop"] == 10 for c in body["comparisons"] if "backprop" in c["n"])
    # A job whose methods have too few runs gets no verdict, and says why.
    result = stats.comparison(lucky + configuration("ga", "g", [(True, 500)] * 3))
    assert all(v["winner"] is None for v in result["verdict"].values())
    assert "no detectable difference: too few runs (n=1 vs 3" in result["verdict"]["evaluations"]["text"]
    # A method with only small configurations is still shown against the others, deciding nothing.
    body, best = stats.leaderboard(lucky + SLOW, SPECS)
    assert best["backprop"]["settings_hash"] == "one" and body["verdict"]["evaluations"]["winner"] is None
    assert "too few runs (n=1 vs 10" in body["comparisons"][0]["verdict"]["evaluations"]["text"]


def test_rows_are_tied_unless_a_corrected_test_separates_them():
    # 19/20 slowly against 18/20 quickly (the GA and CMA-ES): Fisher p = 1 and the ranking's
    # ERT order disagrees with speed, but the speed test separates them: not tied. Two identical
    # configurations: tied. 10/10 against 5/10 at the same speed: Fisher separates them.
    steady = configuration("ga", "s", [(i < 19, 16_000 + 10 * i if i < 19 else 20_000) for i in range(20)])
    quick = configuration("cmaes", "q", [(i < 18, 6_000 + 10 * i if i < 18 else 20_000) for i in range(20)])
    twin = [{**r, "settings_hash": "q2", "id": r["id"] + 800_000} for r in quick]
    body, _ = stats.leaderboard(steady + quick + twin, {})
    assert [e["settings_hash"] for e in body["entries"]] == ["s", "q", "q2"]
    assert [e["tied_with_previous"] for e in body["entries"]] == [False, False, True]
    same_speed = configuration("ga", "x", [(True, 100 + i) for i in range(10)])
    half = configuration("ga", "y", [(i < 5, 100 + i if i < 5 else 20_000) for i in range(10)])
    body, _ = stats.leaderboard(same_speed + half, {})
    assert [e["tied_with_previous"] for e in body["entries"]] == [False, False]
    tie_only = configuration("ga", "z", [(i < 9, 100 + i if i < 9 else 20_000) for i in range(10)])
    body, _ = stats.leaderboard(same_speed + tie_only, {})
    assert [e["tied_with_previous"] for e in body["entries"]] == [False, True]  # 10/10 vs 9/10: cannot tell


def test_a_methods_best_is_corrected_for_the_configurations_it_was_chosen_from():
    ga_configurations = [configuration("ga", f"g{k}", [(True, 1000 + 7 * i + k) for i in range(10)]) for k in range(3)]
    runs = FAST + [r for c in ga_configurations for r in c]
    body, best = stats.leaderboard(runs, {})
    assert best["ga"]["selected_from"] == 3 and best["backprop"]["selected_from"] == 1
    (pair,) = body["comparisons"]
    assert pair["selected_from"] == {"backprop": 1, "ga": 3}
    assert pair["speed_p_adjusted"]["evaluations"] == pytest.approx(min(1.0, 3 * pair["speed_p"]["evaluations"]))


def test_runs_under_a_seconds_budget_are_never_duplicates():
    first = configuration("ga", "t", [(i < 7, 100) for i in range(10)])
    again = [{**r, "id": r["id"] + 900_000, "solved": i >= 4, "evaluations_to_solve": 100 if i >= 4 else None} for i, r in enumerate(first)]
    timed = {"t": {"budget": {"seconds": 1.0}}}
    body, _ = stats.leaderboard(first + again, timed)
    (entry,) = body["entries"]
    assert (entry["runs"], entry["duplicates"], entry["solved"]) == (20, 0, 13)
    body, _ = stats.leaderboard(first + again, {"t": {"budget": {"evaluations": 1000}}})
    assert (body["entries"][0]["runs"], body["entries"][0]["duplicates"]) == (10, 10)  # reproducible: counted once
