"""Using the service: `submit`, `jobs`, `status`, `cancel`, `leaderboard`, `compare`, `summary`, with progress bars and tables.

These commands speak HTTP to the API (httpx), never to the database, so they work the same against
`arena up` on this machine and against a `docker compose` deployment elsewhere. Every failure a user can
cause (service unreachable, a refused job, an unknown id) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from arena.cli import UsageError, first_line, interactive, show_table
from arena.cli.train import add_architecture_options, add_budget_options
from arena.errors import ArenaError
from arena.methods import ALGORITHMS, METHODS, get_method, parse_value
from arena.validation import did_you_mean

DEFAULT_URL = "http://127.0.0.1:8000"
FINISHED = ("succeeded", "failed", "cancelled")  # run and job states that will not change again


def add_url(parser) -> None:
    parser.add_argument("--url", default=None, help=f"the Arena API (default: ARENA_URL or {DEFAULT_URL})")
    parser.add_argument("--api-key", action=_ApiKeyOption, default=None, metavar="KEY", help="the service's API key, when it asks for one (default: ARENA_API_KEY)")


class _ApiKeyOption(argparse.Action):
    """`--api-key KEY` stands for ARENA_API_KEY: every ServiceClient of the command sends it."""

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ["ARENA_API_KEY"] = values
        setattr(namespace, self.dest, values)


def register(commands) -> None:
    submit = commands.add_parser(
        "submit",
        help="submit a job: both methods on one task, several seeds, one budget",
        description="Submit a job to the service and print its id. Per-method settings: --set ga.population_size=100.",
    )
    submit.add_argument("--task", required=True, help="task name (see `arena tasks`)")
    submit.add_argument("--methods", "--method", dest="methods", default=",".join(METHODS), help=f"comma-separated (default: {','.join(METHODS)})")
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


class ServiceClient:
    """The HTTP API, with its failures turned into one-line errors."""

    def __init__(self, url: str | None = None, timeout: float = 30.0, api_key: str | None = None):
        import httpx

        self.url = (url or os.environ.get("ARENA_URL") or DEFAULT_URL).rstrip("/")
        key = (api_key or os.environ.get("ARENA_API_KEY") or "").strip()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def get(self, path: str, **params):
        return self._request("GET", path, params=params or None)

    def post(self, path: str, body: dict | None = None):
        return self._request("POST", path, json=body)

    def health(self) -> dict | None:
        """GET /health's answer (also when degraded, 503), or None when nothing answers."""
        import httpx

        try:
            response = self.http.get("/health", timeout=2.0)
            return response.json()
        except (httpx.HTTPError, ValueError):
            return None

    def _request(self, method: str, path: str, **kwargs):
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            reason = first_line(error) if str(error) else type(error).__name__
            raise UsageError(f"cannot reach the Arena service at {self.url} ({reason}); start it with `arena up`, or pass --url / set ARENA_URL") from None
        if response.status_code < 400:
            return response.json()
        detail = _error_detail(response)
        if response.status_code == 404:
            raise UsageError(detail or f"not found: {path}")
        if response.status_code == 422:
            raise UsageError(f"refused: {detail}")
        if response.status_code == 401:
            raise UsageError(f"{detail} (set ARENA_API_KEY or pass --api-key)")
        if response.status_code == 429:
            retry = response.headers.get("retry-after")
            raise UsageError(f"{detail}" + (f"; retry in {retry} s" if retry else ""))
        raise UsageError(f"the service answered {response.status_code} to {method} {path}: {detail}")


