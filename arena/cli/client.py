"""Using the service: `submit`, `status`, `leaderboard`, with progress bars and tables.

These commands speak HTTP to the API (httpx), never to the database, so they work the same against
`arena up` on this machine and against a `docker compose` deployment elsewhere. Every failure a user can
cause (service unreachable, a refused job, an unknown id) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
import time

from arena.cli import UsageError, first_line
from arena.cli.train import add_budget_options
from arena.errors import ArenaError
from arena.methods import ALGORITHMS, METHODS, get_method, parse_value
from arena.validation import did_you_mean

DEFAULT_URL = "http://127.0.0.1:8000"
FINISHED = ("succeeded", "failed", "cancelled")  # run and job states that will not change again


def add_url(parser) -> None:
    parser.add_argument("--url", default=None, help=f"the Arena API (default: ARENA_URL or {DEFAULT_URL})")


def register(commands) -> None:
    submit = commands.add_parser(
        "submit",
        help="submit a job: both methods on one task, several seeds, one budget",
        description="Submit a job to the service and print its id. Per-method settings: --set ga.population_size=100.",
    )
    submit.add_argument("--task", required=True, help="task name (see `arena tasks`)")
    submit.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default: {','.join(METHODS)})")
    seeds = submit.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None, help="number of seeds (seeds 0..N-1; default: the service's)")
    seeds.add_argument("--seed-list", default=None, help="explicit seeds, comma-separated: 1,2,3")
    add_budget_options(submit)
    submit.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD.KEY=VALUE", help="a method setting, repeatable")
    submit.add_argument("--hidden", default=None, help="hidden layer sizes, comma-separated: 8,8 (default: the task's)")
    submit.add_argument("--track", default=None, metavar="NAME|FILE.json", help="car tasks: a built-in track or a JSON file {\"points\": [[x, y], ...], \"width\": w}")
    submit.add_argument("--wait", action="store_true", help="show progress until the job finishes")
    submit.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_url(submit)
    submit.set_defaults(handler=submit_command)

    status = commands.add_parser("status", help="a job's state and each run's progress or result")
    status.add_argument("job", help="job id")
    status.add_argument("--json", action="store_true", help="print the API's JSON")
    add_url(status)
    status.set_defaults(handler=status_command)

    board = commands.add_parser("leaderboard", help="per task: one row per method and configuration, over all its runs")
    board.add_argument("--task", required=True, help="task name")
    board.add_argument("--json", action="store_true", help="print the API's JSON")
    add_url(board)
    board.set_defaults(handler=leaderboard_command)


class ServiceClient:
    """The HTTP API, with its failures turned into one-line errors."""

    def __init__(self, url: str | None = None, timeout: float = 30.0):
        import httpx

        self.url = (url or os.environ.get("ARENA_URL") or DEFAULT_URL).rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)

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
    from arena.cli.train import budget_from_args, load_track
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
        prefix, key, value = _parse_setting(item)
        method = prefix if prefix in METHODS else next(m for m in METHODS.values() if prefix in (m.supervised.NAME, m.control.NAME)).name
        if method not in methods:
            raise UsageError(f"--set {item!r}: {method} is not among --methods {','.join(methods)}")
        settings.setdefault(method, {})[key] = value

    body: dict = {"task": info.name, "methods": methods}
    if args.seed_list is not None:
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
    if args.hidden is not None:
        body["architecture"] = info.default_architecture.with_hidden(args.hidden).model_dump(mode="json")
    if args.track is not None:
        body["task_options"] = load_track(args.track)
    for method, values in settings.items():
        body[METHODS[method].algorithm(info.kind).NAME] = values
    for method in methods:
        resolve(info.name, method, body.get("budget"), settings.get(method), body.get("architecture"), body.get("task_options"))
    return body


def _parse_setting(item: str) -> tuple[str, str, object]:
    name, equals, text = item.partition("=")
    prefix, dot, key = name.strip().partition(".")
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
        return 0
    if not args.json:
        print(f"job {job_id}: {body['task']}, {len(created['run_ids'])} runs")
    job = wait_for_jobs(client, [job_id], show_progress=not args.json)[0]
    if args.json:
        print(json.dumps(job, indent=2))
    else:
        print(format_runs(job))
    return 0 if job.get("status") == "succeeded" else 1


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


def format_leaderboard(board: dict) -> str:
    """GET /leaderboard as a table: one row per (method, configuration), best first."""
    task = board.get("task", "?")
    direction = "higher" if board.get("higher_is_better") else "lower"
    lines = [f"{task}: {board.get('score_name', 'score')} ({direction} is better)"]
    entries = board.get("entries", [])
    if not entries:
        return lines[0] + "\n(no finished runs yet)"
    rows = []
    for entry in entries:
        rate, interval = entry.get("success_rate"), entry.get("success_rate_ci")
        solved = f"{entry.get('solved', 0)}/{entry.get('runs', 0)}"
        if rate is not None:
            solved += f"  {rate:.0%}" + (f" [{interval[0]:.0%}-{interval[1]:.0%}]" if interval else "")
        evals = entry.get("evaluations_to_solve") or {}
        seconds = entry.get("seconds_to_solve") or {}
        rows.append(
            [
                entry.get("rank"),
                entry.get("method"),
                describe_configuration(entry, task),
                solved,
                f"{number(evals['median'])} ({number(evals['q1'])}-{number(evals['q3'])})" if evals else None,
                number(seconds.get("median"), 3),
                number(entry.get("median_score")),
            ]
        )
    headers = ["#", "method", "configuration", "solved (95% CI)", "evals to solve: median (IQR)", "s to solve", "median score"]
    return lines[0] + "\n" + table(headers, rows, right={0, 5, 6})


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
