"""docker-compose.yml and the Dockerfile agree with the code: the variables the settings module reads, the
`arena` subcommands that exist, the Celery queues, the pins in pyproject.toml, and the two images (the API's
without torch, yet with every package an API process imports).

No Docker engine runs here, so these tests read the files (the images are not built); `docker compose config`
(or Debian's docker-compose) validates the file too when a client is installed.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from arena.cli import build_parser
from arena.cli import local as service_cli
from arena.store.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ARENA_SERVICES = {name: spec for name, spec in SERVICES.items() if spec.get("image", "").startswith("arena")}
DOCKERFILE = (ROOT / "Dockerfile").read_text()
WORKERS = {name: spec for name, spec in ARENA_SERVICES.items() if name.startswith("worker-")}


def settings_variables() -> set[str]:
    """Every environment variable name Settings reads."""
    names = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        names.add(alias if isinstance(alias, str) else name.upper())
    return names


TEST_PASSWORD = "p@ss:w/rd%1"  # what a user's .env might hold: characters a URL would need escaped


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the default; the required POSTGRES_PASSWORD: a test one."""
    value = re.sub(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", TEST_PASSWORD, str(value))
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def environment(spec: dict) -> dict[str, str]:
    env = spec.get("environment", {})
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(value) for key, value in env.items()}


def celery_queues() -> set[str]:
    from arena.workers.app import app

    queues = app.conf.task_queues
    if queues:
        return {queue.name for queue in queues}
    return {route["queue"] for route in (app.conf.task_routes or {}).values() if isinstance(route, dict)}


def test_the_expected_services_exist():
    assert {"postgres", "redis", "migrate", "api", "worker-backprop", "worker-ga", "worker-cmaes"} <= set(SERVICES)


def test_arena_services_set_only_variables_the_settings_module_reads():
    known = settings_variables() | {"PGPASSWORD"}  # libpq's own: the password stays out of the URL
    for name, spec in ARENA_SERVICES.items():
        unknown = set(environment(spec)) - known
        assert not unknown, f"{name} sets {sorted(unknown)}, which arena/service/settings.py does not read"


def test_arena_services_use_postgres_and_redis():
    for name, spec in ARENA_SERVICES.items():
        env = environment(spec)
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in env["DATABASE_URL"], name
        assert env["BROKER_URL"] == "redis://redis:6379/0", name


def test_each_service_environment_makes_valid_settings(monkeypatch):
    for name, spec in ARENA_SERVICES.items():
        for variable in settings_variables():
            monkeypatch.delenv(variable, raising=False)
        for key, value in environment(spec).items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert not settings.embedded, name
        assert settings.database_url == environment(spec)["DATABASE_URL"]


def test_the_postgres_credentials_match_the_database_url():
    postgres = environment(SERVICES["postgres"])
    for name, spec in ARENA_SERVICES.items():
        env = environment(spec)
        assert env["DATABASE_URL"] == f"postgresql+psycopg://{postgres['POSTGRES_USER']}@postgres:5432/{postgres['POSTGRES_DB']}", name
        assert env["PGPASSWORD"] == postgres["POSTGRES_PASSWORD"] == TEST_PASSWORD, name


def test_the_password_is_required_and_the_api_is_published_on_loopback():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD:-" not in text  # no default password that --scale could silently change
    assert SERVICES["api"]["ports"][0].startswith("${ARENA_BIND:-127.0.0.1}:")
    assert "-h 127.0.0.1" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])  # over TCP
    for spec in [SERVICES["api"], *WORKERS.values()]:
        assert spec["deploy"]["resources"]["limits"]["memory"]


def test_commands_are_real_arena_subcommands():
    parser = build_parser()
    expected_handler = {
        "migrate": service_cli.migrate_command,
        "api": service_cli.api_command,
        "worker-backprop": service_cli.worker_command,
        "worker-ga": service_cli.worker_command,
    }
    for name, handler in expected_handler.items():
        command = SERVICES[name]["command"]
        assert command[0] == "arena", name
        args = parser.parse_args(command[1:])  # argparse exits on an unknown subcommand or option
        assert args.handler is handler, name