def _error_detail(response) -> str:
    """One line from an error response: FastAPI's validation list, or our {field, message}, or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else ""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        message = detail.get("message") or detail.get("msg") or json.dumps(detail)
        where = detail.get("field")
        return f"{where}: {message}" if where and where not in message else message
    if isinstance(detail, list):  # FastAPI: [{"loc": ["body", "budget", "evaluations"], "msg": "..."}]
        parts = []
        for item in detail:
            if isinstance(item, dict):
                location = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                message = item.get("msg") or item.get("message") or ""
                parts.append(f"{location}: {message}" if location else message)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return json.dumps(detail)


def build_job(args) -> dict:
    """The POST /jobs body from `arena submit` options, checked locally first.

    The same validation (arena.runspec.resolve) runs in the API; doing it here too gives the same
    message before any network round trip, and works while the service is down.
    """
    from arena.cli.train import architecture_from_args, budget_from_args, load_track
    from arena.runspec import check_seed, resolve
    from arena.tasks import task_info

    info = task_info(args.task)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise UsageError("--methods needs at least one method")
    for method in methods:
        get_method(method)
    # --set METHOD.KEY=VALUE: the method's settings on this task (backprop.* are PPO's on car tasks);
    # an algorithm's name (ppo.*) works too. The body keys them by algorithm, as the API does.
    settings: dict[str, dict] = {}
    for item in args.settings:
        prefix, key, value = _parse_setting(item, methods)
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


def _parse_setting(item: str, methods: list[str] | None = None) -> tuple[str, str, object]:
    name, equals, text = item.partition("=")
    prefix, dot, key = name.strip().partition(".")
    if equals and not dot and prefix and text.strip() and methods and len(methods) == 1:
        prefix, dot, key = methods[0], ".", prefix  # one method: KEY=VALUE, as `arena train --set`
    if not equals or not dot or not key or not text.strip():
        raise UsageError(f"--set wants METHOD.KEY=VALUE (e.g. ga.population_size=100), got {item!r}")
    if prefix not in METHODS and prefix not in ALGORITHMS:
        raise UsageError(f"--set {item!r}: unknown method {prefix!r}{did_you_mean(prefix, METHODS)}; valid methods: {', '.join(METHODS)}")
    return prefix, key.strip(), parse_value(text.strip())


def submit_command(args) -> int:
    body = build_job(args)
    client = ServiceClient(args.url)
    created = client.post("/jobs", body)
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


def describe_service(client: ServiceClient) -> str:
    """'the Arena service at URL (embedded mode: SQLite database and broker in its data directory)'."""
    health = client.health()
    if health is None:
        return f"the Arena service at {client.url}"
    if health.get("mode") == "embedded":
        where = "embedded mode: SQLite database, SQLite (Kombu SQLAlchemy) broker"
    else:
        where = "production mode: its DATABASE_URL database and BROKER_URL broker"
    problems = [f"{name} {health[name]}" for name in ("database", "broker") if health.get(name) not in (None, "ok")]
    return f"the Arena service at {client.url} ({where}{'; ' + ', '.join(problems) if problems else ''})"


def job_id_argument(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"a job id is a number, got {text!r}") from None
    if value < 1:
        raise UsageError(f"a job id is a positive number, got {text!r}")
    return value


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


def status_command(args) -> int:
    job = ServiceClient(args.url).get(f"/jobs/{args.job}")
    if args.json:
        print(json.dumps(job, indent=2))
    else:
        print(f"job {job.get('id', args.job)}: {job.get('task', '?')}, {job.get('status', '?')}")
        print(format_runs(job))
    return 0


def leaderboard_command(args) -> int:
    board = ServiceClient(args.url).get("/leaderboard", task=args.task)
    if args.json:
        print(json.dumps(board, indent=2))
    else:
        print(format_leaderboard(board))
    return 0


def compare_command(args) -> int:
    comparison = ServiceClient(args.url).get(f"/jobs/{args.job}/comparison")
    if args.json:
        print(json.dumps(comparison, indent=2))
    else:
        print(format_comparison(comparison))
    return 0


def summary_command(args) -> int:
    summary = ServiceClient(args.url).get("/summary")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return 0


# --- waiting and progress ---------------------------------------------------------------------------


def wait_for_jobs(client: ServiceClient, job_ids: list[str], show_progress: bool = True, poll_seconds: float = 0.5) -> list[dict]:
    """Poll until every job is finished; draw one progress bar per job and method meanwhile."""
    display = ProgressDisplay(sys.stdout) if show_progress else None
    while True:
        jobs = [client.get(f"/jobs/{job_id}") for job_id in job_ids]
        if display:
            display.update(jobs)
        if all(job.get("status") in FINISHED for job in jobs):
            if display:
                display.finish()
            return jobs
        time.sleep(poll_seconds)


def job_budget(job: dict) -> dict:
    """The budget every run of a job has: as submitted, or else the task's default."""
    budget = (job.get("request") or {}).get("budget")
    if budget:
        return budget
    try:
        from arena.tasks import task_info

        return task_info(job.get("task")).default_budget.model_dump()
    except ArenaError:  # a task this client does not know (a newer server): no bar, only counts
        return {}


