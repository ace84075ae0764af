"""Using the service: `submit`, `jobs`, `status`, `cancel`, `leaderboard`, `compare`, `summary`.

Every failure a user can cause (service unreachable, a refused job, an unknown id) is one line on stderr
and exit code 2 (arena.cli.http turns HTTP failures into UsageError).
"""

from __future__ import annotations

import json
import sys

from arena.cli.errors import UsageError
from arena.cli.formats import format_comparison, format_leaderboard, format_runs, format_summary, format_verdict_table
from arena.cli.http import FINISHED, ServiceClient, add_url, describe_service, job_id_argument
from arena.cli.options import (
    add_architecture_options,
    add_budget_options,
    architecture_from_args,
    budget_from_args,
    load_track,
    method_name,
    parse_method_setting,
)
from arena.cli.output import bar, interactive, show_table
from arena.cli.progress import wait_for_jobs
from arena.methods import METHODS, default_methods, get_method


def register(commands) -> None:
    submit = commands.add_parser(
        "submit",
        help="submit a job: the methods (backprop, ga, cmaes by default) on one task, several seeds, one budget",
        description="Submit a job to the service and print its id. Per-method settings: --set ga.population_size=100.",
    )
    submit.add_argument("--task", required=True, help="task name (see `arena tasks`)")
    submit.add_argument("--methods", "--method", dest="methods", default=",".join(default_methods()), help=f"comma-separated (default: {','.join(default_methods())})")
    seeds = submit.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None, help="number of seeds (seeds 0..N-1; default: the service's)")
    seeds.add_argument("--seed-list", default=None, help="explicit seeds, comma-separated: 1,2,3")
    seeds.add_argument("--seed", type=int, default=None, help="one seed (as `arena train --seed`)")
    add_budget_options(submit)
    submit.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="a method setting, repeatable; KEY=VALUE when only one method is submitted")
    add_architecture_options(submit)
    submit.add_argument("--track", default=None, metavar="NAME|FILE.json", help="car tasks: a built-in track or a JSON file {\"points\": [[x, y], ...], \"width\": w}")
    submit.add_argument("--wait", action="store_true", help="show progress until the job finishes")
    submit.add_argument("--cancel-on-interrupt", action="store_true", help="with --wait: Ctrl-C cancels the job (by default it keeps running)")
    submit.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_url(submit)
    submit.set_defaults(handler=submit_command)

    jobs = commands.add_parser("jobs", help="list jobs, newest first, with their status and progress")
    jobs.add_argument("--task", default=None, help="only this task's jobs")
    jobs.add_argument("--status", default=None, choices=("queued", "running", "succeeded", "failed", "cancelled"), help="only jobs in this state")
    jobs.add_argument("--limit", type=int, default=20, help="at most this many (default 20, up to 500)")
    prints_the_answer(jobs, jobs_command)

    add_job_command(commands, "cancel", "cancel a job: queued runs at once, running ones within about a second", cancel_command)
    add_job_command(commands, "status", "a job's state and each run's progress or result", status_command)

    board = commands.add_parser("leaderboard", help="per task: one row per method and configuration, ranked, with the verdict")
    board.add_argument("--task", required=True, help="task name")
    prints_the_answer(board, leaderboard_command)

    add_job_command(commands, "compare", "a job's methods head to head: statistics and the verdict per lens", compare_command)

    summary = commands.add_parser("summary", help="across tasks: tasks won / lost / undecided per method and lens")
    prints_the_answer(summary, summary_command)


def prints_the_answer(parser, handler) -> None:
    """The end of a command that prints one API answer, as text or with --json as the API's JSON: --json,
    --url and --api-key, and its handler."""
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    add_url(parser)
    parser.set_defaults(handler=handler)


def add_job_command(commands, name: str, help: str, handler) -> None:
    """A command on one job (`arena NAME JOB`) that prints the API's answer."""
    parser = commands.add_parser(name, help=help)
    parser.add_argument("job", help="job id")
    prints_the_answer(parser, handler)


