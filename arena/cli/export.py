"""`arena plot` and `arena export`: the service's pictures and runs as files, for scripts and notebooks.

    arena plot 12 -o curves.png            # GET /jobs/12/curves.png (.svg by the file's extension)
    arena export --task xor -o runs.csv    # GET /runs.csv, streamed to the file
    arena export --job 12 --format jsonl --curves > runs.jsonl

Both speak HTTP through the same client as `arena submit`, so --url / ARENA_URL apply.
"""

from __future__ import annotations

import json
import os
import sys

from arena.cli.errors import UsageError, first_line
from arena.cli.http import ServiceClient, add_url, error_detail, job_id_argument
from arena.cli.output import interactive

PICTURES = {".png": "png", ".svg": "svg"}
RUN_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def register(commands) -> None:
    plot = commands.add_parser(
        "plot",
        help="draw a job's learning curves to a PNG or SVG file",
        description="Fetch a job's learning curves (median and interquartile band of the best-so-far score across "
        "seeds, per method, against evaluations) from the service and write them to a file; the format "
        "follows the file's extension (.png or .svg).",
    )
    plot.add_argument("job", help="job id")
    plot.add_argument("-o", "--output", default=None, metavar="FILE", help="where to write (default: job-JOB-curves.png)")
    plot.add_argument("--json", action="store_true", help="print what was written as JSON")
    add_url(plot)
    plot.set_defaults(handler=plot_command)

    export = commands.add_parser(
        "export",
        help="write runs (settings, seeds, results) as CSV or JSON lines",
        description="Stream the service's runs to a file or stdout: one row per run with its job, task, method, seed, "
        "settings (a JSON column in CSV), budget, architecture and results. Filters combine.",
    )
    export.add_argument("--task", default=None, help="only this task's runs")
    export.add_argument("--job", default=None, help="only this job's runs")
    export.add_argument("--status", default=None, choices=RUN_STATES, help="only runs in this state")
    export.add_argument("--format", default=None, choices=("csv", "jsonl"), help="default: from -o's extension, else csv")
    export.add_argument("--curves", action="store_true", help="JSON lines: include each run's learning curve")
    export.add_argument("-o", "--output", default=None, metavar="FILE", help="write here instead of stdout")
    add_url(export)
    export.set_defaults(handler=export_command)


def stream_to(client: ServiceClient, path: str, params: dict, out) -> int:
    """GET path, writing the body to `out` (a binary file) as it arrives; returns the bytes written.

    Errors are the client's one-liners. The request goes through the client's httpx.Client, so the
    headers it carries (a token) apply here too.
    """
    import httpx

    params = {key: value for key, value in params.items() if value is not None}
    written = 0
    try:
        with client.http.stream("GET", path, params=params or None) as response:
            if response.status_code >= 400:
                response.read()
                detail = error_detail(response)
                if response.status_code == 404:
                    raise UsageError(detail or f"not found: {path}")
                if response.status_code == 422:
                    raise UsageError(f"refused: {detail}")
                raise UsageError(f"the service answered {response.status_code} to GET {path}: {detail}")
            for chunk in response.iter_bytes():
                out.write(chunk)
                written += len(chunk)
    except httpx.TransportError as error:
        reason = first_line(error) if str(error) else type(error).__name__
        raise UsageError(f"cannot reach the Arena service at {client.url} ({reason}); start it with `arena up`, or pass --url / set ARENA_URL") from None
    return written


def _write_file(path: str, client: ServiceClient, route: str, params: dict) -> int:
    """Stream into a temporary file next to `path`, then rename: a failed request leaves no half file."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {path!r}: no directory {directory!r}")
    partial = f"{path}.partial"
    try:
        with open(partial, "wb") as handle:
            written = stream_to(client, route, params, handle)
        os.replace(partial, path)
    except OSError as error:
        raise UsageError(f"cannot write {path!r}: {error.strerror or error}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return written


def plot_command(args) -> int:
    job_id = job_id_argument(args.job)
    path = args.output or f"job-{job_id}-curves.png"
    extension = os.path.splitext(path)[1].lower()
    if extension not in PICTURES:
        raise UsageError(f"-o {path!r}: the file name must end in .png or .svg (it picks the format)")
    client = ServiceClient(args.url)
    written = _write_file(path, client, f"/jobs/{job_id}/curves.{PICTURES[extension]}", {})
    if args.json:
        print(json.dumps({"job_id": job_id, "path": path, "format": PICTURES[extension], "bytes": written}))
    else:
        print(f"job {job_id}: learning curves written to {path} ({written:,} bytes, from {client.url})")
    return 0


def export_command(args) -> int:
    fmt = args.format
    if fmt is None:
        fmt = "jsonl" if args.output and args.output.lower().endswith((".jsonl", ".ndjson", ".json")) else "csv"
    if args.curves and fmt != "jsonl":
        raise UsageError("--curves needs --format jsonl (a curve does not fit a CSV cell)")
    params = {"task": args.task, "status": args.status, "job": job_id_argument(args.job) if args.job is not None else None}
    if args.curves:
        params["curves"] = 1
    if args.task is not None:
        from arena.tasks import task_info

        task_info(args.task)  # an unknown task: the one-line "did you mean" before any request
    client = ServiceClient(args.url)
    route = f"/runs.{fmt}"
    if args.output is None and args.format is None and interactive(sys.stdout):
        # A terminal asked for nothing in particular: every run as wide CSV would scroll past unread.
        raise UsageError("export writes every run as a table of ~30 columns: pass -o runs.csv (or runs.jsonl), "
                         "or --format csv to print it here, or pipe it (`arena export | head`)")
    if args.output is None or args.output == "-":
        stream_to(client, route, params, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    written = _write_file(args.output, client, route, params)
    if fmt == "csv":
        with open(args.output, "rb") as handle:
            rows = max(sum(1 for _ in handle) - 1, 0)  # a CSV cell never spans lines: JSON columns are one line
    else:
        with open(args.output, "rb") as handle:
            rows = sum(1 for line in handle if line.strip())
    print(f"{rows} runs written to {args.output} ({fmt}, {written:,} bytes, from {client.url})", file=sys.stderr)
    return 0
