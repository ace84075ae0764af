"""The CLI as people expect it: --version, bare `arena`, `jobs`, `cancel`, Ctrl-C during `submit --wait`,
shared train/submit flags, `tasks --settings` in 100 columns, `plot`, `export` (and GET /runs.csv, .jsonl),
and the car trajectory picture (every scoring episode, a title naming the run, a legend of outcomes).

Offline tests run the CLI as a process; HTTP ones use the `service` fixture (tests/conftest.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL", "ARENA_URL", "ARENA_DATA_DIR", "ARENA_API_HOST", "ARENA_API_PORT")


def environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in SERVICE_VARIABLES}


def arena(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arena", *args], capture_output=True, text=True, timeout=timeout, env=environment(), cwd=ROOT)


# --- offline ----------------------------------------------------------------------------------------


def test_cli_modules_import_each_other_without_a_loop():
    """arena.cli is layered (errors, output, http, options, formats, progress, then the commands): no module
    imports, at its top or inside a function, one that imports it back, directly or through others."""
    import ast

    package = ROOT / "arena" / "cli"
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        name = "arena.cli" if path.stem == "__init__" else f"arena.cli.{path.stem}"
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "arena.cli":
                imported |= {f"arena.cli.{alias.name}" if (package / f"{alias.name}.py").exists() else "arena.cli" for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("arena.cli."):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names if alias.name.startswith("arena.cli")}
        graph[name] = imported - {name}

    def reaches(start: str, goal: str, seen: frozenset) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph.get(start, ()))

    assert {"arena.cli.errors", "arena.cli.http", "arena.cli.formats", "arena.cli.jobs"} <= set(graph)
    assert [name for name in graph if reaches(name, name, frozenset({name}))] == [], graph
    assert all("arena.cli" not in imported for name, imported in graph.items()), "a submodule imports the package's __init__"


def test_version():
    from arena import __version__

    result = arena("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"arena {__version__}"


def test_bare_arena_prints_help_and_exits_0():
    result = arena()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: arena")
    for command in ("train", "submit", "jobs", "cancel", "plot", "export", "demo"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command


def test_tasks_settings_fits_100_columns_and_shows_budgets_and_tuned_settings():
    result = arena("tasks", "--settings")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    text = result.stdout
    assert re.search(r"^xor, and, or, nand,\s+1M evals, 60 s\s+2-4-1 tanh/sigmoid\s+backprop: learning_rate=0\.03", text, re.M), text
    assert re.search(r"^car-oval\s+1M evals, 60 s\s+6-8-2 tanh/tanh\s+ppo:", text, re.M)
    assert "population_size" in text and "tournament" in text  # each algorithm's settings still follow


def test_train_takes_method_prefixed_settings_as_submit_does():
    result = arena("train", "--task", "xor", "--method", "ga", "--set", "ga.population_size=20", "--evaluations", "2000", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"]["population_size"] == 20
    assert_one_line_error(arena("train", "--task", "xor", "--method", "ga", "--set", "cmaes.sigma0=1"), "this run trains ga")


def test_submit_flag_mistakes_are_one_line_before_any_request():
    url = "http://127.0.0.1:9"
    assert_one_line_error(arena("submit", "--task", "xor", "--hidden-activation", "swish", "--url", url), "hidden_activation")
    assert_one_line_error(arena("export", "--curves", "--url", url), "--curves needs --format jsonl")
    assert_one_line_error(arena("plot", "3", "-o", "curves.pdf", "--url", url), ".png or .svg")
    assert_one_line_error(arena("jobs", "--task", "xr", "--url", url), "unknown task 'xr'")


def test_trajectory_picture_draws_every_scoring_episode_with_a_title_and_legend():
    from arena.tasks import make_task, task_info
    from arena.tasks.car.plot import png_text, plot_trajectories

    info = task_info("car-oval")
    architecture = info.default_architecture.model_dump(mode="json")
    weights = np.random.default_rng(1).normal(size=info.default_architecture.num_parameters)
    episodes = len(make_task("car-oval").eval_starts)
    assert episodes == 32

    title_info = {"method": "backprop (ppo)", "seed": 3, "run_id": 17, "score": 0.917}
    png = plot_trajectories("car-oval", weights, architecture, None, title_info=title_info)
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    facts = png_text(png)
    assert facts["Episodes"] == "32"
    assert sum(int(facts[k]) for k in ("Laps", "Crashes", "Timeouts", "Stalls")) == 32  # each episode in one legend entry
    for fragment in ("car-oval", "backprop (ppo)", "seed 3", "run 17", "score 0.917", "all 32 scoring episodes", "laps", "crashes", "time-outs"):
        assert fragment in facts["Title"], facts["Title"]

    # The positional call the API's child process makes still works; a sample says it is one.
    sample = png_text(plot_trajectories("car-oval", weights, architecture, None, episodes=8))
    assert sample["Episodes"] == "8" and "a sample: the first 8 of the 32" in sample["Title"]


# --- against a service --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_job(service) -> int:
    created = service.submit({"task": "xor", "seeds": [0, 1], "budget": {"evaluations": 20000}})
    service.wait_job(created["job_id"], timeout=120)
    return created["job_id"]


def _long_job(service, methods=("ga",)) -> int:
    body = {"task": "and", "methods": list(methods), "seeds": [0], "budget": {"seconds": 60, "stop_on_solve": False}}
    return service.submit(body)["job_id"]


def test_jobs_lists_status_and_progress_and_names_the_service(service, finished_job):
    result = arena("jobs", "--url", service.base_url)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    assert f"on the Arena service at {service.base_url} ({service.mode} mode" in header, header
    assert re.search(rf"^\s*{finished_job}\s+xor\s+succeeded\s+backprop,ga,cmaes\s+2\s+6/6\s+\[#+\]\s+100%", result.stdout, re.M), result.stdout
    page = json.loads(arena("jobs", "--task", "xor", "--status", "succeeded", "--json", "--url", service.base_url).stdout)
    assert finished_job in [job["id"] for job in page["jobs"]]
    assert all(job["task"] == "xor" and job["status"] == "succeeded" for job in page["jobs"])


def test_cancel_a_finished_job_is_one_line_and_a_running_one_is_cancelled(service, finished_job):
    assert_one_line_error(arena("cancel", str(finished_job), "--url", service.base_url), f"job {finished_job} already finished (succeeded)")
    assert_one_line_error(arena("cancel", "987654", "--url", service.base_url), "job 987654 not found")
    job_id = _long_job(service)
    result = arena("cancel", str(job_id), "--url", service.base_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"job {job_id}: ") and "cancel requested" in result.stdout
    assert service.wait_job(job_id, timeout=30)["status"] == "cancelled"


@pytest.mark.parametrize("cancel_flag", [False, True])
def test_ctrl_c_during_submit_wait(service, cancel_flag):
    args = ["submit", "--task", "and", "--method", "ga", "--seed", "0", "--seconds", "60", "--no-stop-on-solve", "--wait", "--url", service.base_url]
    if cancel_flag:
        args.append("--cancel-on-interrupt")
    process = subprocess.Popen([sys.executable, "-m", "arena", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(), cwd=ROOT)
    try:
        first = process.stdout.readline()
        job_id = int(re.match(r"job (\d+): and, 1 runs on the Arena service at ", first).group(1))
        time.sleep(1.0)  # inside the waiting loop
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    if cancel_flag:
        assert f"job {job_id} cancelled" in err, err
        assert service.wait_job(job_id, timeout=30)["status"] == "cancelled"
    else:
        assert f"job {job_id} keeps running" in err and f"`arena cancel {job_id}`" in err, err
        assert service.job(job_id)["status"] in ("queued", "running")
        assert arena("cancel", str(job_id), "--url", service.base_url).returncode == 0
        service.wait_job(job_id, timeout=30)


def test_submit_takes_the_train_vocabulary(service):
    result = arena(
        "submit", "--task", "and", "--method", "ga", "--seed", "5", "--set", "population_size=20", "--hidden", "3",
        "--hidden-activation", "relu", "--output-activation", "sigmoid", "--evaluations", "2000", "--url", service.base_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = service.job(int(result.stdout.strip()))
    assert job["methods"] == ["ga"] and job["seeds"] == [5]
    spec = service.client.get(f"/runs/{job['runs'][0]['id']}").json()["spec"]
    assert spec["settings"]["population_size"] == 20
    assert spec["architecture"]["hidden_sizes"] == [3] and spec["architecture"]["hidden_activation"] == "relu"
    assert spec["architecture"]["output_activation"] == "sigmoid"
    service.wait_job(job["id"], timeout=60)


def test_runs_csv_and_export(service, finished_job, tmp_path):
    response = service.client.get("/runs.csv", params={"job": finished_job})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 6
    assert sorted((r["method"], r["seed"]) for r in rows) == [(m, s) for m in ("backprop", "cmaes", "ga") for s in ("0", "1")]
    for row in rows:
        assert row["job_id"] == str(finished_job) and row["task"] == "xor" and row["status"] == "succeeded"
        assert row["budget_evaluations"] == "20000" and row["network"] == "2-4-1 tanh/sigmoid"
        assert isinstance(json.loads(row["settings"]), dict) and json.loads(row["settings"])
        assert float(row["cpu_seconds"]) > 0 and row["solved"] in ("true", "false") and float(row["score"]) >= 0
    assert service.client.get("/runs.csv", params={"job": finished_job, "status": "failed"}).text.count("\n") == 1  # header only
    assert service.client.get("/runs.csv", params={"task": "xr"}).status_code == 404

    out = tmp_path / "runs.csv"
    result = arena("export", "--job", str(finished_job), "-o", str(out), "--url", service.base_url)
    assert result.returncode == 0, result.stderr
    assert "6 runs written to" in result.stderr
    assert out.read_text() == response.text

    piped = arena("export", "--task", "xor", "--status", "succeeded", "--url", service.base_url)
    exported = list(csv.DictReader(io.StringIO(piped.stdout)))
    assert {row["run_id"] for row in rows} <= {row["run_id"] for row in exported}


def test_export_jsonl_with_curves(service, finished_job, tmp_path):
    out = tmp_path / "runs.jsonl"
    result = arena("export", "--job", str(finished_job), "--curves", "-o", str(out), "--url", service.base_url)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6
    for record in records:
        assert isinstance(record["settings"], dict) and record["architecture"]["hidden_sizes"] == [4]
        assert record["curve"] and {"evaluations", "seconds", "score"} <= set(record["curve"][0])
    plain = [json.loads(line) for line in arena("export", "--job", str(finished_job), "--format", "jsonl", "--url", service.base_url).stdout.splitlines()]
    assert len(plain) == 6 and all("curve" not in record for record in plain)


def test_plot_writes_the_job_curves(service, finished_job, tmp_path):
    png = tmp_path / "curves.png"
    result = arena("plot", str(finished_job), "-o", str(png), "--url", service.base_url)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    svg = tmp_path / "curves.svg"
    written = json.loads(arena("plot", str(finished_job), "-o", str(svg), "--json", "--url", service.base_url).stdout)
    assert written["format"] == "svg" and written["bytes"] == svg.stat().st_size and b"<svg" in svg.read_bytes()[:2000]
    assert_one_line_error(arena("plot", "987654", "-o", str(png), "--url", service.base_url), "job 987654 not found")
    assert png.read_bytes().startswith(b"\x89PNG")  # a failed request leaves the earlier file alone


def test_unreachable_service_is_one_line_for_the_new_commands():
    url = "http://127.0.0.1:9"
    for args in (("jobs",), ("cancel", "1"), ("plot", "1"), ("export",)):
        assert_one_line_error(arena(*args, "--url", url), f"cannot reach the Arena service at {url}")
