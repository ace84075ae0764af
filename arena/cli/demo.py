"""`arena demo`: the default comparison of every small task, on a running service or one it starts."""

from __future__ import annotations

import json
import time

from arena.cli import UsageError
from arena.cli.client import ServiceClient, add_url, format_verdict_table, wait_for_jobs
from arena.cli.local import LocalService, service_settings
from arena.methods import METHODS


def register(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="compare every method on the small logic tasks and print one verdict table (starts the service if needed)",
        description="Uses the service at --url if it answers; otherwise starts the embedded one (like `arena up`), "
        "and stops it at the end.",
    )
    demo.add_argument("--seeds", type=int, default=None, help=f"seeds per task and method (default: {DEMO_SEEDS})")
    demo.add_argument("--data-dir", default=None, help="for the embedded service (default: ARENA_DATA_DIR or var)")
    demo.add_argument("--port", type=int, default=None, help="port of the embedded service, if started (default: the one in --url)")
    demo.add_argument("--json", action="store_true", help="print the verdicts as JSON (GET /summary over the demo's jobs)")
    add_url(demo)
    demo.set_defaults(handler=demo_command)


# The small logic tasks, each with a budget in evaluations (no seconds cap: a run's result then depends on
# its seed alone, not on machine load, so two demos give the same runs and the same verdicts). The budgets
# are a few times what the slowest method needs at the median (benchmarks/results.md): unsolved runs stay
# rare, and a method that needs more shows as "needs more evaluations", censored, not as a failure.
DEMO_BUDGETS = {
    "xor": 200_000, "and": 100_000, "or": 100_000, "nand": 100_000, "nor": 100_000, "xnor": 200_000,
    "parity-3": 400_000, "parity-4": 300_000, "full-adder": 1_000_000,
}  # fmt: skip
DEMO_FAMILIES = ("logic",)
DEMO_SEEDS = 10  # per task and method: enough for the clear differences to be detected every time


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
    finished = False
    try:
        if service is not None:
            service.start()
            client = ServiceClient(service.url)
        tasks = [TASKS[name] for name in DEMO_BUDGETS]
        for info in tasks:
            budget = {"evaluations": DEMO_BUDGETS[info.name], "seconds": None, "stop_on_solve": True}
            body = {"task": info.name, "methods": list(METHODS), "seeds": seeds, "budget": budget}
            job_ids.append(client.post("/jobs", body)["job_id"])
        print(
            f"submitted {len(job_ids)} jobs ({len(tasks)} tasks x {len(METHODS)} methods x {seeds} seeds; "
            "budgets in evaluations, no time cap)"
        )
        wait_for_jobs(client, job_ids, show_progress=not args.json)
        finished = True
        summary = client.get("/summary", jobs=",".join(map(str, job_ids)))
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print()
            print(format_verdict_table(summary))
            print(f"\nper task: `arena leaderboard --task TASK`, `arena compare JOB` (jobs {job_ids[0]}-{job_ids[-1]}); across tasks: `arena summary`")
        print(f"demo finished in {time.monotonic() - started:.0f} s")
        print(f"dashboard: {client.url}/" + ("  (stops with the demo; `arena up` keeps it running)" if service is not None else ""))
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
            service.stop(idle=finished)
    return 0

