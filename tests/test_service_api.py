"""The HTTP API over real HTTP: refusals (422 naming the field and the limit, nothing stored), 404s,
the task listing, health and OpenAPI. Runs against the embedded and the production service."""

from __future__ import annotations

import subprocess
import sys

import pytest

XOR = {"task": "xor", "seeds": 1, "budget": {"evaluations": 1000}}

# (name, body, expected loc, words the message must contain)
BAD_PAYLOADS = [
    ("seeds as a string", {**XOR, "seeds": "3"}, ["body", "seeds"], []),
    ("evaluations as a string", {**XOR, "budget": {"evaluations": "many"}}, ["body", "budget", "evaluations"], []),
    ("stop_on_solve as a string", {**XOR, "budget": {"seconds": 1, "stop_on_solve": "yes"}}, ["body", "budget", "stop_on_solve"], []),
    ("task as a number", {**XOR, "task": 7}, ["body", "task"], []),
    ("missing task", {"seeds": 1}, ["body", "task"], []),
    ("unknown task", {**XOR, "task": "xro"}, ["body", "task"], ["unknown task", "xor"]),
    ("unknown method", {**XOR, "methods": ["sgd"]}, ["body", "methods", 0], ["backprop"]),
    ("no method", {**XOR, "methods": []}, ["body", "methods"], []),
    ("repeated method", {**XOR, "methods": ["ga", "ga"]}, ["body", "methods"], ["repeat"]),
    ("architecture that does not fit", {**XOR, "architecture": {"input_size": 3, "hidden_sizes": [4], "output_size": 1}}, ["body", "architecture"], ["input_size 2"]),
    ("unknown activation", {**XOR, "architecture": {"input_size": 2, "hidden_sizes": [4], "output_size": 1, "hidden_activation": "swish"}}, ["body", "architecture", "hidden_activation"], ["tanh"]),
    ("too many seeds", {**XOR, "seeds": 101}, ["body", "seeds"], ["100", "ARENA_MAX_SEEDS_PER_JOB"]),
    ("too many seeds listed", {**XOR, "seeds": list(range(101))}, ["body", "seeds"], ["100", "ARENA_MAX_SEEDS_PER_JOB"]),
    ("repeated seeds", {**XOR, "seeds": [1, 1]}, ["body", "seeds"], ["repeat"]),
    ("negative seed", {**XOR, "seeds": [-1]}, ["body", "seeds", 0], ["seed"]),
    ("population over the limit", {**XOR, "ga": {"population_size": 5000}}, ["body", "ga", "population_size"], ["2000", "ARENA_MAX_POPULATION"]),
    ("seconds over the limit", {**XOR, "budget": {"seconds": 5000}}, ["body", "budget", "seconds"], ["3600", "ARENA_MAX_BUDGET_SECONDS"]),
    ("evaluations over the limit", {**XOR, "budget": {"evaluations": 10**10}}, ["body", "budget", "evaluations"], ["1000000000", "ARENA_MAX_BUDGET_EVALUATIONS"]),
    ("empty budget", {**XOR, "budget": {}}, ["body", "budget"], ["evaluations, seconds"]),
    ("unknown field", {**XOR, "colour": "red"}, ["body", "colour"], []),
    ("unknown budget field", {**XOR, "budget": {"minutes": 3}}, ["body", "budget", "minutes"], []),
    ("unknown ga setting", {**XOR, "ga": {"popsize": 10}}, ["body", "ga", "popsize"], ["population_size"]),
    ("bad backprop value", {**XOR, "backprop": {"learning_rate": -1}}, ["body", "backprop", "learning_rate"], ["greater than or equal to", "got -1"]),
    ("bad optimizer", {**XOR, "backprop": {"optimizer": "lbfgs"}}, ["body", "backprop", "optimizer"], ["adam"]),
    ("parents over population", {**XOR, "ga": {"population_size": 10, "num_parents_mating": 20}}, ["body", "ga", "num_parents_mating"], ["population_size"]),
    ("parents over the task's population", {"task": "sine", "seeds": 1, "ga": {"population_size": 30}}, ["body", "ga", "num_parents_mating"], ["(40)", "(30)"]),
    ("backprop settings on a car task", {"task": "car-oval", "seeds": 1, "backprop": {"learning_rate": 0.1}}, ["body", "backprop"], ["ppo"]),
    ("settings of a method not in methods", {**XOR, "methods": ["ga"], "cmaes": {"sigma0": 1.0}}, ["body", "cmaes"], ["add 'cmaes' to methods"]),
    ("unknown cmaes setting", {**XOR, "cmaes": {"sigma": 1.0}}, ["body", "cmaes", "sigma"], ["did you mean 'sigma0'"]),
    ("one-sample PPO minibatches", {"task": "car-oval", "seeds": 1, "ppo": {"num_envs": 2, "num_steps": 4, "num_minibatches": 8}}, ["body", "ppo", "num_minibatches"], ["at least 2 samples"]),
    ("options for a task without options", {**XOR, "task_options": {"track": "oval"}}, ["body", "task_options"], ["no options"]),
]