def run_fraction(run: dict, budget: dict) -> float:
    """How far a run is, 0..1: finished runs are done; running ones by their share of the budget."""
    if run.get("status") in FINISHED:
        return 1.0
    fractions = []
    if budget.get("evaluations") and run.get("progress_evaluations") is not None:
        fractions.append(run["progress_evaluations"] / budget["evaluations"])
    if budget.get("seconds") and run.get("progress_seconds") is not None:
        fractions.append(run["progress_seconds"] / budget["seconds"])
    return min(max(fractions, default=0.0), 0.99)


def bar(fraction: float, width: int) -> str:
    filled = int(round(fraction * width))
    return "#" * filled + "-" * (width - filled)


class ProgressDisplay:
    """One line per job: per method a bar, runs finished/total and runs solved.

    On a terminal the lines are redrawn in place (or, when they would not fit, one line for all jobs).
    Elsewhere (a log, a pipe, a test) a job's line is printed when its counts change, or, with several
    jobs, when it finishes, so the output stays readable as plain text.
    """

    BAR_WIDTH = 16

    def __init__(self, stream):
        self.stream = stream
        self.interactive = stream.isatty()
        self.drawn_lines = 0
        self.last_printed: dict[object, str] = {}

    @staticmethod
    def method_counts(runs: list[dict], budget: dict) -> dict[str, tuple[float, int, int, int, int]]:
        """{method: (fraction done, finished, total, solved, failed)}"""
        counts = {}
        for method in dict.fromkeys(r.get("method") for r in runs):
            mine = [r for r in runs if r.get("method") == method]
            counts[method] = (
                sum(run_fraction(r, budget) for r in mine) / max(len(mine), 1),
                sum(r.get("status") in FINISHED for r in mine),
                len(mine),
                sum(bool(r.get("solved")) for r in mine),
                sum(r.get("status") == "failed" for r in mine),
            )
        return counts

    def describe(self, label: str, counts: dict) -> str:
        parts = []
        for method, (fraction, done, total, solved, failed) in counts.items():
            text = f"{method} [{bar(fraction, self.BAR_WIDTH)}] {done}/{total} runs, {solved} solved"
            parts.append(text + (f", {failed} failed" if failed else ""))
        return f"{label:<12} " + "   ".join(parts)

    def update(self, jobs: list[dict]) -> None:
        rows = [(job.get("id"), job.get("status") in FINISHED, self.describe(job.get("task", "?"), self.method_counts(job.get("runs", []), job_budget(job)))) for job in jobs]
        if self.interactive:
            import shutil

            if len(rows) >= shutil.get_terminal_size().lines - 1:  # would scroll: one line for everything
                every_run = [run for job in jobs for run in job.get("runs", [])]
                finished = sum(done for _, done, _ in rows)
                rows = [(None, False, self.describe(f"{finished}/{len(jobs)} jobs", self.method_counts(every_run, {})))]
            if self.drawn_lines:
                self.stream.write(f"\x1b[{self.drawn_lines}F")  # back to the first line drawn last time
            for _, _, text in rows:
                self.stream.write(f"\x1b[2K{text}\n")
            self.drawn_lines = len(rows)
        else:
            for key, finished, text in rows:
                if self.last_printed.get(key) != text and (finished or len(rows) == 1):
                    self.last_printed[key] = text
                    self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        self.drawn_lines = 0


