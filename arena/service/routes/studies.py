"""Studies: POST /studies expands a study into one ordinary job per cell (validated, costed, stored and
sent by the same code as POST /jobs), and GET /studies/{id} answers with curves and crossovers
(arena.verdict.study over each cell's job comparison). See docs/studies.md."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from sqlalchemy.orm import Session
from typing import Annotated

from arena.errors import ArenaError
from arena.methods import ALGORITHMS, default_methods
from arena.service import auth, schemas
from arena.service.deps import WRITE_ERRORS, cancel_writer, database, settings_dependency, submit_writer
from arena.service.guard import WriterRoute
from arena.service.routes.jobs import _check_quota
from arena.store import queries
from arena.store.db import session_scope
from arena.store.settings import Settings
from arena.store.tables import FINISHED
from arena.studies import BUILTIN, MAX_CELLS, axis_kind, expand, parameters

router = APIRouter(route_class=WriterRoute)
StudyId = Annotated[int, Path(ge=1, le=schemas.MAX_ID, description="a study id")]
NO_STUDY = schemas.error_responses({404: "no such study"})
MAX_RUNS = 10_000  # runs in one study, summed over its cells


class Axis(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="hidden, depth, task, budget.evaluations, budget.seconds or ALGORITHM.SETTING (e.g. ga.population_size)")
    values: list[Any] = Field(min_length=1, max_length=MAX_CELLS, description="the axis's values, in order")


class StudyBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=128, description="a name; a built-in study's name alone runs it (GET /studies/builtin)")
    task: str | None = Field(None, description="the task of every cell (unless a `task` axis sets it)")
    axis: Axis | None = Field(None, description="one axis")
    axes: list[Axis] | None = Field(None, max_length=2, description="one or two axes (instead of `axis`)")
    methods: list[str] = Field(default_factory=default_methods, min_length=1)
    seeds: int | list[int] = Field(5, description="per cell: a number of seeds or a list")
    budget: dict[str, Any] | None = None
    architecture: dict[str, Any] | None = None
    task_options: dict[str, Any] | None = None
    tuning: dict[str, Any] | None = Field(None, description="not available yet: refused with 422")


StudyCreate = create_model("StudyCreate", __base__=StudyBase, **{name: (dict[str, Any] | None, None) for name in ALGORITHMS})


def _study_dict(body: StudyBase) -> dict:
    data = body.model_dump(exclude_none=True)
    if body.model_fields_set <= {"name"} and data.get("name") in BUILTIN:
        return json.loads(json.dumps(BUILTIN[data["name"]]))
    if "tuning" in data:
        raise schemas.invalid(("tuning",), "equal tuning is not available yet (docs/studies.md): submit without `tuning`")
    axes = data.pop("axes", None) or ([data.pop("axis")] if "axis" in data else None)
    data.pop("axis", None)
    if not axes:
        raise schemas.invalid(("axis",), "a study needs an axis: {\"name\": \"hidden\", \"values\": [2, 4, 8]} (or `axes`, or a built-in `name`)")
    data["axes"] = axes
    if "task" not in data and not any(axis["name"] == "task" for axis in axes):
        raise schemas.invalid(("task",), "a study needs a task (or a `task` axis)")
    data.setdefault("task", next((axis["values"][0] for axis in axes if axis["name"] == "task"), None))
    data.setdefault("name", " x ".join(axis["name"] for axis in axes) + f" on {data['task']}")
    return data


def _cell_error(error: Exception, point: dict) -> RequestValidationError:
    """A cell's 422 (pydantic or the job's own checks), its message saying which cell."""
    where = ", ".join(f"{name}={value}" for name, value in point.items())
    items = error.errors() if hasattr(error, "errors") else []
    item = dict(items[0]) if items else {"loc": ("body",), "msg": str(error)}
    location = tuple(item.get("loc") or ())
    location = location if location[:1] == ("body",) else ("body", *location)
    return RequestValidationError([{"loc": location, "msg": f"at {where}: {str(item.get('msg', '')).removeprefix('Value error, ')}", "type": "value_error"}])


@router.post("/studies", status_code=202, tags=["studies"], responses={**WRITE_ERRORS, **schemas.error_responses({409: "not answered by this route; declared as every write"})})
def submit_study(body: StudyCreate, caller: auth.Caller = Depends(submit_writer), settings: Settings = Depends(settings_dependency)):  # type: ignore[valid-type]
    """Expand a study into one job per cell and queue them all, or store nothing: each cell goes through
    POST /jobs's validation, limits and cost estimate; refused with 422 naming the limit when the study's
    total runs (at most 10,000) or CPU estimate (ARENA_MAX_JOB_CPU_SECONDS, summed over its cells) is over."""
    from arena.tasks import task_info
    from arena.workers.send import send_job_runs

    study = _study_dict(body)
    try:
        cells = expand(study)
    except ArenaError as error:
        where = error.location or "axes"
        raise schemas.invalid(tuple(where) if isinstance(where, (tuple, list)) else (where,), error.message) from None
    resolved, runs, seconds = [], 0, 0.0
    for cell in cells:
        try:
            job = schemas.JobCreate.model_validate_json(json.dumps(cell["body"]))
            seeds, specs = job.resolve(settings)
            run_seconds = schemas.job_cost(seeds, specs, settings)
        except (ValidationError, RequestValidationError) as error:
            raise _cell_error(error, cell["point"]) from None
        except ArenaError as error:
            raise schemas.invalid(("axes",), f"at {cell['point']}: {error.message}") from None
        runs += len(seeds) * len(specs)
        seconds += len(seeds) * sum(run_seconds.values())
        resolved.append((cell, job, seeds, specs, run_seconds))
    if runs > MAX_RUNS:
        raise schemas.invalid(("seeds",), f"this study has {runs:,} runs ({len(cells)} cells); at most {MAX_RUNS:,}: fewer cells, seeds or methods")
    if seconds > settings.max_job_cpu_seconds:
        raise schemas.invalid(
            ("budget",), f"this study may take {seconds:,.0f} CPU seconds over its {len(cells)} cells; at most {settings.max_job_cpu_seconds:,.0f} "
            "(ARENA_MAX_JOB_CPU_SECONDS, summed over cells): fewer cells or seeds, or a smaller budget",
        )  # fmt: skip
    to_send = []
    with session_scope() as session:
        if caller.key_id is not None:
            queries.lock_api_key(session, caller.key_id)
        stored = []
        for cell, job, seeds, specs, run_seconds in resolved:
            if caller.key_id is not None:
                _check_quota(session, caller, len(seeds), run_seconds)  # cumulative: earlier cells are in this session
            request = job.model_dump(mode="json", exclude_none=True)
            row = queries.create_owned_job(
                session, job.task, seeds, specs, request, api_key_id=caller.key_id, run_cpu_seconds=run_seconds,
                idempotency_key=None, request_hash=queries.settings_hash(request),
            )  # fmt: skip
            stored.append((cell["position"], cell["task"], cell["point"], row))
            runs_of = [(run.id, run.method, run.spec["budget"].get("seconds"), run.spec.get("algorithm")) for run in row.runs]
            to_send.append((runs_of, task_info(job.task).kind == "supervised"))
        row = queries.create_study(session, study["name"], study, study["axes"], study["methods"], stored, caller.key_id)
        answer = {"study_id": row.id, "name": row.name, "cells": len(stored), "runs": runs, "cpu_seconds_estimate": round(seconds, 1),
                  "job_ids": [job.id for _, _, _, job in stored]}  # fmt: skip
    for runs_of, supervised in to_send:  # after the commit, as POST /jobs does
        send_job_runs(runs_of, supervised=supervised)
    return answer


@router.get("/studies/builtin", tags=["studies"])
def builtin_studies():
    """The built-in studies by name (POST /studies {"name": NAME} runs one); NAME-full is sized for a cluster."""
    return BUILTIN


def _status(statuses: list[str], cancel_requested: bool) -> str:
    if all(status in FINISHED for status in statuses):
        if cancel_requested or "cancelled" in statuses:
            return "cancelled"
        return "failed" if "failed" in statuses else "succeeded"
    return "running" if any(status != "queued" for status in statuses) else "queued"


def _utc(moment) -> str:
    from datetime import timezone

    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def _summary(study, cells: list[tuple], counts: dict[int, dict[str, int]]) -> dict:
    total: dict[str, int] = {}
    for *_, job_id, _ in cells:
        for status, n in counts.get(job_id, {}).items():
            total[status] = total.get(status, 0) + n
    done = sum(n for status, n in total.items() if status in FINISHED)
    return {
        "id": study.id, "name": study.name, "created_at": _utc(study.created_at), "axes": study.axes,
        "methods": study.methods, "cancel_requested": study.cancel_requested,
        "status": _status([cell[4] for cell in cells], study.cancel_requested),
        "cells": len(cells), "cells_finished": sum(cell[4] in FINISHED for cell in cells),
        "run_counts": total, "progress": done / max(1, sum(total.values())),
    }  # fmt: skip


@router.get("/studies", tags=["studies"])
def list_studies(limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=schemas.MAX_ID), session: Session = Depends(database)):
    """Newest first, with each study's status and progress (its cells' jobs and runs)."""
    studies, total = queries.list_studies(session, limit, offset)
    cells = queries.study_cell_jobs(session, [s.id for s in studies])
    counts = queries.run_counts(session, [cell[3] for s in studies for cell in cells[s.id]])
    return {"total": total, "limit": limit, "offset": offset, "studies": [_summary(s, cells[s.id], counts) for s in studies]}


def _study_or_404(session: Session, study_id: int):
    study = queries.get_study(session, study_id)
    if study is None:
        raise HTTPException(status_code=404, detail=f"no study {study_id}")
    return study


def study_body(session: Session, study_id: int) -> dict:
    """The study, its progress, each cell (its job, verdict and parameter count) and the answer along each axis."""
    from arena.service.headline import job_headline
    from arena.verdict import report
    from arena.verdict.study import study_answer

    study = _study_or_404(session, study_id)
    cells = queries.study_cell_jobs(session, [study_id])[study_id]
    counts = queries.run_counts(session, [cell[3] for cell in cells])
    out_cells = []
    for position, task, point, job_id, status in cells:
        comparison = report.comparison(queries.job_stat_runs(session, job_id))
        request = queries.get_job(session, job_id).request
        entry = {"position": position, "task": task, "point": point, "job_id": job_id, "status": status, "run_counts": counts.get(job_id, {}),
                 "parameters": parameters(task, request), "comparison": comparison,
                 "headline": job_headline({"task": task, **comparison}) if comparison["methods"] else ""}  # fmt: skip
        out_cells.append(entry)
    axes = study.axes
    first = axes[0]["name"]
    answers = []
    if len(axes) == 1:
        answers.append({"slice": {}, **study_answer(first, [{"value": c["point"][first], "comparison": c["comparison"]} for c in out_cells])})
    else:
        second = axes[1]["name"]
        for value in axes[1]["values"]:
            mine = [c for c in out_cells if c["point"][second] == value]
            answers.append({"slice": {second: value}, **study_answer(first, [{"value": c["point"][first], "comparison": c["comparison"]} for c in mine])})
    return {**_summary(study, cells, counts), "request": study.request, "answers": answers, "cell_list": out_cells,
            "architecture_axis": any(axis_kind(a["name"]) == "architecture" for a in axes)}  # fmt: skip


@router.get("/studies/{study_id}", tags=["studies"], responses=NO_STUDY)
def get_study(study_id: StudyId, session: Session = Depends(database)):
    """The study's progress, its curves (success rate and ERT with 95% intervals per method along the
    axis), each pair's crossover in words and as data, and every cell's verdict (its job's comparison)."""
    body = study_body(session, study_id)
    return Response(content=json.dumps(body, default=str), media_type="application/json")


@router.post("/studies/{study_id}/cancel", tags=["studies"], responses={**WRITE_ERRORS, **NO_STUDY, **schemas.error_responses({409: "not answered by this route; declared as every write"})})
def cancel_study(study_id: StudyId, caller: auth.Caller = Depends(cancel_writer), session: Session = Depends(database)):
    """Cancel every unfinished cell (queued runs at once, running ones at their next heartbeat)."""
    study = _study_or_404(session, study_id)
    if caller.key_id is not None and study.api_key_id not in (None, caller.key_id):
        raise HTTPException(status_code=403, detail=f"study {study_id} was submitted with another API key")
    cancelled = queries.cancel_study(session, study_id)
    return {"study_id": study_id, "cancelled_jobs": cancelled}


# --- pictures and exports -----------------------------------------------------------------------------


def render_study(body: dict, fmt: str) -> bytes:
    """Success rate and ERT (95% intervals) per method against the axis: two panels (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from arena.service.plots import _colour

    answers = body["answers"]
    fig, axes = plt.subplots(len(answers), 2, figsize=(10, 3.8 * len(answers)), dpi=100, squeeze=False)
    for row, answer in enumerate(answers):
        labels = [str(v) for v in answer["values"]]
        where = {str(v): k for k, v in enumerate(answer["values"])}
        for index, (method, points) in enumerate(sorted(answer["curves"].items())):
            colour = _colour(method, index)
            x = [where[str(p["value"])] for p in points]
            rate = [p["success_rate"] if p["success_rate"] is not None else float("nan") for p in points]
            low = [r - (p["success_rate_ci"] or (r, r))[0] for r, p in zip(rate, points)]
            high = [(p["success_rate_ci"] or (r, r))[1] - r for r, p in zip(rate, points)]
            axes[row][0].errorbar(x, rate, yerr=[low, high], color=colour, marker="o", capsize=3, label=method)
            ert = [p["ert_evaluations"] if p["ert_evaluations"] is not None else float("nan") for p in points]
            elow = [e - ((p["ert_evaluations_ci"] or [e, e])[0] or e) for e, p in zip(ert, points)]
            ehigh = [((p["ert_evaluations_ci"] or [e, e])[1] or e) - e for e, p in zip(ert, points)]
            axes[row][1].errorbar(x, ert, yerr=[elow, ehigh], color=colour, marker="o", capsize=3, label=method)
        suffix = "".join(f" ({k} {v})" for k, v in answer["slice"].items())
        for panel, title in ((axes[row][0], "success rate"), (axes[row][1], "ERT (evaluations, failures counted)")):
            panel.set_xticks(range(len(labels)), labels)
            panel.set_xlabel(answer["axis"])
            panel.set_title(f"{title}{suffix}, 95% intervals", fontsize=9)
            panel.grid(True, alpha=0.3)
        axes[row][1].set_yscale("log")
        axes[row][0].set_ylim(-0.05, 1.05)
        axes[row][0].legend(fontsize=8)
    fig.suptitle(body["name"], fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    plt.close(fig)
    return buffer.getvalue()


@router.get("/studies/{study_id}/curves.{fmt}", tags=["studies"], responses=NO_STUDY)
def study_curves(study_id: StudyId, fmt: str, session: Session = Depends(database)):
    if fmt not in ("svg", "png"):
        raise HTTPException(status_code=404, detail="curves.svg or curves.png")
    picture = render_study(study_body(session, study_id), fmt)
    return Response(content=picture, media_type="image/svg+xml" if fmt == "svg" else "image/png")


EXPORT_FIELDS = ("study_id", "position", "point", "job_id", "run_id", "task", "method", "algorithm", "seed", "status", "solved",
                 "evaluations_to_solve", "evaluations", "cpu_seconds", "score")  # fmt: skip


def study_runs(session: Session, study_id: int) -> list[dict]:
    """Every run of the study with its cell, by cell then run id."""
    _study_or_404(session, study_id)
    rows = []
    for position, task, point, job_id, _ in queries.study_cell_jobs(session, [study_id])[study_id]:
        for run in queries.export_runs(session, job_id=job_id):
            rows.append({"study_id": study_id, "position": position, "point": point, "job_id": job_id, "run_id": run["id"],
                         **{k: run[k] for k in EXPORT_FIELDS[5:]}})  # fmt: skip
    return rows


def cell_name(point: dict) -> str:
    return ";".join(f"{name}={value}" for name, value in point.items())


@router.get("/studies/{study_id}/runs.{fmt}", tags=["studies"], responses=NO_STUDY)
def export_study(study_id: StudyId, fmt: str, session: Session = Depends(database)):
    """Every run of the study with its cell: `csv`, `jsonl`; `rliable.json` (rliable: method -> scores of
    shape (runs, tasks), a task being a cell, the score 1 when solved, else 0); `ioh.csv` (IOHanalyzer's
    general CSV: one row per run, columns funcId, DIM, algId, run, evaluations, fval). See docs/studies.md."""
    rows = study_runs(session, study_id)
    if fmt == "jsonl":
        return Response("".join(json.dumps(row, default=str) + "\n" for row in rows), media_type="application/x-ndjson")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "point": cell_name(row["point"])})
        return Response(buffer.getvalue(), media_type="text/csv")
    finished = [row for row in rows if row["status"] == "succeeded"]
    if fmt == "rliable.json":
        cells = sorted({row["position"]: cell_name(row["point"]) for row in finished}.items())
        scores: dict[str, dict[int, list[float]]] = {}
        for row in finished:
            scores.setdefault(row["method"], {}).setdefault(row["position"], []).append(1.0 if row["solved"] else 0.0)
        runs = min((len(v) for by_cell in scores.values() for v in by_cell.values()), default=0)  # a rectangle: the fewest seeds of any cell
        matrix = {method: [[by_cell.get(position, [float("nan")] * runs)[k] for position, _ in cells] for k in range(runs)] for method, by_cell in scores.items()}
        return {"tasks": [name for _, name in cells], "score": "solved (1) or not (0)", "scores": matrix}
    if fmt == "ioh.csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["funcId", "DIM", "algId", "run", "evaluations", "fval"])
        for row in finished:
            # fval: 0 when solved (the target), else the final score; evaluations: to solve, else spent.
            spent = row["evaluations_to_solve"] if row["solved"] else row["evaluations"]
            writer.writerow([cell_name(row["point"]) or row["task"], 1, row["method"], row["seed"], spent, 0.0 if row["solved"] else row["score"]])
        return Response(buffer.getvalue(), media_type="text/csv")
    raise HTTPException(status_code=404, detail="runs.csv, runs.jsonl, runs.rliable.json or runs.ioh.csv")


# --- the dashboard's study pages (arena/service/static/study.{html,js}) ---------------------------------


@router.get("/ui/studies", include_in_schema=False)
def studies_page():
    from arena.service.routes.pages import _page

    return _page("study")


@router.get("/ui/studies/{study_id}", include_in_schema=False)
def study_page(study_id: StudyId):
    from arena.service.routes.pages import _page

    return _page("study")
