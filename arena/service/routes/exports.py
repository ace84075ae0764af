"""Every run as CSV or JSON lines, streamed (GET /runs.csv, GET /runs.jsonl)."""

from __future__ import annotations

import json
from typing import Iterator

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import StreamingResponse

from arena.service import schemas
from arena.store import queries
from arena.store.db import session_scope
from arena.tasks import TASKS, task_info

router = APIRouter()

EXPORT_FIELDS = (
    "run_id", "job_id", "task", "method", "algorithm", "label", "seed", "status", "solved", "score",
    "evaluations_to_solve", "seconds_to_solve", "cpu_seconds_to_solve", "evaluations", "seconds", "cpu_seconds",
    "stopped", "budget_evaluations", "budget_seconds", "stop_on_solve", "network", "architecture", "settings",
    "task_options", "settings_hash", "metrics", "attempts", "error", "created_at", "finished_at",
)  # fmt: skip
_JSON_FIELDS = ("architecture", "settings", "task_options", "metrics")


def export_record(row: dict) -> dict:
    """One run as a flat record: the spec's budget split into columns, its architecture also in words."""
    from arena.methods import label

    spec = row.get("spec") or {}
    budget = spec.get("budget") or {}
    architecture = spec.get("architecture") or None
    network = None
    if architecture:
        sizes = [architecture.get("input_size"), *architecture.get("hidden_sizes", ()), architecture.get("output_size")]
        network = "-".join(map(str, sizes)) + f" {architecture.get('hidden_activation')}/{architecture.get('output_activation')}"
    record = {
        **{name: row.get(name) for name in EXPORT_FIELDS if name in row},
        "run_id": row["id"],
        "label": label(row["method"], row.get("algorithm")),
        "budget_evaluations": budget.get("evaluations"),
        "budget_seconds": budget.get("seconds"),
        "stop_on_solve": budget.get("stop_on_solve"),
        "network": network,
        "architecture": architecture,
        "settings": spec.get("settings") or {},
        "task_options": spec.get("task_options") or None,
        "error": schemas.one_line_error(row.get("error")),  # as the API shows it: the traceback stays with the operators
    }
    for name in ("created_at", "finished_at"):
        if record.get(name) is not None:
            record[name] = record[name].isoformat()
    ordered = {name: record.get(name) for name in EXPORT_FIELDS}
    if "curve" in row:
        ordered["curve"] = row["curve"]
    return ordered


def _csv_cell(name: str, value) -> object:
    if value is None:
        return ""
    if name in _JSON_FIELDS:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _export_lines(fmt: str, task: str | None, status: str | None, job: int | None, curves: bool) -> Iterator[bytes]:
    """The export, a chunk of rows at a time, from a session of its own (the response outlives the request's)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_FIELDS)
    pending = 0
    with session_scope() as session:
        for row in queries.export_runs(session, task=task, status=status, job_id=job, curves=curves):
            record = export_record(row)
            if writer is not None:
                writer.writerow([_csv_cell(name, record[name]) for name in EXPORT_FIELDS])
            else:
                buffer.write(json.dumps(record, separators=(",", ":")) + "\n")
            pending += 1
            if pending >= 200:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                pending = 0
    if buffer.tell():
        yield buffer.getvalue().encode()


def _export_filters(task: str | None) -> None:
    if task is not None and task not in TASKS:
        from arena.errors import ArenaError

        try:
            task_info(task)
        except ArenaError as error:  # "unknown task 'xr' (did you mean 'xor'?)"
            raise HTTPException(status_code=404, detail=error.message) from None


JobFilter = Query(None, ge=1, le=schemas.MAX_ID, description="only this job's runs")
_EXPORT_ERRORS = schemas.error_responses({404: "no such task"})


@router.get("/runs.csv", tags=["results"], response_class=Response, responses={200: {"content": {"text/csv": {}}}, **_EXPORT_ERRORS})
def export_runs_csv(task: str | None = None, status: schemas.Status | None = None, job: int | None = JobFilter):
    """Every run matching the filters (as GET /jobs: task, status; plus job), by id, as CSV streamed row by row:
    job, task, method, seed, status, results (score, solved, evaluations/seconds/CPU seconds and to solve),
    budget, network, settings (a JSON object per cell), task options, metrics. `status` is the run's."""
    _export_filters(task)
    return StreamingResponse(
        _export_lines("csv", task, status, job, False), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="arena-runs.csv"'},
    )  # fmt: skip


@router.get("/runs.jsonl", tags=["results"], response_class=Response, responses={200: {"content": {"application/x-ndjson": {}}}, **_EXPORT_ERRORS})
def export_runs_jsonl(task: str | None = None, status: schemas.Status | None = None, job: int | None = JobFilter, curves: bool = False):
    """The runs of GET /runs.csv as JSON lines (settings, architecture, metrics as objects); with `curves=1`
    each line also has the run's learning curve ([{evaluations, seconds, score}], null before it finished)."""
    _export_filters(task)
    return StreamingResponse(
        _export_lines("jsonl", task, status, job, curves), media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="arena-runs.jsonl"'},
    )  # fmt: skip
