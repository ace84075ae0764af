"""`arena demo`: the default comparison of every small task, on a running service or one it starts."""

from __future__ import annotations

import time

from arena.cli import UsageError
from arena.cli.client import ServiceClient, add_url, format_leaderboard, wait_for_jobs
from arena.cli.local import LocalService, service_settings
from arena.methods import METHODS


def register(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="compare every method on every small task and print the leaderboards (starts the service if needed)",
        description="Uses the service at --url if it answers; otherwise starts the embedded one (like `arena up`), "
        "and stops it at the end.",
    )
    demo.add_argument("--seeds", type=int, default=None, help="seeds per task (default: a few, so the demo takes minutes)")
    demo.add_argument("--data-dir", default=None, help="for the embedded service (default: ARENA_DATA_DIR or var)")
    demo.add_argument("--port", type=int, default=None, help="port of the embedded service, if started (default: the one in --url)")
    add_url(demo)
    demo.set_defaults(handler=demo_command)


DEMO_FAMILIES = ("logic", "function")  # the small tasks: gates, parity, full adder, functions
DEMO_SEEDS = 3
DEMO_SECONDS = 2.0  # per run: with one worker per queue on two cores, the whole demo stays within minutes


def demo_command(args) -> int:
    from arena.tasks import TASKS

    seeds = args.seeds or DEMO_SEEDS
    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {seeds}")
    client = ServiceClient(args.url)
    service = None
    started = time.monotonic()
    health = client.health()
    if health is not None:
        if health.get("status") != "ok":
            raise UsageError(f"the Arena service at {client.url} is not healthy: database {health.get('database')}, broker {health.get('broker')}")
        print(f"using the Arena service at {client.url}")
    else:
        from urllib.parse import urlsplit

        parts = urlsplit(client.url)
        host = parts.hostname or "127.0.0.1"
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError(f"cannot reach the Arena service at {client.url}, and the demo starts a local one only for a local --url")
        settings = service_settings(args.data_dir)
        port = args.port or parts.port or settings.api_port
        print(f"no service at {client.url}; starting one (data in {settings.data_dir})")
        service = LocalService(settings, "127.0.0.1", port)
    job_ids: list[int] = []
    try:
        if service is not None:
            service.start()
            client = ServiceClient(service.url)
        tasks = [info for info in TASKS.values() if info.family in DEMO_FAMILIES]
        for info in tasks:
            limits = info.default_budget
            budget = {"evaluations": limits.evaluations, "seconds": min(limits.seconds or DEMO_SECONDS, DEMO_SECONDS), "stop_on_solve": True}
            job_ids.append(client.post("/jobs", {"task": info.name, "seeds": seeds, "budget": budget})["job_id"])
        print(f"submitted {len(job_ids)} jobs ({len(tasks)} tasks x {len(METHODS)} methods x {seeds} seeds, at most {DEMO_SECONDS:g} s per run)")
        wait_for_jobs(client, job_ids)
        for info in tasks:
            print()
            print(format_leaderboard(client.get("/leaderboard", task=info.name)))
        print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    except KeyboardInterrupt:
        # Otherwise the runs not yet done would wait in the ledger and run at the next `arena up`.
        for job_id in job_ids:
            try:
                client.post(f"/jobs/{job_id}/cancel")
            except UsageError:
                pass
        raise
    finally:
        if service is not None:
            print("stopping the service the demo started...")
            service.stop()
    return 0