def build_job(args) -> dict:
    """The POST /jobs body from `arena submit` options, checked locally first.

    The same validation (arena.runspec.resolve) runs in the API; doing it here too gives the same
    message before any network round trip, and works while the service is down.
    """
    from arena.runspec import check_seed, resolve
    from arena.tasks import task_info

    info = task_info(args.task)
    methods = [method_name(m) for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise UsageError("--methods needs at least one method")
    for method in methods:
        get_method(method)
    # --set METHOD.KEY=VALUE: the method's settings on this task (backprop.* are PPO's on car tasks);
    # an algorithm's name (ppo.*) works too. The body keys them by algorithm, as the API does.
    settings: dict[str, dict] = {}
    for item in args.settings:
        for prefix, key, value in parse_method_setting(item, methods, info.kind):
            method = prefix if prefix in METHODS else next(m for m in METHODS.values() if prefix in (m.supervised.NAME, m.control.NAME)).name
            if method not in methods:
                raise UsageError(f"--set {item!r}: {method} is not among --methods {','.join(methods)}")
            settings.setdefault(method, {})[key] = value

    body: dict = {"task": info.name, "methods": methods}
    if getattr(args, "seed", None) is not None:
        body["seeds"] = [check_seed(args.seed)]
    elif args.seed_list is not None:
        try:
            seeds = [check_seed(int(s)) for s in args.seed_list.split(",") if s.strip()]
        except ValueError:
            raise UsageError(f"--seed-list must be comma-separated integers, got {args.seed_list!r}") from None
        if not seeds:
            raise UsageError("--seed-list needs at least one seed")
        body["seeds"] = seeds
    elif args.seeds is not None:
        if args.seeds < 1:
            raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
        body["seeds"] = args.seeds
    budget = budget_from_args(args, info.default_budget)
    if budget is not None:
        body["budget"] = budget
    architecture = architecture_from_args(args, info.default_architecture)
    if architecture is not None:
        body["architecture"] = architecture
    if args.track is not None:
        body["task_options"] = load_track(args.track)
    for method, values in settings.items():
        body[METHODS[method].algorithm(info.kind).NAME] = values
    for method in methods:
        resolve(info.name, method, body.get("budget"), settings.get(method), body.get("architecture"), body.get("task_options"))
    return body


def submit_command(args) -> int:
    body = build_job(args)
    client = ServiceClient(args.url)
    created = client.submit(body)  # with an Idempotency-Key: retried safely
    job_id = created["job_id"]
    if not args.wait:
        print(json.dumps(created, indent=2) if args.json else job_id)
        if not args.json and interactive(sys.stderr):
            print(f"submitted to the Arena service at {client.url}: `arena status {job_id}` to follow it, {client.url}/ui/jobs/{job_id} in a browser", file=sys.stderr)
        return 0
    if not args.json:
        print(f"job {job_id}: {body['task']}, {len(created['run_ids'])} runs on the Arena service at {client.url}")
    try:
        job = wait_for_jobs(client, [job_id], show_progress=not args.json)[0]
    except KeyboardInterrupt:
        return interrupted(client, job_id, args.cancel_on_interrupt)
    verdicts = client.get("/summary", jobs=str(job_id))
    if args.json:
        print(json.dumps({**job, "summary": verdicts}, indent=2))
    else:
        print(format_runs(job))
        print()
        print(format_verdict_table(verdicts))
    return 0 if job.get("status") == "succeeded" else 1


def interrupted(client: ServiceClient, job_id, cancel: bool) -> int:
    """Ctrl-C while waiting: the job lives on the service; say so (or cancel it when asked to)."""
    sys.stdout.write("\n")
    sys.stdout.flush()
    if cancel:
        try:
            client.post(f"/jobs/{job_id}/cancel")
            print(f"arena: interrupted; job {job_id} cancelled (runs already running stop within about a second)", file=sys.stderr)
        except UsageError as error:  # it finished meanwhile, or the service went away
            print(f"arena: interrupted; could not cancel job {job_id}: {error.message}", file=sys.stderr)
    else:
        print(f"arena: interrupted; job {job_id} keeps running on the service. Follow it: `arena status {job_id}`; "
              f"stop it: `arena cancel {job_id}`", file=sys.stderr)
    return 130


def jobs_command(args) -> int:
    if not 1 <= args.limit <= 500:
        raise UsageError(f"--limit must be between 1 and 500, got {args.limit}")
    if args.task is not None:
        from arena.tasks import task_info

        task_info(args.task)  # an unknown task: "did you mean" before any request
    client = ServiceClient(args.url)
    params = {key: value for key, value in (("task", args.task), ("status", args.status), ("limit", args.limit)) if value is not None}
    page = client.get("/jobs", **params)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    jobs = page.get("jobs") or []
    shown = f"{len(jobs)} of {page.get('total', len(jobs))} jobs" if jobs else "no jobs"
    filters = ", ".join(f"{name} {value}" for name, value in (("task", args.task), ("status", args.status)) if value)
    print(f"{shown}{' (' + filters + ')' if filters else ''}, newest first, on {describe_service(client)}")
    if jobs:
        show_table(["job", "task", "status", "methods", "seeds", "runs done", "progress", "created"], [job_row(job) for job in jobs], right={0, 4, 5})
    return 0


def job_row(job: dict) -> list:
    counts = job.get("run_counts") or {}
    total = sum(counts.values())
    done = sum(counts.get(state, 0) for state in FINISHED)
    fraction = done / total if total else 0.0
    progress = f"[{bar(fraction, 10)}] {fraction:4.0%}"
    extras = [f"{counts[state]} {state}" for state in ("running", "failed", "cancelled") if counts.get(state)]
    status = job.get("status", "?") + (" (cancelling)" if job.get("cancel_requested") and job.get("status") not in FINISHED else "")
    created = (job.get("created_at") or "")[:19].replace("T", " ")
    return [job.get("id"), job.get("task"), status, ",".join(job.get("methods") or []), len(job.get("seeds") or []),
            f"{done}/{total}", progress + (" " + ", ".join(extras) if extras else ""), created]  # fmt: skip


def cancel_command(args) -> int:
    job_id = job_id_argument(args.job)
    client = ServiceClient(args.url)
    job = client.get(f"/jobs/{job_id}")
    if job.get("status") in FINISHED:
        raise UsageError(f"job {job_id} already finished ({job.get('status')}); nothing to cancel")
    try:
        cancelled = client.post(f"/jobs/{job_id}/cancel")
    except UsageError as error:
        if " 409 " in error.message:  # it finished between the two requests
            raise UsageError(f"job {job_id} already finished; nothing to cancel") from None
        raise
    if args.json:
        print(json.dumps(cancelled, indent=2))
        return 0
    counts = cancelled.get("run_counts") or {}
    parts = [f"{counts.get('cancelled', 0)} runs cancelled"]
    if counts.get("running"):
        parts.append(f"{counts['running']} running stop within about a second")
    print(f"job {job_id}: {cancelled.get('status')}, cancel requested ({'; '.join(parts)})")
    return 0


def print_answer(args, answer: dict, as_text) -> int:
    """Print one API answer: its JSON with --json, else `as_text(answer)` (the other half of `prints_the_answer`)."""
    print(json.dumps(answer, indent=2) if args.json else as_text(answer))
    return 0


def status_command(args) -> int:
    job = ServiceClient(args.url).get(f"/jobs/{args.job}")
    return print_answer(args, job, lambda job: f"job {job.get('id', args.job)}: {job.get('task', '?')}, {job.get('status', '?')}\n{format_runs(job)}")


def leaderboard_command(args) -> int:
    return print_answer(args, ServiceClient(args.url).get("/leaderboard", task=args.task), format_leaderboard)


def compare_command(args) -> int:
    return print_answer(args, ServiceClient(args.url).get(f"/jobs/{args.job}/comparison"), format_comparison)


def summary_command(args) -> int:
    return print_answer(args, ServiceClient(args.url).get("/summary"), format_summary)
