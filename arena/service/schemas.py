"""Request and response models of the HTTP API, and the validation of a submitted job.

Structure and types are checked by pydantic (strict: "5" is not a number); meaning is checked by
`arena.runspec.resolve` for every method, exactly as the CLI does, and then the service's limits.
Every refusal is a 422 whose `loc` names the field and whose `msg` names the limit.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from arena.contract import Budget
from arena.errors import ArenaError
from arena.methods import METHODS, config_class
from arena.models.architecture import Architecture
from arena.runspec import check_seed, resolve
from arena.service.settings import Settings
from arena.tasks import task_info

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Method = Literal["backprop", "ga"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class BudgetIn(Strict):
    evaluations: int | None = Field(None, description="stop after this many evaluations (forward passes)")
    seconds: float | None = Field(None, description="stop after this many seconds of training")
    stop_on_solve: bool = Field(True, description="stop as soon as the task is solved")


class ArchitectureIn(Strict):
    input_size: int
    hidden_sizes: list[int]
    output_size: int
    hidden_activation: str = "tanh"
    output_activation: str = "identity"


class JobCreate(Strict):
    """A job: one run per method and seed, all with the same architecture, budget and seeds."""

    task: str = Field(description="a task name from GET /tasks")
    methods: list[Method] = Field(default_factory=lambda: list(METHODS), min_length=1)
    seeds: int | list[int] = Field(5, description="a number of seeds (0, 1, ... n-1) or an explicit list")
    budget: BudgetIn | None = Field(None, description="default: the task's budget")
    architecture: ArchitectureIn | None = Field(None, description="default: the task's architecture")
    backprop: dict[str, Any] | None = Field(None, description="backprop (or PPO on control tasks) settings; see GET /tasks")
    ga: dict[str, Any] | None = Field(None, description="GA settings; see GET /tasks")
    task_options: dict[str, Any] | None = Field(None, description="car tasks: e.g. {\"track\": ...}")

    def seed_list(self, limit: int) -> list[int]:
        if isinstance(self.seeds, int):
            if not 1 <= self.seeds <= limit:
                raise invalid(("seeds",), f"seeds must be from 1 to {limit} (ARENA_MAX_SEEDS_PER_JOB); got {self.seeds}")
            return list(range(self.seeds))
        if not 1 <= len(self.seeds) <= limit:
            raise invalid(("seeds",), f"a job takes 1 to {limit} seeds (ARENA_MAX_SEEDS_PER_JOB); got {len(self.seeds)}")
        for index, seed in enumerate(self.seeds):
            try:
                check_seed(seed)
            except ArenaError as error:
                raise invalid(("seeds", index), error.message) from None
        if len(set(self.seeds)) != len(self.seeds):
            raise invalid(("seeds",), "seeds must not repeat")
        return list(self.seeds)

    def resolve(self, settings: Settings) -> tuple[list[int], dict[str, dict]]:
        """(seeds, {method: RunSpec dict}) or RequestValidationError naming the field."""
        if len(set(self.methods)) != len(self.methods):
            raise invalid(("methods",), "methods must not repeat")
        seeds = self.seed_list(settings.max_seeds_per_job)
        budget = self.budget.model_dump() if self.budget is not None else None
        architecture = self.architecture.model_dump() if self.architecture is not None else None
        specs = {}
        for method in self.methods:
            method_settings = getattr(self, method)
            try:
                spec = resolve(self.task, method, budget, method_settings, architecture, self.task_options)
            except ArenaError as error:
                raise invalid(self._location(error.field, method), error.message) from None
            check_limits(spec, settings)
            specs[method] = spec.to_dict()
        return seeds, specs

    def _location(self, field: str | None, method: str) -> tuple:
        """Where an ArenaError's field lives in this request body."""
        if field in (None, "task", "seed"):
            return ("task",) if field in (None, "task") else ("seeds",)
        if field == "method":
            return ("methods",)
        if field == method or field in (getattr(self, method) or {}):
            return (method,) if field == method else (method, field)  # a key the user gave in this method's settings
        if field == "budget" or field in Budget.__dataclass_fields__:
            return ("budget",) if field == "budget" else ("budget", field)
        if field == "architecture" or field in Architecture.__dataclass_fields__:
            return ("architecture",) if field == "architecture" else ("architecture", field)
        if field == "task_options" or field in (self.task_options or {}):
            return ("task_options",) if field == "task_options" else ("task_options", field)
        try:
            kind = task_info(self.task).kind
        except ArenaError:
            kind = "supervised"
        if field in {f.name for f in dataclasses.fields(config_class(method, kind))}:
            return (method, field)  # a setting the task's defaults or a cross-field check named
        return (field,)