def test_workers_serve_the_celery_queues_one_each():
    parser = build_parser()
    queues = {}
    for name, spec in WORKERS.items():
        args = parser.parse_args(spec["command"][1:])
        queues[name] = args.queue
        assert name == f"worker-{args.queue}"
        assert args.concurrency == 1 and args.pool == "prefork"
        # The health check pings the node name the worker was given (Celery's %h is the container's
        # host name; `$$` is compose's escape for a `$` the container's shell expands).
        assert args.name == f"{args.queue}@%h"
        assert f"--destination {args.queue}@$$HOSTNAME" in " ".join(spec["healthcheck"]["test"])
    assert set(queues.values()) == celery_queues() == set(service_cli.QUEUES)


def test_workers_can_be_scaled():
    for name, spec in WORKERS.items():
        assert "container_name" not in spec, f"{name}: a fixed container name prevents --scale"
        assert "ports" not in spec, f"{name}: a published port prevents --scale"


def test_start_order_waits_for_health_and_migration():
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in SERVICES[name], name
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["migrate"].get("restart") == "no"
    for name in ("api", *WORKERS):
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_postgres_keeps_its_data_in_a_named_volume():
    volume = SERVICES["postgres"]["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"]


def test_the_api_listens_on_the_published_port():
    api = SERVICES["api"]
    env = environment(api)
    assert env["ARENA_API_HOST"] == "0.0.0.0"
    published = interpolate(api["ports"][0])
    assert published.endswith(f":{env['ARENA_API_PORT']}")
    assert f":{env['ARENA_API_PORT']}/health" in " ".join(api["healthcheck"]["test"])


def dockerfile_stages() -> dict[str, tuple[str, str]]:
    """{stage name: (what it is built FROM, its instructions)} of the multi-stage Dockerfile."""
    stages = {}
    for block in re.split(r"^(?=FROM )", DOCKERFILE, flags=re.M)[1:]:
        parent, name = re.match(r"FROM (\S+) AS (\S+)", block).groups()
        stages[name] = (parent, block)
    return stages


def stage_text(name: str) -> str:
    """A stage's instructions with those of every stage it is built from: what its image holds."""
    stages = dockerfile_stages()
    text = ""
    while name in stages:
        name, block = stages[name]
        text = block + text
    return text


def test_dockerfile_pins_the_same_torch_as_the_project():
    pyproject = (ROOT / "pyproject.toml").read_text()
    # The base image and torch's index are build arguments whose defaults are the normal build.
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim\nFROM \$\{PYTHON_IMAGE\} AS base", DOCKERFILE, re.M)
    torch_pin = re.search(r'"torch==([^"]+)"', pyproject).group(1)
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in stage_text("worker")
    assert f'torch=={torch_pin} ${{TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}}' in stage_text("worker")
    # The migrations ship inside the package; both images carry the package.
    assert (ROOT / "arena" / "migrations" / "env.py").exists()
    for target in ("api", "worker"):
        assert "COPY arena ./arena" in dockerfile_stages()[target][1], target


def test_the_api_and_the_migration_use_the_api_image_and_workers_the_worker_image():
    assert {"api", "worker"} <= set(dockerfile_stages())
    assert list(dockerfile_stages())[-1] == "worker"  # a bare `docker build .`: the full image
    build_args = COMPOSE["x-arena-build-args"]  # every image is built with the same arguments
    for name in ("api", "migrate"):
        assert SERVICES[name]["build"] == {"context": ".", "target": "api", "args": build_args}, name
    for name, spec in WORKERS.items():
        assert spec["build"] == {"context": ".", "target": "worker", "args": build_args}, name
    images = {name: spec["image"] for name, spec in ARENA_SERVICES.items()}
    assert len({images["api"], images["migrate"]} & {images[name] for name in WORKERS}) == 0  # one tag, one target