# --- tables -----------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list], right: set[int] | None = None) -> str:
    """A plain-text table; columns in `right` (numbers) are right-aligned."""
    right = right if right is not None else set()
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def number(value, digits: int = 4) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:  # evaluations (medians are floats): 15,690 rather than 1.569e+04
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def format_runs(job: dict) -> str:
    """One row per run: its result once finished, its progress (best so far) while running."""
    rows = []
    for run in job.get("runs", []):
        finished = run.get("status") in FINISHED
        rows.append(
            [
                run.get("id"),
                run.get("method"),
                run.get("seed"),
                run.get("status"),
                number(run.get("score") if finished else run.get("progress_score")),
                number(run.get("solved")),
                number(run.get("evaluations") if finished else run.get("progress_evaluations")),
                number(run.get("seconds") if finished else run.get("progress_seconds"), 3),
                number(run.get("evaluations_to_solve")),
                first_line(run["error"]) if run.get("error") else None,
            ]
        )
    headers = ["run", "method", "seed", "status", "score", "solved", "evaluations", "seconds", "evals to solve", "error"]
    if not any(row[-1] for row in rows):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    return table(headers, rows, right={0, 2, 4, 6, 7, 8})


LENSES = (("reliability", "reliability"), ("evaluations", "evaluations"), ("cpu_seconds", "CPU seconds"))


def short(value, seconds: bool = False) -> str:
    """A number in a few characters: 950, 12.3k, 1.25M; seconds with 3 significant digits."""
    if value is None:
        return "?"
    if seconds:
        return f"{value:.3g}"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:,.0f}" if magnitude >= 10 else f"{value:.3g}"


def with_interval(estimate, interval, seconds: bool = False) -> str | None:
    """'1.2k [900-2.1k]'; an unbounded high end is 'inf'; None without an estimate."""
    if estimate is None:
        return None
    if not interval:
        return short(estimate, seconds)
    low, high = interval
    return f"{short(estimate, seconds)} [{short(low, seconds)}-{'inf' if high is None else short(high, seconds)}]"


def _km_median(stats: dict, lens: str = "evaluations", seconds: bool = False) -> str | None:
    median = ((stats.get("kaplan_meier") or {}).get(lens) or {}).get("median") or {}
    if median.get("estimate") is None:
        return None
    return with_interval(median["estimate"], [median.get("low"), median.get("high")], seconds)


def _solved(stats: dict) -> str:
    text = f"{stats.get('solved', 0)}/{stats.get('runs', 0)}"
    interval = stats.get("success_rate_ci")
    return text + (f" [{interval[0]:.0%}-{interval[1]:.0%}]" if interval else "")


def format_verdict_lines(verdicts: dict, comparisons: list[dict]) -> list[str]:
    """Per lens: the overall verdict, then each decided pair in words (one line each, to fit a screen)."""
    lines = []
    for lens, title in LENSES:
        overall = (verdicts.get(lens) or {}).get("winner")
        decided = [pair for pair in comparisons if pair["verdict"][lens]["winner"] is not None]
        if not decided:
            sizes = sorted({n for pair in comparisons for n in pair["n"].values()})
            n = f"n={sizes[0]}" if len(sizes) == 1 else f"n={sizes[0]}..{sizes[-1]}" if sizes else "no runs"
            lines.append(f"{title}: no detectable difference between any two methods ({n} each)")
            continue
        lines.append(f"{title}: {overall} better than every other method" if overall else f"{title}:")
        for pair in comparisons:
            lines.append(f"  {pair['first']} vs {pair['second']}: {pair['verdict'][lens]['text']}")
    return lines