def invalid(location: tuple, message: str) -> RequestValidationError:
    """The same 422 body FastAPI gives for a schema error: {"detail": [{"loc", "msg", "type"}]}."""
    return RequestValidationError([{"loc": ("body", *location), "msg": message, "type": "value_error"}])


def check_limits(spec, settings: Settings) -> None:
    """The service's own ceilings (configurable), on the values a run would really use."""
    budget = spec.budget
    if budget.evaluations is not None and budget.evaluations > settings.max_budget_evaluations:
        raise invalid(
            ("budget", "evaluations"),
            f"budget evaluations must be at most {settings.max_budget_evaluations} (ARENA_MAX_BUDGET_EVALUATIONS); got {budget.evaluations}",
        )
    if budget.seconds is not None and budget.seconds > settings.max_budget_seconds:
        raise invalid(
            ("budget", "seconds"),
            f"budget seconds must be at most {settings.max_budget_seconds:g} (ARENA_MAX_BUDGET_SECONDS); got {budget.seconds:g}",
        )
    population = getattr(spec.config, "population_size", None)
    if population is not None and population > settings.max_population:
        raise invalid(
            (spec.method, "population_size"),
            f"population_size must be at most {settings.max_population} (ARENA_MAX_POPULATION); got {population}",
        )


# --- responses --------------------------------------------------------------------------------------


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_serializer("*", when_used="json", check_fields=False)
    def _utc(self, value):
        # SQLite returns naive datetimes; every timestamp here is UTC.
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class RunRef(Out):
    id: int
    method: str
    seed: int


class JobCreated(Out):
    job_id: int
    status: Status
    run_ids: list[int]
    runs: list[RunRef]


class RunSummary(Out):
    id: int
    job_id: int
    task: str
    method: str
    seed: int
    status: Status
    attempts: int
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    progress_evaluations: int | None
    progress_seconds: float | None
    progress_score: float | None
    score: float | None
    solved: bool | None
    evaluations_to_solve: int | None
    seconds_to_solve: float | None
    evaluations: int | None
    seconds: float | None
    stopped: str | None
    error: str | None


class RunDetail(RunSummary):
    settings: dict
    settings_hash: str
    worker: str | None
    metrics: dict | None
    extra_parameters: int | None
    library_versions: dict | None
    curve: list[dict] | None = None


class RunWeights(Out):
    run_id: int
    architecture: dict
    layout: str = "for each layer in order: weight (out x in, row-major) then bias"
    weights: list[float]


class JobSummary(Out):
    id: int
    task: str
    status: Status
    created_at: datetime
    finished_at: datetime | None
    methods: list[str]
    seeds: list[int]
    cancel_requested: bool
    run_counts: dict[str, int]


class JobDetail(JobSummary):
    request: dict
    runs: list[RunSummary]


class JobPage(Out):
    total: int
    limit: int
    offset: int
    jobs: list[JobSummary]


class Spread(Out):
    median: float
    q1: float
    q3: float
    iqr: float
    n: int


class ConfigurationStats(Out):
    runs: int = Field(description="runs that finished normally (succeeded)")
    failed: int
    cancelled: int
    solved: int
    success_rate: float | None
    success_rate_ci: tuple[float, float] | None = Field(description="95% Wilson interval")
    evaluations_to_solve: Spread | None = Field(description="over solved runs")
    seconds_to_solve: Spread | None = Field(description="over solved runs")
    median_score: float | None
    median_evaluations: float | None
    median_seconds: float | None


class LeaderboardEntry(ConfigurationStats):
    rank: int
    method: str
    settings_hash: str
    architecture: dict | None
    settings: dict | None
    budget: dict | None
    task_options: dict


class Leaderboard(Out):
    task: str
    score_name: str
    higher_is_better: bool
    entries: list[LeaderboardEntry]


class Comparison(Out):
    job_id: int
    task: str
    status: Status
    score_name: str
    higher_is_better: bool
    methods: dict[str, ConfigurationStats]
    head_to_head: list[dict]


class Health(Out):
    status: Literal["ok", "degraded"]
    database: str
    broker: str
    mode: Literal["embedded", "production"]