# --- the API image: no torch, and everything an API process imports --------------------------------

WORKER_ONLY = {"torch", "pygad", "cma", "gymnasium"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def api_requirements() -> list[str]:
    """The requirement lines the api stage installs, computed by the stage's own command (the `python -c`
    script of its RUN line, with its WORKER_ONLY argument) from this pyproject.toml."""
    text = stage_text("api")
    script = re.search(r"RUN python -c '([^']+)' \$WORKER_ONLY > api-requirements\.txt", text).group(1)
    worker_only = re.search(r'^ARG WORKER_ONLY="([^"]+)"', text, re.M).group(1).split()
    assert set(worker_only) == WORKER_ONLY
    assert "pip install -r api-requirements.txt" in text and "pip install --no-deps -e ." in text
    done = subprocess.run([sys.executable, "-c", script, *worker_only], cwd=ROOT, capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if line.strip()]


def installed_closure(requirements: list[str]) -> set[str]:
    """The distributions those requirements install, with what they require in turn (extras and markers
    honoured), read from this environment's installed metadata: what pip would install in the image."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    pending = [(Requirement(line), ()) for line in requirements]
    while pending:
        requirement, _ = pending.pop()
        name = normalise(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue  # required only on other platforms: never imported here either
        for line in requires:
            child = Requirement(line)
            extras = [""] + sorted(requirement.extras)
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append((child, ()))
    return {name for name in seen if "[" not in name}


def api_site_packages(directory: Path) -> Path:
    """A site-packages holding only what the api stage installs: links to the files of the distributions in
    `installed_closure(api_requirements())`, their metadata included. A Python started with `-S` (no site)
    and this directory and the project on PYTHONPATH sees what a process in the api image sees."""
    closure = installed_closure(api_requirements())
    directory.mkdir()
    for dist in importlib.metadata.distributions():
        if normalise(dist.metadata["Name"]) not in closure:
            continue
        for file in dist.files or ():
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue  # scripts, caches, start-up hooks: not importable
            source, target = Path(dist.locate_file(top)), directory / top
            if source.exists() and not target.is_symlink():
                target.symlink_to(source)
    return directory


# `arena migrate`, `arena keys create`, then `arena api` (uvicorn, in a thread) answering every kind of request,
# against PostgreSQL and Redis as in compose; prints each loaded module's file.
_API_PROCESS = """
import json, sys, threading, time
import httpx
from arena.cli import main
from arena.models.architecture import Architecture
from arena.store import queries
from arena.store.db import session_scope
from arena.store.tables import utcnow

assert main(["migrate"]) == 0
assert main(["keys", "create", "probe"]) == 0
port = sys.argv[1]
threading.Thread(target=main, args=(["api", "--port", port],), daemon=True).start()
client = httpx.Client(base_url="http://127.0.0.1:" + port, timeout=120)
for _ in range(600):
    try:
        if client.get("/health").status_code == 200:
            break
    except httpx.HTTPError:
        pass
    time.sleep(0.1)
else:
    raise SystemExit("the API did not come up")
created = client.post("/jobs", json={"task": "xor", "methods": ["ga", "cmaes"], "seeds": 3, "budget": {"evaluations": 1000}}).json()
car = client.post("/jobs", json={"task": "car-oval", "methods": ["ga"], "seeds": 1, "task_options": {"track": "hard"}}).json()
pending = client.post("/jobs", json={"task": "xor", "methods": ["ga"], "seeds": 1}).json()  # left queued: cancelled below
with session_scope() as session:  # finished runs, so that the statistics run (recorded as a worker would)
    for index, run_id in enumerate(created["run_ids"] + car["run_ids"]):
        claim = queries.claim_run(session, run_id, "probe", utcnow(), 3)
        result = {"score": 0.1, "solved": index % 2 == 0, "evaluations": 1000, "evaluations_to_solve": 500 if index % 2 == 0 else None,
                  "seconds": 0.1, "cpu_seconds": 0.1, "stopped": "budget", "curve": [{"evaluations": 1000, "seconds": 0.1, "score": 0.1}],
                  "weights": [0.1] * Architecture.model_validate(claim.spec["architecture"]).num_parameters}
        queries.record_result(session, run_id, claim.attempt, "succeeded", result=result)
job, run, car_run = created["job_id"], created["run_ids"][0], car["run_ids"][0]
statuses = {}
for path in ["/", "/ui/jobs/1", "/docs", "/redoc", "/openapi.json", "/static/vendor/uplot/uPlot.iife.min.js", "/tasks", "/jobs",
             f"/jobs/{job}", f"/jobs/{job}/comparison", f"/jobs/{job}/curves.json", f"/jobs/{job}/curves.png", f"/jobs/{job}/curves.svg",
             f"/runs/{run}", f"/runs/{run}/weights", f"/runs/{run}/predictions", f"/runs/{car_run}", f"/runs/{car_run}/trajectory.png",
             f"/runs/{car_run}/episodes.json", "/leaderboard?task=xor", "/leaderboard?task=car-oval", "/summary", f"/summary?jobs={job}",
             "/runs.csv", "/runs.jsonl?curves=1"]:
    statuses[path] = client.get(path).status_code
statuses["cancel"] = client.post(f"/jobs/{pending['job_id']}/cancel").status_code
modules = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
print(json.dumps({"statuses": statuses, "modules": modules}))
"""
_BARE_PROCESS = "import json, sys; print(json.dumps(sorted(sys.modules)))"


def test_the_api_stage_installs_no_training_library():
    closure = installed_closure(api_requirements())
    assert not closure & WORKER_ONLY, sorted(closure & WORKER_ONLY)  # neither asked for nor pulled in by a dependency
    for line in stage_text("api").splitlines():
        if "pip install" in line:
            assert not any(re.search(rf"\b{name}\b", line) for name in WORKER_ONLY), line
    # The worker stage has them: it installs the whole project.
    assert "pip install -e . " in dockerfile_stages()["worker"][1]  # with its dependencies (not --no-deps)


def test_the_api_stage_covers_every_module_an_api_process_imports(make_database, tmp_path):
    """The API, the migration and `arena keys`, run with only the api stage's packages importable, answer
    every route (the car renders: 404, not available in this build), and load nothing from elsewhere."""
    from conftest import _redis_database, free_port

    site = api_site_packages(tmp_path / "site-packages")
    database_url = make_database("postgresql")
    broker_url, flush = _redis_database()
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {**{k: v for k, v in os.environ.items() if k in keep}, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "DATABASE_URL": database_url,
           "BROKER_URL": broker_url, "ARENA_DATA_DIR": str(tmp_path), "MPLCONFIGDIR": str(tmp_path)}  # fmt: skip
    python = [sys.executable, "-S"]  # no site: the virtual environment's site-packages is not on the path
    try:
        done = subprocess.run([*python, "-c", _API_PROCESS, str(free_port())], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        flush()
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    statuses, loaded = report["statuses"], report["modules"]
    assert all(status < 500 for status in statuses.values()), statuses
    assert statuses["/jobs"] == statuses["/runs.csv"] == 200 and statuses["cancel"] == 200, statuses
    trajectory = next(status for path, status in statuses.items() if path.endswith("/trajectory.png"))
    assert trajectory == 404, statuses  # renders need torch: refused in words, not a failed child process
    assert not {name.split(".")[0] for name in loaded} & WORKER_ONLY

    bare = set(json.loads(subprocess.run([*python, "-c", _BARE_PROCESS], env=env, capture_output=True, text=True, check=True).stdout))
    stdlib = {Path(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")}
    elsewhere, third_party = [], set()
    for name, file in loaded.items():
        if name in bare or file is None:
            continue  # loaded before the first line, built in, or made at run time (Cython's, a namespace package)
        path = Path(file)
        if path.is_relative_to(site):
            third_party.add(path.relative_to(site).parts[0])
        elif not path.is_relative_to(ROOT / "arena") and not any(path.is_relative_to(root) for root in stdlib):
            elsewhere.append(f"{name}: {file}")
    assert not elsewhere, elsewhere  # every module came from the api stage's packages, the standard library or Arena
    assert {"fastapi", "uvicorn", "sqlalchemy", "psycopg", "celery", "redis", "scipy", "matplotlib", "alembic"} <= third_party  # it ran


def compose_client() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def compose_config(tmp_path, **variables) -> subprocess.CompletedProcess:
    """`compose config` on docker-compose.yml with exactly `variables` set: a real empty env file stands in for
    the user's `.env` (which compose reads beside the file; Debian's 1.29 refuses `--env-file /dev/null`), and
    the caller's own POSTGRES_PASSWORD and ARENA_* variables are left out."""
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    command = [*compose_client(), "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"), "config"]
    environ = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD" and not k.startswith("ARENA_")}
    return subprocess.run(command, capture_output=True, text=True, env={**environ, **variables}, cwd=tmp_path)


