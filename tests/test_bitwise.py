"""Runs stay bit for bit the same for the same seed and spec, across refactors of the trainers.

tests/data/reference_runs.json was recorded from the code before the population loop was introduced
(git c9c84e7): for each stored run, its counts, curve, stop reason, score and a sha256 of its weights
(float64 bytes). Every run is re-run here, alone (`execute`) and in lock-step (`execute_seeds`), and
must give the same numbers exactly. One deliberate change since: batched backprop's in-run solve checks
now call the task's own rule (`SupervisedTask.rule` via `evaluate_many`, no second copy of the rule), so
their curve scores are the floats an unbatched check gives; they moved by float32 rounding (at most
3.4e-7 relative) and only the `curve_scores` of batched backprop runs were re-recorded (weights, counts,
solves, stops and final scores are c9c84e7's). Re-record only on a deliberate change of behaviour:

    .venv/bin/python tests/test_bitwise.py --write
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from arena.runner import execute, execute_seeds
from arena.runspec import resolve

REFERENCE = Path(__file__).parent / "data" / "reference_runs.json"
SEEDS = [0, 1, 2]

# (name, task, method, budget, settings): small budgets, so the whole set runs in well under a minute.
LOGIC = {"evaluations": 20_000}
RUNS = [
    *[(f"{task}-{method}", task, method, LOGIC, None) for task in ("xor", "parity-3", "and") for method in ("backprop", "ga", "cmaes")],
    *[(f"sine-{method}", "sine", method, {"evaluations": 60_000}, None) for method in ("backprop", "ga", "cmaes")],
    # The budget path (no stop on solve), the GA's variants and PyGAD's built-in operators.
    *[(f"xor-{method}-budget", "xor", method, {"evaluations": 6_000, "stop_on_solve": False}, None) for method in ("backprop", "ga", "cmaes")],
    ("xor-ga-no-elites", "xor", "ga", LOGIC, {"keep_elitism": 0}),
    ("parity-3-ga-two-points", "parity-3", "ga", LOGIC, {"crossover_type": "two_points", "mutation_type": "random"}),
    ("and-ga-pygad", "and", "ga", LOGIC, {"operators": "pygad", "crossover_type": "single_point"}),
    ("xor-ga-rank", "xor", "ga", LOGIC, {"parent_selection_type": "rank"}),
    ("sine-backprop-minibatch", "sine", "backprop", {"evaluations": 30_000}, {"batch_size": 16}),
    ("xor-cmaes-ipop", "xor", "cmaes", {"evaluations": 30_000, "stop_on_solve": False}, {"population_size": 4, "sigma0": 0.05}),
    ("sine-cmaes-diagonal", "sine", "cmaes", {"evaluations": 30_000}, {"covariance": "diagonal"}),
    # A control task: PPO (backprop's algorithm there), the GA (re-scored survivors) and CMA-ES.
    ("car-oval-ppo", "car-oval", "backprop", {"evaluations": 4_096}, {"num_envs": 8, "num_steps": 128, "update_epochs": 2, "num_minibatches": 4}),
    ("car-oval-ga", "car-oval", "ga", {"evaluations": 12_000}, {"population_size": 20}),
    ("car-oval-cmaes", "car-oval", "cmaes", {"evaluations": 12_000}, None),
]


def fingerprint(result) -> dict:
    """What must not change: everything but the times."""
    return {
        "score": result.score,
        "solved": result.solved,
        "evaluations": result.evaluations,
        "evaluations_to_solve": result.evaluations_to_solve,
        "stopped": result.stopped,
        "curve_evaluations": [point["evaluations"] for point in result.curve],
        "curve_scores": [point["score"] for point in result.curve],
        "weights_sha256": hashlib.sha256(np.asarray(result.weights, dtype=np.float64).tobytes()).hexdigest(),
        "metrics": json.loads(json.dumps(result.metrics, sort_keys=True, default=float)),
    }


def spec_of(task, method, budget, settings):
    return resolve(task, method, budget=budget, settings=settings)


def record() -> dict:
    runs = {}
    for name, task, method, budget, settings in RUNS:
        spec = spec_of(task, method, budget, settings)
        runs[name] = {
            "spec": spec.to_dict(),
            "single": [fingerprint(execute(spec, seed)) for seed in SEEDS],
            "batched": [fingerprint(result) for result in execute_seeds(spec, SEEDS)],
        }
    return runs


def same(a, b) -> bool:
    """Exact equality, with NaN equal to NaN (a diverged network's score)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.mark.parametrize("name", [run[0] for run in RUNS])
def test_runs_are_bit_for_bit_the_recorded_ones(reference, name):
    stored = reference[name]
    spec = spec_of(*next(run[1:] for run in RUNS if run[0] == name))
    assert spec.to_dict() == stored["spec"]  # the spec itself did not drift
    for seed, expected in zip(SEEDS, stored["single"]):
        got = json.loads(json.dumps(fingerprint(execute(spec, seed))))
        assert same(got, expected), (name, "single", seed, got, expected)
    for seed, result, expected in zip(SEEDS, execute_seeds(spec, SEEDS), stored["batched"]):
        got = json.loads(json.dumps(fingerprint(result)))
        assert same(got, expected), (name, "batched", seed, got, expected)


def test_the_reference_covers_what_the_loop_drives(reference):
    # The set must exercise the paths a refactor could break: solves, budget stops, restarts, elites.
    singles = [run for name in reference for run in reference[name]["single"]]
    assert {run["stopped"] for run in singles} >= {"solved", "budget"}
    assert any(run["metrics"].get("restarts", 0) > 0 for run in reference["xor-cmaes-ipop"]["single"])
    assert all(run["metrics"].get("batched") == len(SEEDS) for run in reference["xor-ga"]["batched"])


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/test_bitwise.py --write   (re-records tests/data/reference_runs.json)")
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE}")
