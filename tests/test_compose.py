"""docker-compose.yml and the Dockerfile agree with the code: the variables the settings module reads, the
`arena` subcommands that exist, the Celery queues, and the pins in pyproject.toml.

No Docker engine runs here, so these tests read the files; `docker compose config` (or Debian's
docker-compose) validates the file too when a client is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from arena.cli import build_parser
from arena.cli import local as service_cli
from arena.service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ARENA_SERVICES = {name: spec for name, spec in SERVICES.items() if spec.get("image", "").startswith("arena")}
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


def test_dockerfile_pins_the_same_torch_as_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    torch_pin = re.search(r'"torch==([^"]+)"', pyproject).group(1)
    assert f"torch=={torch_pin} --index-url https://download.pytorch.org/whl/cpu" in dockerfile
    # The migrations ship inside the package; the image carries the package.
    assert (ROOT / "arena" / "migrations" / "env.py").exists()
    assert "COPY arena ./arena" in dockerfile


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)


def compose_client() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(compose_client() is None, reason="no docker compose client installed")
def test_compose_validates_the_file():
    command = [*compose_client(), "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "POSTGRES_PASSWORD": TEST_PASSWORD})
    assert result.returncode == 0, result.stderr
    without = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    refused = subprocess.run(command, capture_output=True, text=True, env=without, cwd="/")
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr
