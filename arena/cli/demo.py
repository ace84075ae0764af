"""`arena demo`: the default comparison of every small task, on a running service or one it starts."""

from __future__ import annotations

import argparse
import json
import sys
import time

from arena.cli.errors import UsageError
from arena.cli.formats import format_verdict_table
from arena.cli.http import ServiceClient, add_url
from arena.cli.local import LocalService, service_settings
from arena.cli.output import interactive
from arena.cli.progress import wait_for_jobs
from arena.methods import default_methods
from arena.service.headline import summary_headline


def register(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="compare every method on the small logic tasks and print one verdict table (starts the service if needed)",
        description="Uses the service at --url if it answers; otherwise starts the embedded one (like `arena up`). "
        "A service the demo started keeps running on a terminal, so that its dashboard can be read, until Ctrl-C; "
        "elsewhere (a script, a pipe) it stops at the end and the demo prints the command that brings it back.",
    )
    demo.add_argument("--seeds", type=int, default=None, help=f"seeds per task and method (default: {DEMO_SEEDS})")
    demo.add_argument("--data-dir", default=None, help="for the embedded service (default: ARENA_DATA_DIR or var)")
    demo.add_argument("--port", type=int, default=None, help="port of the embedded service, if started (default: the one in --url)")
    demo.add_argument("--json", action="store_true", help="print the verdicts as JSON (GET /summary over the demo's jobs)")
    demo.add_argument("--keep-running", action=argparse.BooleanOptionalAction, default=None,
                      help="keep a service the demo started running until Ctrl-C (default: yes on a terminal)")
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
    keep_running = args.keep_running if args.keep_running is not None else (interactive(sys.stdin) and interactive(sys.stdout))
    try:
        if service is not None:
            service.start()
            client = ServiceClient(service.url)
        tasks = [TASKS[name] for name in DEMO_BUDGETS]
        for info in tasks:
            budget = {"evaluations": DEMO_BUDGETS[info.name], "seconds": None, "stop_on_solve": True}
            body = {"task": info.name, "methods": default_methods(), "seeds": seeds, "budget": budget}
            job_ids.append(client.post("/jobs", body)["job_id"])
        print(
            f"submitted {len(job_ids)} jobs ({len(tasks)} tasks x {len(default_methods())} methods x {seeds} seeds; "
            "budgets in evaluations, no time cap)"
        )
        wait_for_jobs(client, job_ids, show_progress=not args.json)
        finished = True
        summary = client.get("/summary", jobs=",".join(map(str, job_ids)))
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print()
            print(summary_headline(summary))
            print()
            print(format_verdict_table(summary))
        print(f"demo finished in {time.monotonic() - started:.0f} s")
        if not args.json:
            print(next_steps(client.url, job_ids, service, keep_running, args))
        if service is not None and keep_running:
            print(f"dashboard: {client.url}/  (the service keeps running; Ctrl-C stops it)")
            return service.supervise_until_stopped()
        print(f"dashboard: {client.url}/" + ("  (stops with the demo: run the `arena up` line above to read it)" if service is not None else ""))
    except KeyboardInterrupt:
        # Otherwise the runs not yet done would wait in the ledger and run at the next `arena up`.
        for job_id in job_ids:
            try:
                client.post(f"/jobs/{job_id}/cancel")
            except UsageError:
                pass
        raise
    finally:
        if service is not None and not service.stop_requested and not (keep_running and finished):
            print("stopping the service the demo started...")
            service.stop(idle=finished)
    return 0


def next_steps(url: str, job_ids: list[int], service, keep_running: bool, args) -> str:
    """What to run and open next: commands that work as printed (the service's address included)."""
    lines = ["next:"]
    if service is not None and not keep_running:  # it stops now: bring it back over the same data
        data_dir = f" --data-dir {args.data_dir}" if args.data_dir else ""
        lines.append(f"  arena up --port {service.port}{data_dir}      # the demo's jobs are kept; then, in another terminal:")
    lines.append(f"  export ARENA_URL={url}")
    lines.append(f"  open {url}/ui/jobs/{job_ids[0]}   (xor, in a browser), or {url}/ui/summary")
    lines.append(f"  arena compare {job_ids[0]}; arena leaderboard --task xor; arena summary   (jobs {job_ids[0]}-{job_ids[-1]})")
    return "\n".join(lines)

