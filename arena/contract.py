"""The run contract shared by every trainer, the CLI, the HTTP API and the database.

A trainer is a plain function

    train(task, architecture, settings, budget, seed, progress=None) -> RunResult

It knows nothing of Celery, HTTP or SQL. `progress` is called at least once per epoch or generation
with a `Progress`; if it returns True the trainer stops (that is how cancellation reaches it).
"""

from __future__ import annotations

import time
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


def check_every(task) -> int | None:
    """The solve-check cadence of a task, in evaluations: the same for every method.

    A method checks its best network at most once every this many evaluations (and always before its
    budget runs out); None means after every epoch or generation. Supervised tasks: the check's forward
    passes on the held-out set may cost at most half the training evaluations they judge, so logic tasks
    (the check is 2^n rows, and every method reuses its training forward there) check every step, and
    function tasks (a 1,000-point grid on sine) every 2 x len(held-out set) evaluations. Control tasks:
    the catalog's `TaskInfo.check_every` (car tasks: 2,048 agent-steps). The check is never counted as
    evaluations.
    """
    if getattr(task, "x_test", None) is None:
        return task.info.check_every
    if getattr(task, "is_logic", True):
        return None
    return 2 * len(task.x_test)


class RunClock:
    """Tracks evaluations, seconds, the best score so far, first solve and a thinned learning curve.

    Both trainers use it, so both count and record the same way. The curve keeps a point when the best
    score improves and at least 1% more evaluations have passed since the last kept point (plus the
    final point), so a million epochs still make a curve of a few hundred points.
    """

    def __init__(
        self,
        budget: Budget,
        higher_is_better: bool,
        progress: ProgressCallback | None = None,
        check_every: int | None = None,
    ):
        self.budget = budget
        self.check_every = check_every  # solve-check cadence in evaluations (see `check_every(task)`, `due()`)
        self._last_check: int | None = None
        self.higher_is_better = higher_is_better
        self.progress = progress
        self.start = time.perf_counter()
        self.cpu_start = time.thread_time()
        self.evaluations = 0
        self.step = 0
        self.best_score: float | None = None
        self.solved = False
        self.evaluations_to_solve: int | None = None
        self.seconds_to_solve: float | None = None
        self.cpu_seconds_to_solve: float | None = None
        self.curve: list[dict] = []
        self.stopped = "budget"
        self._last_seconds = 0.0

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def cpu_seconds(self) -> float:
        return time.thread_time() - self.cpu_start

    def due(self) -> bool:
        """Whether the solve check is due now: at least `check_every` evaluations since the last check
        (or no check yet), or the budget is spent (so the last network is always judged)."""
        if not self.check_every or self._last_check is None:
            return True
        if self.evaluations - self._last_check >= self.check_every:
            return True
        return self.budget.exhausted(self.evaluations, self.seconds())

    def better(self, score: float) -> bool:
        if self.best_score is None:
            return True
        return score > self.best_score if self.higher_is_better else score < self.best_score

    def record(self, score: float | None, solved: bool = False) -> bool:
        """Record the end of an epoch or generation whose best network scored `score`.

        `score=None` records a step without a solve check (control tasks check every few steps).
        Returns True when the caller should keep this network as its best (it improved the score, or
        it is the first to solve). Call `should_stop()` afterwards.
        """
        self.step += 1
        seconds = self.seconds()
        self._last_seconds = seconds
        if score is None:  # no check this step
            return False
        self._last_check = self.evaluations
        if score != score:  # a diverged network (NaN)
            return False
        improved = self.better(score)
        first_solve = solved and not self.solved
        if improved:
            self.best_score = score
        if first_solve:
            self.solved = True
            self.evaluations_to_solve = self.evaluations
            self.seconds_to_solve = seconds
            self.cpu_seconds_to_solve = self.cpu_seconds()
        if improved or first_solve:
            last = self.curve[-1]["evaluations"] if self.curve else -1
            point = {"evaluations": self.evaluations, "seconds": round(seconds, 6), "score": float(self.best_score)}
            keep_last = self.curve and self.curve[-1]["evaluations"] == self.evaluations_to_solve
            if first_solve or keep_last or self.evaluations >= last * 1.01 or not self.curve:
                self.curve.append(point)
            else:
                self.curve[-1] = point
        return improved or first_solve

    def should_stop(self) -> bool:
        if self.progress is not None:
            cancel = self.progress(
                Progress(self.evaluations, self._last_seconds, self.best_score, self.solved, self.step)
            )
            if cancel:
                self.stopped = "cancelled"
                return True
        if self.solved and self.budget.stop_on_solve:
            self.stopped = "solved"
            return True
        return self.budget.exhausted(self.evaluations, self._last_seconds)

    def finish(
        self, weights, final_score: float, solved: bool | None = None, metrics: dict | None = None, extra_parameters: int = 0
    ) -> RunResult:
        """Close the run. `final_score`/`solved` are the task's verdict on the returned weights."""
        seconds = self.seconds()
        if self.stopped == "budget" and self.solved and self.budget.stop_on_solve:
            self.stopped = "solved"
        point = {"evaluations": self.evaluations, "seconds": round(seconds, 6), "score": float(final_score)}
        if not self.curve or self.curve[-1]["evaluations"] != self.evaluations:
            self.curve.append(point)
        return RunResult(
            score=float(final_score),
            solved=self.solved if solved is None else bool(solved),
            evaluations_to_solve=self.evaluations_to_solve,
            seconds_to_solve=self.seconds_to_solve,
            evaluations=self.evaluations,
            seconds=seconds,
            curve=self.curve,
            weights=[float(w) for w in weights],
            stopped=self.stopped,
            metrics=metrics or {},
            extra_parameters=extra_parameters,
            cpu_seconds=self.cpu_seconds(),
            cpu_seconds_to_solve=self.cpu_seconds_to_solve,
        )