BIG_NETWORK = {"input_size": 1, "hidden_sizes": [1024] * 8, "output_size": 1}  # about 7.4 million parameters
# What a job would really cost, priced at submit time (the service's limits: 422 naming the limit).
BAD_PAYLOADS += [
    # The audit's case: a GA population of 2,000 networks of 8 x 1024 (about 15 billion floats).
    ("ga population x parameters", {"task": "sine", "methods": ["ga"], "seeds": 1, "architecture": BIG_NETWORK,
                                    "ga": {"population_size": 2000, "num_parents_mating": 20}}, ["body", "ga", "population_size"], ["ARENA_MAX_POPULATION_PARAMETERS"]),
    ("cmaes population x parameters", {"task": "sine", "methods": ["cmaes"], "seeds": 1, "architecture": BIG_NETWORK,
                                       "cmaes": {"population_size": 100}}, ["body", "cmaes", "population_size"], ["ARENA_MAX_POPULATION_PARAMETERS"]),
    ("ppo environments x parameters", {"task": "car-oval", "methods": ["backprop"], "seeds": 1,
                                       "architecture": {"input_size": 6, "hidden_sizes": [1024] * 8, "output_size": 2, "output_activation": "tanh"},
                                       "ppo": {"num_envs": 4096, "num_steps": 2}}, ["body", "ppo", "num_envs"], ["ARENA_MAX_POPULATION_PARAMETERS"]),
    # The audit's 200 CPU-hours: 100 seeds x 2 methods x 3,600 s.
    ("cpu seconds per job", {"task": "xor", "methods": ["ga", "cmaes"], "seeds": 100, "budget": {"seconds": 3600}}, ["body", "budget"], ["ARENA_MAX_JOB_CPU_SECONDS"]),
    # No seconds budget: estimated from evaluations (at most the time limit per run).
    ("cpu seconds estimated from evaluations", {"task": "sine", "methods": ["backprop"], "seeds": 100, "architecture": BIG_NETWORK,
                                               "budget": {"evaluations": 10**9}}, ["body", "budget"], ["ARENA_MAX_JOB_CPU_SECONDS"]),
]  # fmt: skip


def jobs_stored(service) -> int:
    return service.client.get("/jobs", params={"limit": 1}).json()["total"]


@pytest.mark.parametrize("name, body, location, words", BAD_PAYLOADS, ids=[case[0] for case in BAD_PAYLOADS])
def test_bad_payload_is_refused_with_the_field_named(service, name, body, location, words):
    before = jobs_stored(service)
    response = service.client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    matching = [e for e in errors if e["loc"][: len(location)] == location]
    assert matching, f"no error at {location}: {errors}"
    for word in words:
        assert any(word in e["msg"] for e in matching), f"{word!r} not in {errors}"
    assert jobs_stored(service) == before  # nothing stored on a 422


def test_malformed_json_is_refused(service):
    before = jobs_stored(service)
    response = service.client.post("/jobs", content=b'{"task": "xor", ', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert jobs_stored(service) == before


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/jobs/999999"),
        ("post", "/jobs/999999/cancel"),
        ("get", "/jobs/999999/comparison"),
        ("get", "/runs/999999"),
        ("get", "/runs/999999/weights"),
        ("get", "/runs/999999/trajectory.png"),
        ("get", "/leaderboard?task=no-such-task"),
    ],
)
def test_unknown_ids_are_404(service, method, path):
    response = service.client.request(method.upper(), path)
    assert response.status_code == 404, response.text
    assert "not found" in response.text or "unknown task" in response.text


