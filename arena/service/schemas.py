"""Request and response models of the HTTP API, and the validation of a submitted job.

The body is validated by the same pydantic models the CLI and the Python API use (Budget,
Architecture and each algorithm's settings model, from arena.methods), so /openapi.json documents
every setting with its default and range, and a 422's `loc` comes from pydantic. What a schema cannot
say (a task's sizes, settings that depend on the task, the service's own ceilings) is checked by
`arena.runspec.resolve` and `check_limits`, with the same 422 shape.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, create_model, field_serializer, field_validator

from arena.contract import Budget
from arena.errors import ArenaError
from arena.methods import ALGORITHMS, METHODS, default_methods, memory_floats
from arena.models.architecture import Architecture
from arena.runspec import check_seed, resolve
from arena.store.settings import Settings
from arena.tasks import task_info

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL: a larger one is a 422, never a database error
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="a job id")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="a run id")]
MethodName = Literal[tuple(METHODS)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class JobBase(Strict):
    """A job: one run per method and seed, all with the same architecture, budget and seeds."""

    task: str = Field(description="a task name from GET /tasks")
    methods: list[MethodName] = Field(default_factory=default_methods, min_length=1, description=f"the methods to compare (default: {', '.join(default_methods())})")
    seeds: int | list[int] = Field(5, description="a number of seeds (0, 1, ... n-1) or an explicit list")
    budget: Budget | None = Field(None, description="default: the task's budget")
    architecture: Architecture | None = Field(None, description="default: the task's architecture")
    task_options: dict[str, Any] | None = Field(None, description='car tasks: e.g. {"track": "hard"} or {"track": {"points": [[x, y], ...], "width": w}}')

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
        try:
            info = task_info(self.task)
        except ArenaError as error:
            raise invalid(("task",), error.message) from None
        seeds = self.seed_list(settings.max_seeds_per_job)
        algorithms_used = {METHODS[method].algorithm(info.kind).NAME for method in self.methods}
        for name in ALGORITHMS:
            if getattr(self, name) is not None and name not in algorithms_used:
                raise invalid((name,), f"{name} settings were given, but no method of this job runs {name} on {self.task!r}{self._hint(name, info.kind)}")
        specs = {}
        for method in self.methods:
            algorithm = METHODS[method].algorithm(info.kind).NAME
            try:
                spec = resolve(self.task, method, self.budget, getattr(self, algorithm), self.architecture, self.task_options)
            except ArenaError as error:
                raise invalid(error.location or ("task",), error.message) from None
            check_limits(spec, settings)
            specs[method] = spec.to_dict()
        return seeds, specs

    def _hint(self, algorithm: str, kind: str) -> str:
        owner = next(m for m in METHODS.values() if algorithm in (m.supervised.NAME, m.control.NAME))
        if owner.name in self.methods:
            here = owner.algorithm(kind).NAME
            return f" (on {kind} tasks {owner.name} runs {here}: give its settings as {here!r})"
        return f" (add {owner.name!r} to methods)"


# One optional settings object per algorithm, named after it: `ga`, `cmaes`, `backprop` (supervised
# tasks) and `ppo` (what backprop runs on car tasks). Built from the registry: a new method needs no edit here.
JobCreate = create_model(
    "JobCreate",
    __base__=JobBase,
    **{
        name: (module.Settings | None, Field(None, description=f"{module.Settings.__doc__.strip()} Unset fields take the task's defaults (GET /tasks)."))
        for name, module in ALGORITHMS.items()
    },
)


def invalid(location: tuple, message: str) -> RequestValidationError:
    """A 422 naming a field of the body, in the body FastAPI gives for a schema error: {"detail": [{"loc", "msg", "type"}]}."""
    return invalid_at(("body", *location), message)


def invalid_at(location: tuple, message: str) -> RequestValidationError:
    """A 422 naming the place in the request ("query", "jobs"), in FastAPI's validation-error body."""
    return RequestValidationError([{"loc": tuple(location), "msg": message, "type": "value_error"}])


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
    population = getattr(spec.settings, "population_size", None)
    if population is not None and population > settings.max_population:
        raise invalid(
            (spec.algorithm, "population_size"),
            f"population_size must be at most {settings.max_population} (ARENA_MAX_POPULATION); got {population}",
        )
    floats, field, what = run_memory_floats(spec)
    if floats > settings.max_population_parameters:
        raise invalid(
            (spec.algorithm, field) if field else ("architecture",),
            f"{what} = {floats:,} floats ({floats * 8 / 1e9:.3g} GB) at once; at most {settings.max_population_parameters:,} "
            f"(ARENA_MAX_POPULATION_PARAMETERS): a smaller network or {field or 'population'}",
        )


def run_memory_floats(spec) -> tuple[int, str | None, str]:
    """(floats a run holds at once, the setting that multiplies them, the product in words): the run's
    algorithm's own memory model (`memory_floats` in its module, arena.methods)."""
    return memory_floats(ALGORITHMS[spec.algorithm], spec.architecture, spec.settings)


