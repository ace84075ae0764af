"""The production stack for real: docs/operations.md's compose commands, run end to end (issue 21).

It starts `dockerd` itself when none answers (and stops it at the end), builds the images (from local
stand-ins, docker/standins/build.sh, when no container registry answers; the torch CPU wheel from this
machine's wheelhouse when there is one), brings the whole stack up with the documented commands, then:

- creates an API key with `docker compose run --rm api arena keys create`, is refused without it (401) and
  accepted with it (202), and runs a job over HTTP;
- scales `worker-ga` to 3, kills a worker container that holds a running batch (SIGKILL to the container's
  PID 1: what the OOM killer or a crash does; it comes back by its restart policy) and restarts Redis, both
  mid-job; every run finishes, and each is recorded exactly once (the workers' "recorded" lines);
- takes the stack down and up again: every job, run and the key are still there, and the key still works.

Every assertion is a count or a state, never a wall-clock bound; the phases' times are printed (the stage's
budget is in docs/operations.md). Docker's build cache and the stand-in images are kept, so a second run on
the same machine skips every build step; containers, networks and volumes of the test's compose project are
removed. Needs root, `dockerd` and a compose client (.ci/run installs Debian's docker.io, docker-compose and
debootstrap); ARENA_DOCKER_STACK=0 skips it.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import http.server
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "arena-stack-test"
TERMINAL = ("succeeded", "failed", "cancelled")
TORCH_WHEEL = "torch-2.13.0+cpu-*.whl"  # pyproject.toml's pin, CPU build

pytestmark = pytest.mark.skipif(
    os.environ.get("ARENA_DOCKER_STACK") == "0" or shutil.which("dockerd") is None or os.geteuid() != 0
    or not (shutil.which("docker-compose") or shutil.which("docker")),
    reason="needs root, dockerd and a compose client (ARENA_DOCKER_STACK=0 skips it)",
)  # fmt: skip

PHASES: dict[str, float] = {}  # phase -> seconds, printed at the end


@contextlib.contextmanager
def phase(name: str):
    started = time.monotonic()
    try:
        yield
    finally:
        PHASES[name] = time.monotonic() - started
        print(f"[docker stack] {name}: {PHASES[name]:.1f} s")


def docker(*args: str, check: bool = True, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def daemon_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def docker_daemon(tmp_path_factory):
    """A Docker daemon: the running one, or one this module starts and stops (with the containerd it starts)."""
    if daemon_answers():
        yield
        return
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with open(log, "w") as out:
        daemon = subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: daemon.poll() is not None or daemon_answers(), 120, interval=0.5, message="dockerd to answer")
        assert daemon.poll() is None, log.read_text()[-3000:]
        yield
    finally:
        daemon.send_signal(signal.SIGTERM)  # stops its containers' shims and its containerd too
        try:
            daemon.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(30)


def bridge_address() -> str:
    """The host's address on Docker's default bridge: what a build container reaches the host by."""
    done = docker("network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}")
    return done.stdout.strip() or "172.17.0.1"


def wheelhouse() -> str | None:
    """A folder holding the torch CPU wheel the worker image pins (this machine's pip find-links), if any."""
    for folder in [*os.environ.get("PIP_FIND_LINKS", "").split(), "/opt/wheels"]:
        if os.path.isdir(folder) and glob.glob(os.path.join(folder, TORCH_WHEEL)):
            return folder
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


WHEELHOUSE_PORT = 8765  # fixed: the URL is a build argument, and a new URL would miss Docker's build cache


@contextlib.contextmanager
def serve_folder(folder: str, host: str):
    """Serve `folder` over HTTP on `host` for the image build (the legacy builder cannot mount a folder)."""
    handler = functools.partial(_QuietHandler, directory=folder)
    try:
        server = http.server.ThreadingHTTPServer((host, WHEELHOUSE_PORT), handler)
    except OSError:  # the port is taken: any other (the layers that use it are rebuilt)
        server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class Stack:
    """docker-compose.yml under a project name of its own, with its variables in an env file of its own (the
    user's `.env` beside the file is not read), driven with the client this machine has."""

    def __init__(self, env_file: Path, environ: dict[str, str], port: int):
        if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
            self.client = ["docker", "compose"]
        else:
            self.client = ["docker-compose"]
        self.base = [*self.client, "--env-file", str(env_file), "-p", PROJECT, "-f", str(ROOT / "docker-compose.yml")]
        self.environ = environ
        self.url = f"http://127.0.0.1:{port}"

    def __call__(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout, env=self.environ, cwd=ROOT)
        if check and done.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def containers(self, service: str) -> list[str]:
        """Full ids of the service's containers, running or not."""
        return self("ps", "-q", service).stdout.split()

    def wait_healthy(self) -> None:
        def healthy():
            try:
                return httpx.get(f"{self.url}/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 240, interval=1, message="the API's /health")

    def logs(self, *services: str) -> str:
        return self("logs", "--no-color", *services).stdout


@pytest.fixture(scope="module")
def stack(docker_daemon, tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_") and k != "POSTGRES_PASSWORD"}
    port = free_port()
    variables = {"POSTGRES_PASSWORD": "stack-test-password", "ARENA_PORT": str(port)}
    with contextlib.ExitStack() as cleanup:
        with phase("stand-ins"):
            # The upstream images, or stand-ins built from Debian's packages where no registry answers.
            if docker("pull", "-q", "python:3.11-slim", check=False, timeout=120).returncode != 0:
                built = subprocess.run([str(ROOT / "docker/standins/build.sh")], capture_output=True, text=True, timeout=900)
                assert built.returncode == 0, built.stderr[-3000:]
                variables.update(re.findall(r"^export (ARENA_[A-Z_]+)=(.*)$", built.stdout, re.M))
        folder_with_torch = wheelhouse()
        if folder_with_torch:  # the wheel on this disk: no download of torch, whichever index answers
            address = bridge_address()
            variables.update(ARENA_TORCH_INDEX_URL="", ARENA_PIP_FIND_LINKS=cleanup.enter_context(serve_folder(folder_with_torch, address)), ARENA_PIP_TRUSTED_HOST=address)
        certificates = sorted(glob.glob("/usr/local/share/ca-certificates/**/*.crt", recursive=True))
        if certificates:  # authorities this host trusts beyond Debian's (an HTTPS proxy's): the build needs them too
            variables["ARENA_CA_CERTIFICATES"] = "\n".join(Path(path).read_text().strip() for path in certificates)
        env_file = folder / "stack.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items() if "\n" not in v))
        environ.update({k: v for k, v in variables.items() if "\n" in v})  # compose's env file is one line a variable
        compose = Stack(env_file, environ, port)
        cleanup.callback(lambda: compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False))
        with phase("build"):
            compose("build")
        with phase("up"):
            compose("up", "-d")  # docs/operations.md: `docker compose up -d --build` (built just above)
            compose.wait_healthy()
        yield compose


def submit(compose: Stack, key: str | None, body: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{compose.url}/jobs", json=body, headers=headers, timeout=60)


def job(compose: Stack, key: str, job_id: int) -> dict:
    response = httpx.get(f"{compose.url}/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_job(compose: Stack, key: str, job_id: int, timeout: float = 600) -> dict:
    return wait_for(lambda: (current := job(compose, key, job_id))["status"] in TERMINAL and current, timeout, interval=1, message=f"job {job_id} to finish")


def recorded_counts(log: str) -> dict[int, int]:
    """run id -> how many times a worker recorded it (one line per completion that changed the ledger)."""
    counts: dict[int, int] = {}
    for run_id in re.findall(r"run (\d+) attempt \d+ recorded", log):
        counts[int(run_id)] = counts.get(int(run_id), 0) + 1
    return counts


STATE: dict = {}  # what the phases hand on: the key, the jobs


def test_a_key_from_the_documented_command_and_a_job_over_http(stack):
    with phase("key and first job"):
        created = stack("run", "--rm", "api", "arena", "keys", "create", "ci")
        key = created.stdout.strip().splitlines()[-1]
        body = {"task": "xor", "methods": ["ga", "cmaes", "backprop"], "seeds": 2, "budget": {"evaluations": 20_000}}
        assert submit(stack, None, body).status_code == 401
        accepted = submit(stack, key, body)
        assert accepted.status_code == 202, accepted.text
        first = wait_job(stack, key, accepted.json()["job_id"])
        assert first["status"] == "succeeded" and len(first["runs"]) == 6, first
        assert {run["method"] for run in first["runs"]} == {"ga", "cmaes", "backprop"}
        STATE.update(key=key, jobs=[first["id"]])


def test_a_worker_container_killed_and_redis_restarted_mid_job_lose_and_duplicate_nothing(stack):
    key = STATE["key"]
    with phase("scale worker-ga to 3"):
        stack("up", "-d", "--scale", "worker-ga=3")  # the documented scaling command
        assert len(stack.containers("worker-ga")) == 3
    with phase("kill a worker container and restart Redis mid-job"):
        # Two batches of 15 (GA seeds are sent in batches); long enough to be killed mid-way.
        body = {"task": "xor", "methods": ["ga"], "seeds": 30, "budget": {"evaluations": 400_000, "stop_on_solve": False}}
        accepted = submit(stack, key, body)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]

        def a_running_run():
            runs = job(stack, key, job_id)["runs"]
            running = [r for r in runs if r["status"] == "running" and (r["progress_evaluations"] or 0) > 0]
            return running and running[0]

        victim_run = wait_for(a_running_run, 240, interval=0.5, message="a run to be mid-way")
        detail = httpx.get(f"{stack.url}/runs/{victim_run['id']}", timeout=30).json()
        hostname = detail["worker"].split("@", 1)[1]  # ga@<container hostname: its short id>
        victim = next(cid for cid in stack.containers("worker-ga") if cid.startswith(hostname))
        restarts_before = int(docker("inspect", "-f", "{{.RestartCount}}", victim).stdout)
        init_pid = int(docker("inspect", "-f", "{{.State.Pid}}", victim).stdout)
        os.kill(init_pid, signal.SIGKILL)  # the container's PID 1 dies: the container exits (a crash, not `docker kill`)
        stack("restart", "redis")
        finished = wait_job(stack, key, job_id, timeout=900)
    assert finished["status"] == "succeeded", [(r["id"], r["status"]) for r in finished["runs"]]
    assert len(finished["runs"]) == 30
    counts = recorded_counts(stack.logs("worker-ga"))
    assert {run["id"]: counts.get(run["id"], 0) for run in finished["runs"]} == {run["id"]: 1 for run in finished["runs"]}
    assert any(run["attempts"] >= 2 for run in finished["runs"] if run["id"] == victim_run["id"])
    # The killed container came back by its restart policy, and is running.
    assert int(docker("inspect", "-f", "{{.RestartCount}}", victim).stdout) > restarts_before
    assert docker("inspect", "-f", "{{.State.Running}}", victim).stdout.strip() == "true"
    STATE["jobs"].append(job_id)


def test_down_and_up_keep_every_job_run_and_key(stack):
    key = STATE["key"]
    before = {job_id: job(stack, key, job_id) for job_id in STATE["jobs"]}
    with phase("down and up"):
        stack("down", "--timeout", "30")  # volumes kept
        assert stack.containers("api") == []
        stack("up", "-d")
        stack.wait_healthy()
    for job_id, old in before.items():
        new = job(stack, key, job_id)
        assert new["status"] == old["status"] == "succeeded"
        assert [(r["id"], r["status"], r["score"], r["attempts"]) for r in new["runs"]] == [(r["id"], r["status"], r["score"], r["attempts"]) for r in old["runs"]]
    with phase("a job after down and up"):
        again = submit(stack, key, {"task": "xor", "methods": ["ga"], "seeds": 1, "budget": {"evaluations": 20_000}})
        assert again.status_code == 202, again.text  # the key persisted
        assert wait_job(stack, key, again.json()["job_id"])["status"] == "succeeded"
    print("[docker stack] phases: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in PHASES.items()))
