"""Studies end to end in the embedded service: expansion into ordinary jobs, curves and crossover,
refusals at submit, cancel, a restart mid-way, and the exports (CSV, JSONL, rliable, IOHanalyzer)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from arena.studies import BUILTIN, expand
from arena.verdict.study import crossover
from tests.conftest import Service, _clean_env, wait_for

SMALL = {
    "task": "xor", "axis": {"name": "hidden", "values": [2, 4]}, "methods": ["backprop", "ga"], "seeds": 3,
    "budget": {"evaluations": 20_000, "seconds": 30},
}  # fmt: skip


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("arena-studies")
    handle = Service("embedded", _clean_env({"ARENA_DATA_DIR": str(data_dir)}), data_dir)
    try:
        handle.start_api()
        handle.start_worker()
        yield handle
    finally:
        handle.stop()


def wait_study(service: Service, study_id: int, timeout: float = 240) -> dict:
    def finished():
        body = service.client.get(f"/studies/{study_id}").json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(finished, timeout, interval=1.0, message=f"study {study_id}")


def test_expansion_sets_each_axis_on_an_ordinary_job_body():
    cells = expand({"task": "parity-3", "methods": ["ga"], "seeds": 2, "axes": [{"name": "hidden", "values": [2, [4, 4]]}, {"name": "ga.population_size", "values": [10, 20]}]})
    assert [c["point"] for c in cells] == [{"hidden": 2, "ga.population_size": 10}, {"hidden": 2, "ga.population_size": 20},
                                           {"hidden": [4, 4], "ga.population_size": 10}, {"hidden": [4, 4], "ga.population_size": 20}]  # fmt: skip
    assert cells[3]["body"]["architecture"]["hidden_sizes"] == [4, 4] and cells[3]["body"]["ga"] == {"population_size": 20}
    tasks = expand(BUILTIN["problem-size"])
    assert [c["body"]["task"] for c in tasks] == ["parity-2", "parity-3", "parity-4"]


def test_crossover_in_words_and_as_data():
    result = crossover("width", [2, 4, 8, 16], "backprop", "ga", ["ga", None, None, "backprop"])
    assert result["flips"] == [{"after": 2, "before": 16, "from": "ga", "to": "backprop", "undecided_between": [4, 8]}]
    assert "from width 4 to 8 backprop and ga cannot be told apart" in result["text"]
    assert "flips between width 2 and 16" in result["text"]
    assert crossover("w", [1, 2], "a", "b", ["a", "a"])["flips"] == []


def test_a_small_study_runs_end_to_end_with_curves_crossover_and_exports(embedded):
    response = embedded.client.post("/studies", json=SMALL)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["cells"] == 2 and created["runs"] == 2 * 2 * 3
    body = wait_study(embedded, created["study_id"])
    assert body["status"] == "succeeded" and body["cells_finished"] == 2
    # Each cell is an ordinary job: the job route serves it, with the architecture of its cell.
    for cell, width in zip(body["cell_list"], (2, 4)):
        job = embedded.job(cell["job_id"])
        assert job["request"]["architecture"]["hidden_sizes"] == [width] and len(job["runs"]) == 6
        assert cell["parameters"] == 2 * width + width + width + 1
    (answer,) = body["answers"]
    assert answer["values"] == [2, 4]
    assert set(answer["curves"]) == {"backprop", "ga"}
    for points in answer["curves"].values():
        assert [p["value"] for p in points] == [2, 4] and all(p["n"] == 3 for p in points)
        assert all(p["success_rate_ci"] is not None for p in points)
    (pair,) = answer["crossovers"]
    assert {pair["first"], pair["second"]} == {"backprop", "ga"} and len(pair["winners"]) == 2 and pair["text"]
    listed = embedded.client.get("/studies").json()
    assert created["study_id"] in [s["id"] for s in listed["studies"]]

    study_id = created["study_id"]
    assert embedded.client.get(f"/studies/{study_id}/curves.svg").text.lstrip().startswith("<?xml")
    assert embedded.client.get(f"/studies/{study_id}/curves.png").content[:4] == b"\x89PNG"
    rows = list(csv.DictReader(io.StringIO(embedded.client.get(f"/studies/{study_id}/runs.csv").text)))
    assert len(rows) == 12 and {r["point"] for r in rows} == {"hidden=2", "hidden=4"}
    lines = [json.loads(line) for line in embedded.client.get(f"/studies/{study_id}/runs.jsonl").text.splitlines()]
    assert len(lines) == 12 and {tuple(line["point"].items()) for line in lines} == {(("hidden", 2),), (("hidden", 4),)}
    # rliable: {method: array of shape (runs, tasks)}
    scores = {method: np.asarray(matrix) for method, matrix in embedded.client.get(f"/studies/{study_id}/runs.rliable.json").json()["scores"].items()}
    assert {m: s.shape for m, s in scores.items()} == {"backprop": (3, 2), "ga": (3, 2)}
    assert set(np.unique(np.concatenate([s.ravel() for s in scores.values()]))) <= {0.0, 1.0}
    # IOHanalyzer's general CSV
    ioh = list(csv.DictReader(io.StringIO(embedded.client.get(f"/studies/{study_id}/runs.ioh.csv").text)))
    assert len(ioh) == 12 and set(ioh[0]) == {"funcId", "DIM", "algId", "run", "evaluations", "fval"}
    assert all(int(r["evaluations"]) > 0 for r in ioh)


def test_a_study_over_the_caps_is_refused_naming_the_limit_and_stores_nothing(embedded):
    before = embedded.client.get("/jobs").json()["total"]
    too_big = {**SMALL, "axis": {"name": "hidden", "values": list(range(1, 41))}, "seeds": 100, "methods": ["backprop", "ga", "cmaes"]}
    response = embedded.client.post("/studies", json=too_big)
    assert response.status_code == 422 and "at most 10,000" in response.text
    costly = {**SMALL, "budget": {"evaluations": 900_000_000}, "seeds": 100, "axis": {"name": "hidden", "values": [512, 1024]}}
    response = embedded.client.post("/studies", json=costly)
    assert response.status_code == 422 and "ARENA_MAX_JOB_CPU_SECONDS" in response.text
    bad_cell = {**SMALL, "axis": {"name": "hidden", "values": [2, 5000]}}
    response = embedded.client.post("/studies", json=bad_cell)
    assert response.status_code == 422 and "hidden=5000" in response.text
    response = embedded.client.post("/studies", json={**SMALL, "axis": {"name": "frequency", "values": [1, 2]}})
    assert response.status_code == 422 and "unknown axis 'frequency'" in response.text
    assert embedded.client.get("/jobs").json()["total"] == before


def test_cancel_stops_every_cell(embedded):
    big = {**SMALL, "task": "parity-4", "budget": {"evaluations": 5_000_000, "seconds": 120}, "seeds": 4}
    study_id = embedded.client.post("/studies", json=big).json()["study_id"]
    response = embedded.client.post(f"/studies/{study_id}/cancel")
    assert response.status_code == 200 and len(response.json()["cancelled_jobs"]) == 2
    body = wait_study(embedded, study_id, timeout=60)
    assert body["status"] == "cancelled"
    assert all(embedded.job(cell["job_id"])["status"] == "cancelled" for cell in body["cell_list"])


def test_a_study_survives_a_restart_with_every_cell_complete_and_no_run_repeated(embedded):
    study = {**SMALL, "task": "parity-3", "axis": {"name": "hidden", "values": [3, 4, 6]}, "seeds": 3, "budget": {"evaluations": 60_000, "seconds": 30}}
    created = embedded.client.post("/studies", json=study).json()
    # Kill the worker and the API mid-way, then start both again.
    wait_for(lambda: embedded.client.get(f"/studies/{created['study_id']}").json()["run_counts"].get("succeeded", 0) >= 1, 120, message="a first run")
    at_kill = embedded.client.get(f"/studies/{created['study_id']}").json()
    for worker in list(embedded.workers):
        if worker.poll() is None:
            embedded.kill_worker(worker)
    embedded.api.terminate()
    embedded.api.wait(15)
    embedded.start_api()
    embedded.start_worker()
    body = wait_study(embedded, created["study_id"], timeout=400)
    assert at_kill["status"] == "running" and at_kill["cells_finished"] < 3  # really mid-way
    assert body["status"] == "succeeded" and body["cells_finished"] == 3
    run_ids = []
    for cell in body["cell_list"]:
        runs = embedded.job(cell["job_id"])["runs"]
        assert all(run["status"] == "succeeded" for run in runs)
        assert sorted((run["method"], run["seed"]) for run in runs) == sorted((m, s) for m in ("backprop", "ga") for s in range(3))
        run_ids += [run["id"] for run in runs]
    assert len(run_ids) == len(set(run_ids)) == created["runs"]


def test_a_built_in_study_runs_by_name_and_its_pages_answer(embedded):
    response = embedded.client.post("/studies", json={"name": "budget"})
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["cells"] == 3 and created["name"] == "budget"
    assert embedded.client.post(f"/studies/{created['study_id']}/cancel").status_code == 200
    assert embedded.client.get(f"/ui/studies/{created['study_id']}").status_code == 200
    assert "study.js" in embedded.client.get("/ui/studies").text
    assert embedded.client.get("/studies/999999").status_code == 404


def test_the_cli_runs_shows_and_lists_a_study(embedded, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "study.json"
    path.write_text(json.dumps({**SMALL, "axis": {"name": "budget.evaluations", "values": [2_000, 20_000]}, "seeds": 2}))
    arena = [sys.executable, "-m", "arena"]
    done = subprocess.run([*arena, "study", "run", str(path), "--wait", "--url", embedded.base_url], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "along budget.evaluations" in done.stdout and "cells:" in done.stdout
    listed = subprocess.run([*arena, "study", "list", "--url", embedded.base_url], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "budget.evaluations on xor" in listed.stdout
    missing = subprocess.run([*arena, "study", "show", "999999", "--url", embedded.base_url], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no study 999999" in missing.stderr