def format_leaderboard(board: dict) -> str:
    """GET /leaderboard as a table: one row per configuration, best first, then the verdict per lens."""
    task = board.get("task", "?")
    direction = "higher" if board.get("higher_is_better") else "lower"
    lines = [f"{task}: {board.get('score_name', 'score')} ({direction} is better)"]
    entries = board.get("entries", [])
    if not entries:
        return lines[0] + "\n(no finished runs yet)"
    rows = []
    for entry in entries:
        rows.append(
            [
                entry.get("rank"),
                entry.get("label") or entry.get("method"),
                describe_configuration(entry, task),
                _solved(entry),
                with_interval(entry.get("ert_evaluations"), entry.get("ert_evaluations_ci")),
                _km_median(entry),
                short(entry.get("ert_seconds"), seconds=True) if entry.get("ert_seconds") is not None else None,
                "=" if entry.get("tied_with_previous") else "",
            ]
        )
    headers = ["#", "method", "configuration", "solved [95% CI]", "ERT evals [CI]", "KM median evals", "ERT cpu s", "tie"]
    lines.append(table(headers, rows, right={0}))
    lines.append("ranked by success rate, then ERT in evaluations; tie '=': intervals overlap the row above")
    if board.get("duplicates"):
        lines.append(f"{board['duplicates']} repeated (configuration, seed) runs counted once")
    best = board.get("best") or {}
    if len(best) > 1:
        lines.append("")
        lines.append("best configuration of each method, head to head (Holm-corrected):")
        lines.extend(format_verdict_lines(board.get("verdict") or {}, board.get("comparisons") or []))
    return "\n".join(lines)


def format_comparison(comparison: dict) -> str:
    """GET /jobs/{id}/comparison: each method's statistics, each pair, and the verdict per lens."""
    lines = [f"job {comparison.get('job_id')}: {comparison.get('task')}, {comparison.get('status')}"]
    rows = []
    for name, stats in (comparison.get("methods") or {}).items():
        rows.append(
            [
                name, stats.get("runs"), stats.get("duplicates") or "", _solved(stats),
                with_interval(stats.get("ert_evaluations"), stats.get("ert_evaluations_ci")), _km_median(stats),
                with_interval(stats.get("ert_seconds"), stats.get("ert_seconds_ci"), seconds=True),
            ]
        )  # fmt: skip
    lines.append(table(["method", "n", "dup", "solved [95% CI]", "ERT evals [CI]", "KM median evals", "ERT cpu s [CI]"], rows, right={1, 2}))
    pairs = []
    for pair in comparison.get("comparisons") or []:
        improvement = pair.get("probability_of_improvement") or {}

        def poi(lens):
            value = improvement.get(lens) or {}
            if value.get("estimate") is None:
                return None
            return f"{value['estimate']:.2f} [{value['low']:.2f}-{value['high']:.2f}]"

        adjusted = pair.get("logrank_p_adjusted") or {}
        pairs.append(
            [
                f"{pair['first']} vs {pair['second']}", poi("evaluations"), _p(adjusted.get("evaluations")),
                poi("cpu_seconds"), _p(adjusted.get("cpu_seconds")), _p(pair.get("success_p_adjusted")),
            ]
        )  # fmt: skip
    if pairs:
        lines.append("")
        headers = ["pair", "P(first better) evals", "log-rank p", "P(first better) cpu", "log-rank p", "success p"]
        lines.append(table(headers, pairs))
        lines.append("p-values Holm-corrected together; P(first better): probability of improvement, 95% bootstrap CI")
    lines.append("")
    lines.extend(format_verdict_lines(comparison.get("verdict") or {}, comparison.get("comparisons") or []))
    return "\n".join(lines)


def _p(value) -> str | None:
    if value is None:
        return None
    return "<0.001" if value < 0.001 else f"{value:.3g}"


def format_verdict_table(summary: dict) -> str:
    """GET /summary as one table: a row per task, a column per lens (the winner, or the pairs decided)."""
    tasks = summary.get("tasks") or {}
    if not tasks:
        return "(no finished runs to compare)"
    rows = []
    for name, task in tasks.items():
        n = task.get("n") or {}
        counts = sorted(set(n.values()))
        rows.append([name, str(counts[0]) if len(counts) == 1 else "/".join(str(n[m]) for m in sorted(n))]
                    + [_pairs_cell(summary, name, lens) for lens, _ in LENSES])  # fmt: skip
    lines = [table(["task", "n", *(title for _, title in LENSES)], rows, right={1})]
    lines.append("n: distinct seeds per method. A cell: the method better than every other, or the pairs")
    lines.append("decided (a>b), or no detectable difference at that n. Holm-corrected across every task.")
    return "\n".join(lines)