# An evaluation is one forward pass on one input: about `parameters` multiply-adds, plus the per-sample
# work of the task and the method (data, environment step, selection), counted as at least 1,000.
# 10^9 of those per CPU second is optimistic for one core: the estimate errs low, and the time limit
# (ARENA_MAX_BUDGET_SECONDS) bounds it.
ESTIMATE_MULTIPLY_ADDS_PER_SECOND = 1e9
ESTIMATE_MIN_WORK_PER_EVALUATION = 1_000


def run_cpu_seconds(spec: dict, settings: Settings) -> float:
    """The CPU seconds one run may take: its seconds budget (a run is single-threaded, so CPU seconds
    are at most wall seconds), else an estimate from its evaluations budget, at most the time limit."""
    budget = spec.get("budget") or {}
    if budget.get("seconds") is not None:
        return float(min(budget["seconds"], settings.max_budget_seconds))
    parameters = Architecture.model_validate(spec["architecture"]).num_parameters
    work = max(parameters, ESTIMATE_MIN_WORK_PER_EVALUATION)
    estimate = budget["evaluations"] * work / ESTIMATE_MULTIPLY_ADDS_PER_SECOND
    return float(min(max(estimate, 1.0), settings.max_budget_seconds))


def job_cost(seeds: list[int], specs: dict[str, dict], settings: Settings) -> dict[str, float]:
    """{method: CPU seconds per run}; 422 naming ARENA_MAX_JOB_CPU_SECONDS when the whole job is over it."""
    per_run = {method: run_cpu_seconds(spec, settings) for method, spec in specs.items()}
    total = sum(per_run.values()) * len(seeds)
    if total > settings.max_job_cpu_seconds:
        parts = " + ".join(f"{method} {seconds:g} s" for method, seconds in per_run.items())
        raise invalid(
            ("budget",),
            f"this job may take {total:,.0f} CPU seconds ({len(seeds)} seeds x ({parts})); at most {settings.max_job_cpu_seconds:,.0f} "
            f"(ARENA_MAX_JOB_CPU_SECONDS): fewer seeds or methods, or a smaller budget",
        )
    return per_run


def one_line_error(text: str | None) -> str | None:
    """What a client sees of a failed run's error: the exception line of a traceback (its last line), or
    the first line of a message; never the frames (server paths, code). The whole text stays in the
    database for operators."""
    if not text:
        return text
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]
    return line if len(line) <= 500 else line[:497] + "..."


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
    deferred_runs: int = Field(
        0, description="runs stored but not sent to a worker queue yet (the broker did not answer): the service sends "
        "them itself within ARENA_REQUEUE_AFTER_SECONDS; nothing to retry",
    )  # fmt: skip


class RunSummary(Out):
    id: int
    job_id: int
    task: str
    method: str
    algorithm: str | None = Field(description="what the method trained with on this task (backprop runs ppo on car tasks)")
    label: str = Field(description="method and algorithm in words: `backprop (ppo)`")
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
    cpu_seconds: float | None
    cpu_seconds_to_solve: float | None
    stopped: str | None
    error: str | None = Field(description="why a run failed, in one line (the traceback stays with the operators)")

    @field_validator("error", mode="before")
    @classmethod
    def _one_line(cls, value):
        return one_line_error(value) if isinstance(value, str) else value


class RunDetail(RunSummary):
    spec: dict = Field(description="the run's whole definition (task, method, algorithm, architecture, settings, budget, options): with the seed, it reproduces the run")
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


class ErrorMessage(Out):
    detail: str


def error_responses(descriptions: dict[int, str]) -> dict[int, dict]:
    """A route's `responses` for its errors, each answered as {"detail": "..."}: {status: when}."""
    return {status: {"model": ErrorMessage, "description": text} for status, text in descriptions.items()}


class ApiKeyInfo(Out):
    """A key as listed: never the key itself (only its first characters)."""

    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    max_concurrent_runs: int | None
    max_queued_cpu_seconds: float | None


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


# --- the verdict (see arena/verdict/ and docs/statistics.md) ----------------------------------


class Interval(Out):
    estimate: float | None
    low: float | None
    high: float | None


class KaplanMeierPoint(Out):
    x: float = Field(description="evaluations or CPU seconds")
    solved: float = Field(description="estimated proportion of runs solved by x")


class KaplanMeier(Out):
    median: Interval
    q1: Interval
    q3: Interval
    curve: list[KaplanMeierPoint]
    n: int
    events: int = Field(description="runs that solved")


class WallSeconds(Out):
    median: float
    q1: float
    q3: float


