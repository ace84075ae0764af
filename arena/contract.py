"""The run contract shared by every trainer, the CLI, the HTTP API and the database.

A trainer is a plain function

    train(task, architecture, settings, budget, seed, progress=None) -> RunResult

It knows nothing of Celery, HTTP or SQL. `progress` is called at least once per epoch or generation
with a `Progress`; if it returns True the trainer stops (that is how cancellation reaches it). This
module is the data only (Budget, Progress, RunResult); how a run counts, checks and stops (RunClock,
the solve-check cadence, the population loop) lives in arena/methods/loop.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from pydantic import Field, model_validator

from arena.validation import Model

# Hard ceilings that protect a worker from a typo; the service has its own (configurable, lower) limits.
MAX_EVALUATIONS = 10**11
MAX_SECONDS = 24 * 3600.0


class Budget(Model):
    """When a run must stop: after `evaluations` forward passes, after `seconds`, or whichever comes first.

    An evaluation is one forward pass of the network on one input (one agent-step in RL); a backward
    pass counts as two. A run may overrun its budget by at most one epoch or generation.
    """

    evaluations: int | None = Field(None, ge=1, le=MAX_EVALUATIONS, description="stop after this many evaluations (forward passes; a backward pass counts as two)")
    seconds: float | None = Field(None, gt=0, le=MAX_SECONDS, allow_inf_nan=False, description="stop after this many seconds of training (wall clock)")
    stop_on_solve: bool = Field(True, description="stop as soon as the task is solved")

    @model_validator(mode="after")
    def _some_limit(self) -> "Budget":
        if self.evaluations is None and self.seconds is None:
            raise ValueError("a budget needs evaluations, seconds, or both")
        return self

    def exhausted(self, evaluations: int, seconds: float) -> bool:
        return (self.evaluations is not None and evaluations >= self.evaluations) or (
            self.seconds is not None and seconds >= self.seconds
        )


@dataclass(frozen=True)
class Progress:
    """What a trainer reports after each epoch or generation."""

    evaluations: int
    seconds: float
    score: float | None  # best so far, in the task's own direction (None before the first solve check)
    solved: bool
    step: int  # epoch or generation


ProgressCallback = Callable[[Progress], "bool | None"]


@dataclass
class RunResult:
    """The result of one run, under the contract's names everywhere."""

    score: float
    solved: bool
    evaluations_to_solve: int | None
    seconds_to_solve: float | None
    evaluations: int
    seconds: float
    curve: list[dict]  # [{evaluations, seconds, score}], best so far
    weights: list[float]  # best network, flat, in the shared layout
    stopped: str  # "solved", "budget" or "cancelled"
    metrics: dict = field(default_factory=dict)  # task extras: margin, accuracy, laps, crash rate...
    extra_parameters: int = 0  # parameters a method trained beyond the shared architecture (log-std, value net)
    # The run's thread CPU time: machine load inflates wall seconds, not these (the seconds lens uses them).
    cpu_seconds: float | None = None
    cpu_seconds_to_solve: float | None = None

    def to_dict(self, weights: bool = True) -> dict:
        data = asdict(self)
        if not weights:
            data.pop("weights")
        return data

