"""The service commands as a user runs them: real processes, real HTTP, the embedded database and broker.

One `arena up` serves the whole module (starting it takes seconds); the last test stops it with SIGINT,
as Ctrl-C would, and checks that every process it started is gone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL", "ARENA_URL", "ARENA_DATA_DIR", "ARENA_API_HOST", "ARENA_API_PORT")


def clean_environment() -> dict[str, str]:
    """The embedded defaults whatever the developer's shell exports."""
    return {key: value for key, value in os.environ.items() if key not in SERVICE_VARIABLES}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def arena(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "arena", *args], capture_output=True, text=True, timeout=timeout, env=clean_environment(), cwd=ROOT
    )


class Output:
    """Collects a process's output lines in the background, so a test can wait for a line."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                match = re.search(pattern, line)
                if match:
                    return match
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n" + "\n".join(self.lines))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class Service:
    def __init__(self, process: subprocess.Popen, output: Output, url: str, port: int):
        self.process, self.output, self.url, self.port = process, output, url, port

    def children(self) -> dict[str, int]:
        """{name: pid} as `arena up` announced them (restarts append later lines: the last wins)."""
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"started (\S+)\s+pid (\d+)", self.output.text)}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("arena-up")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "arena", "up", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_environment(), cwd=ROOT,
    )  # fmt: skip
    output = Output(process.stdout)
    url = f"http://127.0.0.1:{port}"
    try:
        output.wait_for(r"Arena is up at", timeout=90)
        assert httpx.get(f"{url}/health", timeout=5).json()["mode"] == "embedded"
        yield Service(process, output, url, port)
    finally:
        if process.poll() is None:  # a test failed before the stop test ran
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_up_announces_the_api_and_one_worker_per_queue(service):
    from arena.methods import METHODS

    assert set(service.children()) == {"api", *(f"worker-{name}" for name in METHODS)}  # one per registered method
    assert (Path(service.output.wait_for(r"data and logs in ([^;]+);").group(1)) / "arena.db").exists()


def test_submit_wait_then_status_and_leaderboard(service):
    submitted = arena("submit", "--task", "xor", "--seeds", "3", "--evaluations", "50000", "--wait", "--url", service.url)
    assert submitted.returncode == 0, submitted.stderr
    job_id = re.search(r"^job (\d+): xor, 9 runs", submitted.stdout, re.M).group(1)
    for method in ("backprop", "ga", "cmaes"):  # the progress ends with every run of every method finished
        assert re.search(rf"^xor .*{method} \[#+\] 3/3 runs, \d solved", submitted.stdout, re.M), submitted.stdout
    result_rows = re.findall(r"^\s*\d+\s+(backprop|ga|cmaes)\s+(\d+)\s+succeeded\s", submitted.stdout, re.M)
    assert sorted(result_rows) == [(m, str(s)) for m in ("backprop", "cmaes", "ga") for s in range(3)]

    status = arena("status", job_id, "--url", service.url)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"job {job_id}: xor, succeeded")
    assert status.stdout.count("succeeded") == 10  # the job line and nine runs

    detail = json.loads(arena("status", job_id, "--json", "--url", service.url).stdout)
    assert detail["status"] == "succeeded" and len(detail["runs"]) == 9
    for run in detail["runs"]:
        assert run["evaluations"] <= 50000 + 10_000  # a run may overrun by one epoch or generation

    board = arena("leaderboard", "--task", "xor", "--url", service.url)
    assert board.returncode == 0, board.stderr
    assert board.stdout.startswith("xor: mse (lower is better)")
    ranked = re.findall(r"^([123])\s+(backprop|ga|cmaes)\s+2-4-1 50,000 evals\s+(\d)/3", board.stdout, re.M)
    assert sorted(method for _, method, _ in ranked) == ["backprop", "cmaes", "ga"], board.stdout
    board_json = json.loads(arena("leaderboard", "--task", "xor", "--json", "--url", service.url).stdout)
    assert {entry["method"] for entry in board_json["entries"]} == {"backprop", "ga", "cmaes"}


def test_submit_without_wait_prints_the_job_id_and_settings_reach_the_runs(service):
    submitted = arena(
        "submit", "--task", "and", "--methods", "ga", "--seed-list", "7,8", "--seconds", "5", "--no-stop-on-solve",
        "--set", "ga.population_size=30", "--hidden", "3", "--url", service.url,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert job_id.isdigit()
    job = httpx.get(f"{service.url}/jobs/{job_id}").json()
    assert job["seeds"] == [7, 8] and job["methods"] == ["ga"]
    run = httpx.get(f"{service.url}/runs/{job['runs'][0]['id']}").json()
    assert run["spec"]["settings"]["population_size"] == 30
    assert run["spec"]["architecture"]["hidden_sizes"] == [3]
    assert run["spec"]["budget"] == {"evaluations": None, "seconds": 5.0, "stop_on_solve": False}
    httpx.post(f"{service.url}/jobs/{job_id}/cancel")  # free the worker for the next tests


def test_a_job_the_api_refuses_is_one_line_with_its_reason(service):
    # Valid for the CLI's own checks, over the service's limit (ARENA_MAX_SEEDS_PER_JOB, 100 by default).
    assert_one_line_error(arena("submit", "--task", "xor", "--seeds", "101", "--url", service.url), "refused", "seeds", "ARENA_MAX_SEEDS_PER_JOB")


def test_an_unknown_job_is_one_line(service):
    assert_one_line_error(arena("status", "987654", "--url", service.url), "job 987654 not found")


def test_a_second_up_on_the_same_port_is_one_line(service, tmp_path):
    result = arena("up", "--data-dir", str(tmp_path), "--port", str(service.port), timeout=30)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{service.port}")


def test_a_worker_that_dies_is_restarted(service):
    old_pid = service.children()["worker-ga"]
    os.kill(old_pid, signal.SIGKILL)
    service.output.wait_for(r"worker-ga exited \(by SIGKILL\); restarting it \(1/3\)", timeout=10)
    service.output.wait_for(r"started worker-ga\s+pid (?!%d\b)\d+" % old_pid, timeout=10)
    assert service.children()["worker-ga"] != old_pid
    # The new worker serves its queue: a GA job finishes.
    submitted = arena("submit", "--task", "or", "--methods", "ga", "--seeds", "1", "--evaluations", "20000", "--wait", "--url", service.url)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr


def test_demo_uses_the_running_service_and_ends_with_one_verdict_table(service):
    from arena.cli.demo import DEMO_BUDGETS

    demo = arena("demo", "--seeds", "1", "--url", service.url, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.stdout.startswith(f"using the Arena service at {service.url}")
    assert {"xor", "parity-3", "full-adder"} <= set(DEMO_BUDGETS)
    table = demo.stdout[demo.stdout.index("\ntask ") :]
    for task in DEMO_BUDGETS:  # one row per task, with n = 1 seed, in the one table
        assert re.search(rf"^{re.escape(task)}\s+1\s", table, re.M), (task, table)
    assert "no detectable difference" in table  # one seed decides nothing
    assert "demo finished in" in demo.stdout and f"dashboard: {service.url}/" in demo.stdout
    assert "stopping the service" not in demo.stdout  # it did not start this one, so it leaves it running
    assert httpx.get(f"{service.url}/health").status_code == 200


def test_demo_starts_its_own_service_and_stops_it_once_its_jobs_are_done(tmp_path):
    import sqlite3

    port = free_port()
    demo = arena("demo", "--seeds", "2", "--data-dir", str(tmp_path), "--url", f"http://127.0.0.1:{port}", timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "starting one" in demo.stdout and "stopping the service the demo started" in demo.stdout
    # Its runs all finished, so its idle workers were stopped at once (killed), the API by SIGTERM.
    from arena.methods import METHODS

    for queue in METHODS:
        assert f"stopped worker-{queue} (idle)" in demo.stdout, demo.stdout
    with sqlite3.connect(tmp_path / "arena.db") as ledger:
        statuses = dict(ledger.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    assert statuses == {"succeeded": 2 * 3 * 9}, statuses  # 2 seeds x 3 methods x 9 tasks, none left running
    pids = [int(pid) for pid in re.findall(r"started \S+\s+pid (\d+)", demo.stdout)]
    assert len(pids) == 1 + len(METHODS)  # the API and one worker per registered method
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # neither the child nor any process of its group (a worker's pool) is left
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_sigint_stops_every_child_cleanly(service):
    children = service.children()
    service.process.send_signal(signal.SIGINT)
    assert service.process.wait(timeout=60) == 0, service.output.text
    service.output.wait_for(r"stopped cleanly", timeout=5)
    for name, pid in children.items():
        assert re.search(rf"stopped {name} \((exit code 0|by SIGTERM)\)", service.output.text), service.output.text
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # neither the child nor any process of its group (a worker's pool) is left
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{service.url}/health", timeout=2)


# --- mistakes that never reach a service ------------------------------------------------------------


def test_unknown_task_is_one_line():
    assert_one_line_error(arena("submit", "--task", "xr", "--url", "http://127.0.0.1:9"), "unknown task 'xr'", "did you mean 'xor'")


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ("ga.population=10", "unknown setting 'ga.population' (did you mean 'population_size'?)"),
        ("ga.population_size=many", "ga.population_size: Input should be a valid integer; got 'many'"),
        ("population_size", "--set wants METHOD.KEY=VALUE"),
        # KEY=VALUE alone goes to every method that has KEY (issue 18): accepted, so the next failure is the network
        ("population_size=30", "cannot reach the Arena service"),
        ("nes.sigma=1", "unknown method 'nes'"),
    ],
)
def test_bad_set_is_one_line(setting, fragment):
    assert_one_line_error(arena("submit", "--task", "xor", "--set", setting, "--url", "http://127.0.0.1:9"), fragment)


def test_unreachable_service_is_one_line():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert_one_line_error(arena("submit", "--task", "xor", "--url", url), f"cannot reach the Arena service at {url}")
    assert_one_line_error(arena("leaderboard", "--task", "xor", "--url", url), "cannot reach")


def test_argparse_mistakes_exit_2():
    result = arena("worker", "--queue", "nes")
    assert result.returncode == 2 and "invalid choice: 'nes'" in result.stderr