class ConfigurationStats(Out):
    method: str
    algorithm: str | None
    label: str = Field(description="method and algorithm in words: `backprop (ppo)`")
    settings_hash: str
    runs: int = Field(description="distinct seeds that finished normally (succeeded): the evidence")
    failed: int
    cancelled: int
    duplicates: int = Field(description="repeated (configuration, seed) runs, counted once")
    solved: int
    success_rate: float | None
    success_rate_ci: tuple[float, float] | None = Field(description="95% Wilson interval")
    ert_evaluations: float | None = Field(description="expected running time (COCO): evaluations spent by all runs / runs solved")
    ert_evaluations_ci: tuple[float | None, float | None] | None = Field(description="bootstrap 95%; high None = unbounded")
    ert_seconds: float | None = Field(description="ERT on CPU seconds; it and its interval hold for this machine at its load, not across machines")
    ert_seconds_ci: tuple[float | None, float | None] | None
    kaplan_meier: dict[str, KaplanMeier] = Field(description="per lens (evaluations, cpu_seconds): proportion solved, unsolved runs censored")
    iqm_evaluations: Interval | None = Field(description="interquartile mean of evaluations to solve, when every run solved")
    wall_seconds: WallSeconds | None = Field(description="for information only: noisy under machine load")


class LensVerdict(Out):
    winner: str | None
    text: str
    p: float | None = None


class MethodComparison(Out):
    first: str
    second: str
    n: dict[str, int]
    solved: dict[str, int]
    probability_of_improvement: dict[str, Interval] = Field(description="per lens: P(first beats second), Vargha-Delaney A12, all runs (unsolved worst); Newcombe 95%")
    probability_of_improvement_solved: dict[str, Interval] | None = Field(None, description="per lens: the same among solved runs: what the speed verdict states")
    speed_p: dict[str, float | None] | None = Field(None, description="per lens: exact/permutation rank test among solved runs (decides the speed lenses)")
    speed_p_adjusted: dict[str, float | None] | None = Field(None, description="Holm per lens across every comparison reported together, after the selection factor")
    selected_from: dict[str, int] | None = Field(None, description="configurations each side was chosen from (p-values multiplied by their product)")
    logrank_p: dict[str, float | None] = Field(description="log-rank test, for reference only (asymptotic; decides nothing)")
    logrank_p_adjusted: dict[str, float | None] = Field(description="equal to speed_p_adjusted (earlier name)")
    success_p: float | None = Field(description="Fisher's exact test on success rates")
    success_p_adjusted: float | None
    success_difference: Interval = Field(description="success rate first - second, Newcombe 95%")
    verdict: dict[str, LensVerdict] = Field(description="per lens: reliability, evaluations, cpu_seconds")
    labels: dict[str, str] | None = None


class Verdict(Out):
    winner: str | None = Field(description="the method better than every other on this lens, if any")
    text: str


class LeaderboardEntry(ConfigurationStats):
    rank: int
    tied_with_previous: bool = Field(description="no Holm-corrected test (success, or evaluations among solved runs) separates it from the entry above")
    too_few_runs: bool = Field(False, description="fewer than 5 distinct runs: shown, ranked last, never a method's best nor in a verdict")
    tie_group: int
    architecture: dict | None
    settings: dict | None
    budget: dict | None
    task_options: dict
    configuration: str = Field("", description="the configuration in words: network, budget, settings that differ from the task's defaults")


class BestConfiguration(Out):
    label: str
    settings_hash: str
    rank: int


class Leaderboard(Out):
    task: str
    score_name: str
    higher_is_better: bool
    entries: list[LeaderboardEntry] = Field(description="ranked by success rate, then ERT in evaluations")
    duplicates: int
    best: dict[str, BestConfiguration] = Field(description="each method's best configuration: compared head to head")
    comparisons: list[MethodComparison]
    verdict: dict[str, Verdict] = Field(description="per lens, in words")
    headline: str = Field("", description="the verdict in one plain sentence (arena.service.headline)")


class Comparison(Out):
    job_id: int
    task: str
    status: Status
    score_name: str
    higher_is_better: bool
    methods: dict[str, ConfigurationStats] = Field(description="keyed by label")
    duplicates: int
    comparisons: list[MethodComparison]
    verdict: dict[str, Verdict]
    headline: str = Field("", description="the verdict in one plain sentence (arena.service.headline)")


class TaskVerdict(Out):
    labels: dict[str, str]
    settings_hash: dict[str, str]
    n: dict[str, int] = Field(description="distinct runs of each method's best configuration")
    solved: dict[str, int]
    winner: dict[str, str | None]
    verdict: dict[str, Verdict]
    headline: str = Field("", description="the task's verdict in one plain sentence")


class Summary(Out):
    methods: dict[str, dict[str, dict[str, int]]] = Field(description="method -> lens -> won / lost / undecided tasks")
    tasks: dict[str, TaskVerdict]
    performance_profiles: dict[str, dict[str, list[float]]] = Field(description="per lens: tau and, per method, the fraction of tasks within tau x the best ERT")
    comparisons: dict[str, list[MethodComparison]]
    corrected_across_tasks: bool = Field(description="Holm over every comparison of every task at once")
    headline: str = Field("", description="across tasks, in one plain sentence")
    jobs: list[int] | None = None


class Health(Out):
    status: Literal["ok", "degraded"]
    database: str
    broker: str
    mode: Literal["embedded", "production"]