def _pairs_cell(summary: dict, task_name: str, lens: str) -> str:
    task = summary["tasks"][task_name]
    labels = task.get("labels") or {}
    winner = (task.get("winner") or {}).get(lens)
    if winner:
        return f"{labels.get(winner, winner)} best"
    decided = []
    for pair in (summary.get("comparisons") or {}).get(task_name, []):
        won = pair["verdict"][lens]["winner"]
        if won is not None:
            lost = pair["second"] if won == pair["first"] else pair["first"]
            decided.append(f"{labels.get(won, won)}>{labels.get(lost, lost)}")
    if decided:
        return ", ".join(decided)
    return "no difference" if len(labels) > 1 else "(one method)"


def format_summary(summary: dict) -> str:
    """GET /summary: tasks won / lost / undecided per method and lens, the verdict table, profiles."""
    methods = summary.get("methods") or {}
    if not methods:
        return "(no finished runs yet)"
    rows = []
    for method, lenses in methods.items():
        rows.append([method] + ["{won}/{lost}/{undecided}".format(**lenses[lens]) for lens, _ in LENSES])
    lines = ["tasks won/lost/undecided (each method's best configuration per task):"]
    lines.append(table(["method", *(title for _, title in LENSES)], rows, right={1, 2, 3}))
    lines.append("")
    lines.append(format_verdict_table(summary))
    profile = (summary.get("performance_profiles") or {}).get("evaluations") or {}
    tau = profile.get("tau") or []
    if tau:
        lines.append("")
        lines.append("performance profile (evaluations): share of tasks with ERT within tau x the best")
        marks = [1.0, 2.0, 10.0, 100.0]
        profile_rows = []
        for method in methods:
            values = profile.get(method) or []
            cells = []
            for mark in marks:
                inside = [v for t, v in zip(tau, values) if t <= mark * (1 + 1e-9)]
                cells.append(f"{inside[-1]:.0%}" if inside else "")
            profile_rows.append([method, *cells])
        lines.append(table(["method", *(f"tau={m:g}" for m in marks)], profile_rows, right={1, 2, 3, 4}))
    return "\n".join(lines)


def describe_configuration(entry: dict, task: str) -> str:
    """A configuration in a few words: the architecture, the budget, and the settings that differ from the
    task's defaults (most rows use the defaults, and 13 GA settings would not fit on a line)."""
    parts = []
    architecture = entry.get("architecture")
    if architecture:
        sizes = [architecture["input_size"], *architecture["hidden_sizes"], architecture["output_size"]]
        parts.append("-".join(map(str, sizes)))
    budget = entry.get("budget") or {}
    limits = [f"{number(budget['evaluations'])} evals" if budget.get("evaluations") else "", f"{budget['seconds']:g} s" if budget.get("seconds") else ""]
    if any(limits):
        parts.append("/".join(l for l in limits if l) + ("" if budget.get("stop_on_solve", True) else " full"))
    parts.extend(f"{key}={value}" for key, value in _non_default_settings(entry, task).items())
    if entry.get("task_options"):
        parts.append("options=" + json.dumps(entry["task_options"], sort_keys=True)[:40])
    return " ".join(parts)


def _non_default_settings(entry: dict, task: str) -> dict:
    settings = entry.get("settings") or {}
    try:
        from arena.methods import make_settings
        from arena.tasks import task_info

        info = task_info(task)
        algorithm = METHODS[entry["method"]].algorithm(info.kind).NAME
        defaults = make_settings(entry["method"], info.kind, info.method_defaults.get(algorithm)).model_dump(mode="json")
    except (ArenaError, KeyError):
        return {}
    return {key: value for key, value in settings.items() if key in defaults and defaults[key] != value}