def test_tasks_health_and_openapi(service):
    tasks = {task["name"]: task for task in service.client.get("/tasks").json()}
    assert tasks["xor"]["input_size"] == 2 and tasks["xor"]["higher_is_better"] is False
    assert {s["name"] for s in tasks["xor"]["settings"]["ga"]["settings"]} >= {"population_size", "mutation_probability"}
    health = service.client.get("/health").json()
    assert health == {"status": "ok", "database": "ok", "broker": "ok", "mode": service.mode}
    schema = service.client.get("/openapi.json").json()
    assert {"/jobs", "/jobs/{job_id}", "/leaderboard", "/runs/{run_id}/weights"} <= set(schema["paths"])
    assert "JobCreate" in schema["components"]["schemas"]


def test_the_api_imports_neither_torch_nor_pygad():
    # Everything the API process loads, including validating a car job with a user track and listing tasks.
    code = (
        "import sys, arena, arena.service.app, arena.workers.send, arena.methods; "
        "from fastapi.testclient import TestClient; "
        "from arena.runspec import resolve; resolve('car-oval', 'backprop', task_options={'track': 'hard'}); "
        "print(sorted({'torch', 'pygad', 'cma', 'gymnasium'} & set(sys.modules)))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_trajectory_png_of_a_car_run(service):
    """Rendered on demand in a child process (the API never imports torch), from the stored weights."""
    import numpy as np

    from arena.runspec import resolve
    from arena.store import queries
    from arena.store.db import session_scope
    from arena.store.tables import utcnow

    spec = resolve("car-oval", "ga", {"evaluations": 1000}).to_dict()
    size = resolve("car-oval", "ga").architecture.num_parameters
    weights = np.random.default_rng(0).normal(0, 0.5, size).tolist()
    with session_scope(service.database_url) as session:
        job = queries.create_job(session, "car-oval", [0], {"ga": spec}, {"note": "plot"})
        run_id = job.runs[0].id
        claim = queries.claim_run(session, run_id, "test", utcnow(), 3)
    assert service.client.get(f"/runs/{run_id}/trajectory.png").status_code == 404  # no weights yet
    result = {"score": 0.0, "solved": False, "evaluations": 1000, "seconds": 1.0, "stopped": "budget", "curve": [], "weights": weights}
    with session_scope(service.database_url) as session:
        assert queries.record_result(session, run_id, claim.attempt, "succeeded", result=result)
    response = service.client.get(f"/runs/{run_id}/trajectory.png", timeout=120)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


def test_more_parents_than_the_model_default_population_is_fine_where_the_task_has_more(service):
    # sine's GA population is 100: 60 parents are valid there, though above GASettings' own default of 50.
    response = service.client.post("/jobs", json={"task": "sine", "seeds": 1, "methods": ["ga"], "budget": {"evaluations": 1000}, "ga": {"num_parents_mating": 60}})
    assert response.status_code == 202, response.text
    run = service.client.get(f"/runs/{response.json()['run_ids'][0]}").json()
    assert run["spec"]["settings"]["num_parents_mating"] == 60 and run["spec"]["settings"]["population_size"] == 100


def test_openapi_documents_every_setting_of_every_method(service):
    from arena.methods import ALGORITHMS

    schemas = service.client.get("/openapi.json").json()["components"]["schemas"]
    job = schemas["JobCreate"]["properties"]
    for name, module in ALGORITHMS.items():
        assert name in job
        documented = schemas[module.Settings.__name__]["properties"]
        assert set(documented) == set(module.Settings.model_fields)
        for field in documented.values():
            nullable = any(option.get("type") == "null" for option in field.get("anyOf", []))
            assert ("default" in field or nullable) and field.get("description")  # FastAPI leaves out a null default
    assert schemas["GASettings"]["properties"]["population_size"]["maximum"] == 10_000
    assert schemas["CMAESSettings"]["properties"]["sigma0"]["default"] == 0.5


@pytest.mark.parametrize("path", ["/jobs/2147483648", "/jobs/0", "/runs/9223372036854775808", "/jobs/2147483648/comparison", "/runs/2147483648/weights"])
def test_ids_out_of_range_are_422_not_500(service, path):
    assert service.client.get(path).status_code == 422
    assert service.client.get("/jobs", params={"offset": 2**40}).status_code == 422