class SharedClock(RunClock):
    """A run clock for seeds trained together (`train_seeds`): its seconds are the run's share of the
    batch's time, advanced by the trainer (`share`, `cpu_share`), not the time since it started."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.share = 0.0
        self.cpu_share = 0.0

    def seconds(self) -> float:
        return self.share

    def cpu_seconds(self) -> float:
        return self.cpu_share


def for_seed(progress, seed: int):
    """`train_seeds` reports progress as progress(seed, report); one seed's clock takes progress(report)."""
    return None if progress is None else (lambda report: progress(seed, report))


class ChampionCheck:
    """The solve check on a generation's champion, for the population methods (GA, CMA-ES).

    Called once a generation, before `clock.record`: at the same cadence as every method (when
    `clock.due()`), it returns the task's (score, solved) on the champion,
    else (None, None). With a deterministic fitness an unchanged champion (an elite) has an unchanged
    score, so the last champion's verdict is reused instead of evaluating it again.
    """

    def __init__(self, task, clock: RunClock, single):
        self.task = task
        self.clock = clock
        self.single = single  # flat weights -> a forward for `task.evaluate` (PopulationForward.single)
        self._champion = None
        self._verdict: tuple = (None, None)

    def __call__(self, champion, predictions=None) -> tuple:
        """`predictions`: the champion's outputs on the training set from the generation's own forward
        pass, on tasks that score on their training set (`task.scores_on_training_set`): judged instead
        of a second forward, as backprop reuses its training forward there."""
        import numpy as np  # here: the contract is read by the HTTP API and the CLI, which need no numpy

        if not self.clock.due():
            return None, None
        if not self.task.info.noisy_fitness and self._champion is not None and np.array_equal(champion, self._champion):
            return self._verdict
        score, solved, _ = self.task.evaluate(self.single(champion) if predictions is None else lambda _x: predictions)
        self._champion, self._verdict = champion.copy(), (score, solved)
        return score, solved
