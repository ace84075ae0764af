"""Batched seeds through the real service: one `claim_and_run_batch` message per batch of a job's runs.

A job's runs of one configuration with an evaluations-only budget go as batches (ARENA_BATCH_SEEDS, 16
by default; 20 runs go as 10 + 10); each run is still claimed, heartbeated and recorded on its own, and
its evaluations to solve are the unbatched run's. A seconds budget is never batched. A killed worker's batch
is re-sent as batches (tests/test_faults.py); lost queued messages are re-sent run by run.
"""

from __future__ import annotations

import re

import pytest

import arena
from arena.runspec import RunSpec
from arena.store import queries
from arena.workers.send import batches


def test_batches_group_evaluation_budgets_of_batched_algorithms_only():
    runs = [(i, "backprop", None, "backprop") for i in range(20)]
    runs += [(100, "backprop", 30.0, "backprop"), (101, "backprop", 30.0, "backprop")]  # a seconds budget
    runs += [(200 + i, "ga", None, "ga") for i in range(3)]  # lock-step GA (ga.train_seeds)
    runs += [(300 + i, "cmaes", None, "cmaes") for i in range(3)]
    runs += [(400 + i, "backprop", None, "ppo") for i in range(2)]  # no batched trainer: one message each
    grouped, singles = batches(runs, 16)
    assert grouped == [(list(range(10)), "backprop"), (list(range(10, 20)), "backprop"), ([200, 201, 202], "ga"), ([300, 301, 302], "cmaes")]
    assert sorted(run_id for run_id, _, _ in singles) == [100, 101, 400, 401]
    assert batches(runs[:20], 1) == ([], [(i, "backprop", None) for i in range(20)])  # 1 disables batching
    grouped, singles = batches(runs[:17], 16)  # 17 -> 9 + 8
    assert [len(ids) for ids, _ in grouped] == [9, 8] and singles == []
    assert batches(runs[:3], 16, supervised=False) == ([], [(i, "backprop", None) for i in range(3)])  # car: one by one


def test_a_recovered_batch_is_split_over_the_live_workers_and_stays_batched():
    from arena.workers.reconcile import recovery_batch_seeds

    assert recovery_batch_seeds(15, 16, 1) == 15  # one worker: the batch as it was
    assert recovery_batch_seeds(15, 16, 3) == 5  # three workers: three batches at once
    assert recovery_batch_seeds(30, 16, 1) == 16  # never above ARENA_BATCH_SEEDS
    assert recovery_batch_seeds(3, 16, 8) == 2  # at least two a batch: trained batched, same configuration
    runs = [(i, "ga", None, "ga") for i in range(15)]
    grouped, singles = batches(runs, recovery_batch_seeds(15, 16, 2))
    assert [len(ids) for ids, _ in grouped] == [8, 7] and singles == []


@pytest.mark.parametrize("method", ["backprop", "ga", "cmaes"])
def test_a_batched_job_records_every_run_once_with_the_unbatched_counts(service, method):
    created = service.submit({"task": "xor", "methods": [method], "seeds": 20, "budget": {"evaluations": 60_000}})
    job = service.wait_job(created["job_id"], timeout=120)
    assert job["status"] == "succeeded" and job["run_counts"] == {"succeeded": 20}, job
    log = service.worker_log_text()
    for run_id in created["run_ids"]:
        assert len(re.findall(rf"run {run_id} attempt \d+ recorded", log)) == 1  # exactly one completion each
    for ref in job["runs"]:
        run = service.client.get(f"/runs/{ref['id']}").json()
        assert run["attempts"] == 1 and run["metrics"]["batched"] > 1, run["metrics"]
        # Its own configuration for the seconds lens: batched timings are never pooled with unbatched ones.
        assert run["settings_hash"] == queries.batched_settings_hash(run["spec"]) != queries.settings_hash(run["spec"])
        alone = arena.execute(RunSpec.from_dict(run["spec"]), run["seed"])
        assert (run["solved"], run["evaluations_to_solve"], run["evaluations"]) == (alone.solved, alone.evaluations_to_solve, alone.evaluations), run["seed"]
        assert run["curve"] and run["curve"][-1]["evaluations"] == run["evaluations"]


def test_a_seconds_budget_is_not_batched(service):
    created = service.submit({"task": "xor", "methods": ["backprop"], "seeds": 4, "budget": {"evaluations": 60_000, "seconds": 30}})
    job = service.wait_job(created["job_id"], timeout=90)
    assert job["status"] == "succeeded", job
    for ref in job["runs"]:
        run = service.client.get(f"/runs/{ref['id']}").json()
        assert "batched" not in (run["metrics"] or {})
        assert run["settings_hash"] == queries.settings_hash(run["spec"])


@pytest.mark.parametrize("seeds", [[5]])
def test_a_single_run_is_sent_alone(service, seeds):
    created = service.submit({"task": "xor", "methods": ["backprop"], "seeds": seeds, "budget": {"evaluations": 60_000}})
    job = service.wait_job(created["job_id"], timeout=60)
    assert job["status"] == "succeeded"
    run = service.client.get(f"/runs/{created['run_ids'][0]}").json()
    assert "batched" not in (run["metrics"] or {}) and run["settings_hash"] == queries.settings_hash(run["spec"])