@pytest.mark.skipif(compose_client() is None, reason="no docker compose client installed")
def test_compose_validates_the_file(tmp_path):
    result = compose_config(tmp_path, POSTGRES_PASSWORD=TEST_PASSWORD)
    assert result.returncode == 0, result.stderr
    refused = compose_config(tmp_path)  # whatever .env the user has beside the file
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr


@pytest.mark.skipif(compose_client() is None, reason="no docker compose client installed")
def test_upstream_images_and_package_indexes_are_variables_with_todays_defaults(tmp_path):
    """The normal user changes nothing (python:3.11-slim, PyTorch's CPU index, postgres:16-alpine, redis:7-alpine);
    a machine without a registry swaps each for a stand-in by a variable (docs/operations.md)."""
    default = yaml.safe_load(compose_config(tmp_path, POSTGRES_PASSWORD=TEST_PASSWORD).stdout)["services"]
    assert default["postgres"]["image"] == "postgres:16-alpine" and default["redis"]["image"] == "redis:7-alpine"
    for name in ("migrate", "api", *WORKERS):
        args = default[name]["build"]["args"]
        assert args["PYTHON_IMAGE"] == "python:3.11-slim", name
        assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu", name
        assert args["PIP_FIND_LINKS"] == args["CA_CERTIFICATES"] == "", name
    stand_ins = {
        "ARENA_PYTHON_IMAGE": "arena-standin/python:3.11", "ARENA_POSTGRES_IMAGE": "arena-standin/postgres:15",
        "ARENA_REDIS_IMAGE": "arena-standin/redis:7", "ARENA_TORCH_INDEX_URL": "", "ARENA_PIP_FIND_LINKS": "http://172.17.0.1:8765/",
        "ARENA_CA_CERTIFICATES": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    }  # fmt: skip
    local = yaml.safe_load(compose_config(tmp_path, POSTGRES_PASSWORD=TEST_PASSWORD, **stand_ins).stdout)["services"]
    assert local["postgres"]["image"] == "arena-standin/postgres:15" and local["redis"]["image"] == "arena-standin/redis:7"
    for name in ("migrate", "api", *WORKERS):
        args = local[name]["build"]["args"]
        assert args["PYTHON_IMAGE"] == "arena-standin/python:3.11" and args["TORCH_INDEX_URL"] == "", name  # set but empty: kept empty
        assert args["PIP_FIND_LINKS"] == "http://172.17.0.1:8765/" and "BEGIN CERTIFICATE" in args["CA_CERTIFICATES"], name
