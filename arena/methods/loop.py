"""The one population loop, and everything about counting, checking and stopping a run.

Every method takes its decisions about evaluations, time, solve checks and stopping from one object,
the `RunClock` here, so every method counts, checks and stops the same way. Population methods go
further: they do not loop at all. They say how they ask (which networks need a fitness now) and how
they are told (the fitness of those networks), as in evosax and pycma, and `train_population` does
the rest: it scores the asked members (one stacked forward for all of a generation's members), counts
their evaluations, keeps the clock, runs the solve check on the generation's champion at the task's
cadence (`check_every`, the same for every method), reports progress (which is how cancellation
arrives), stops on solve, on budget, or when a method makes no progress, and returns the `RunResult`.
`train_population_seeds` runs many seeds in lock-step: every active seed's asked members in ONE
stacked forward per generation (`PopulationForward.stacked`), each seed's result bit for bit its
`train_population` run.

Gradient methods (backprop, PPO) keep their own loops, and use the same `RunClock` for every decision.

A population method (see docs/methods.md, "Adding a method") is one module:

    NAME = "my_method"
    class Settings(arena.validation.Model): ...        # its settings, importable without torch

    def start(task, architecture, settings, seed):
        '''Called under the seed's random state (`seed_everything(seed)` just ran): returns an optimiser.'''

    train, train_seeds, batches = loop.population_method(start)   # everything else comes from the loop

and the optimiser `start` returns has three methods:

    ask() -> np.ndarray | None
        (m, n) float64: the members whose fitness is needed now, fresh ones only (m may be 0 when every
        member's fitness is already known, e.g. elites). None: the optimiser has converged and will not
        go on (the run ends, stopped "budget", as its budget would have).
    tell(fitness: np.ndarray) -> int | None
        the (m,) fitness of the asked members, higher is better (the task's own direction does not
        matter: `task.fitness` is always higher-is-better); NaN and +-inf already mapped to
        WORST_FITNESS. Returns the extra evaluations the optimiser spent itself (a hybrid's gradient
        steps; a backward pass counts as two), usually None (0).
    champion() -> (weights, row) | None
        the best member of the generation just told; row = its row in the last ask() (lets logic tasks
        judge the outputs its fitness came from) or None if it was not among them (an elite).
        None: no generation is complete yet (the GA's first tell is its initial population): no solve
        check, no progress report, no stop this time.

and optionally `metrics() -> dict` (added to the result's metrics, e.g. CMA-ES's restarts).

Rules the loop guarantees, so a method need not know them: the members are scored by the task
(`task.fitness`, on the generation's episodes `episode_seed(seed, generation)` on control tasks), one
evaluation per member per training sample or agent-step; the champion is judged by `task.evaluate`
only when `clock.due()` (the equal cadence), reusing the verdict of an unchanged champion; a run never
overruns its budget by more than one generation; in lock-step each seed's `ask`/`tell` run under that
seed's own global random state (numpy's legacy generator, torch's and Python's), so an optimiser may
draw from them (pycma does) and still give its unbatched run, bit for bit. A method whose operators
vectorise over seeds (the GA) may also supply `start_seeds(task, architecture, settings, seeds)`: one
optimiser for many seeds whose `ask` returns a list (one array per seed), `tell` takes a list and
returns a list, `champions()` returns a list, and `drop(rows)` forgets stopped seeds.
"""

from __future__ import annotations

import random
import time

import numpy as np

from arena.contract import Budget, Progress, ProgressCallback, RunResult
from arena.tasks.base import episode_seed

WORST_FITNESS = -1e30  # a diverged network's (NaN, inf) fitness: the worst any method can see
# A run whose generations evaluate no new member (a GA whose elites fill the population) would never
# reach an evaluations budget: after this many such generations in a row it stops, stopped "no progress".
MAX_EMPTY_GENERATIONS = 100


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's global generators: what a run's randomness starts from."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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

    Every trainer uses it, so every method counts, checks and stops the same way. The curve keeps a point
    when the best score improves and at least 1% more evaluations have passed since the last kept point
    (plus the final point), so a million epochs still make a curve of a few hundred points.
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
        self.checks: list[int] = []  # the evaluation counts at which the solve check ran (the cadence, observable)
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

    @classmethod
    def for_task(cls, task, budget: Budget, progress: ProgressCallback | None = None) -> "RunClock":
        """The clock of a run on `task`: its direction and its solve-check cadence."""
        return cls(budget, task.info.higher_is_better, progress, check_every(task))

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
        self.checks.append(self.evaluations)
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
    """The solve check on a generation's champion, for the population methods.

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
        if not self.clock.due():
            return None, None
        if not self.task.info.noisy_fitness and self._champion is not None and np.array_equal(champion, self._champion):
            return self._verdict
        score, solved, _ = self.task.evaluate(self.single(champion) if predictions is None else lambda _x: predictions)
        self._champion, self._verdict = champion.copy(), (score, solved)
        return score, solved


# --- the population loop -------------------------------------------------------------------------


def population_method(start, start_seeds=None):
    """A population method's `train`, `train_seeds` and `batches`, from its `start` (see the docstring)."""

    def train(task, architecture, settings, budget, seed, progress=None) -> RunResult:
        return train_population(start, task, architecture, settings, budget, seed, progress)

    def train_seeds(task, architecture, settings, budget, seeds, progress=None) -> list[RunResult]:
        return train_population_seeds(start, task, architecture, settings, budget, seeds, progress, start_seeds=start_seeds)

    return train, train_seeds, batches


def batches(task, settings=None) -> bool:
    """Whether seeds can run in lock-step: the members of every seed share one input batch (supervised
    tasks, whose fitness is one forward pass on the training set). Control tasks (episodes, per-step
    inputs) run one seed after another."""
    return not task.info.noisy_fitness and getattr(task, "x_train", None) is not None


def worst_to_floor(values) -> np.ndarray:
    """Fitness as float64 with NaN and +-inf (a diverged network) mapped to WORST_FITNESS."""
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=WORST_FITNESS, neginf=WORST_FITNESS, posinf=WORST_FITNESS)


class SeedRun:
    """One seed's side of the loop: its clock, its solve check, its best network, its generation count."""

    def __init__(self, task, forward, clock: RunClock, seed: int):
        self.task, self.forward, self.clock, self.seed = task, forward, clock, seed
        self.check = ChampionCheck(task, clock, forward.single)  # the solve check on each generation's champion
        self.best = None  # the best network so far (the first member asked until a check improves on it)
        self.generation = 0  # asks so far: a generation's episodes are `episode_seed(seed, generation)`
        self.empty = 0  # generations in a row that evaluated nothing

    def asked(self, members) -> None:
        if self.best is None and members is not None and len(members):
            self.best = np.array(members[0], dtype=np.float64)

    def told(self, evaluations: int, champion, predictions) -> bool:
        """Count a told generation, judge its champion when the cadence says so; True: the run stops."""
        clock = self.clock
        clock.evaluations += int(evaluations)
        self.generation += 1
        self.empty = 0 if evaluations else self.empty + 1
        if champion is None:  # no complete generation yet (the GA's initial population)
            return False
        weights, row = champion
        # On logic tasks a champion scored this generation is judged on the outputs its fitness came from.
        score, solved = self.check(weights, None if row is None or predictions is None else predictions[row])
        if clock.record(score, bool(solved)):
            self.best = np.array(weights, dtype=np.float64)
        if clock.should_stop():
            return True
        if self.empty >= MAX_EMPTY_GENERATIONS:
            clock.stopped = "no progress"  # e.g. a GA whose elites fill the population: nothing new is ever tried
            return True
        return False

    def finish(self, extra_metrics: dict) -> RunResult:
        """The task's verdict on the best network, and the result."""
        score, solved, metrics = self.task.evaluate(self.forward.single(self.best))
        return self.clock.finish(self.best, score, solved, {**metrics, **extra_metrics})


def train_population(start, task, architecture, settings, budget: Budget, seed: int, progress=None, clock: RunClock | None = None) -> RunResult:
    """One seed of a population method, driven by ask/tell (see the module docstring). `clock`: a
    RunClock to use instead of a fresh one (a test reads its `checks`)."""
    from arena.models.network import PopulationForward

    seed_everything(seed)  # what `arena.execute` did already: the same state when called directly
    forward = PopulationForward(architecture)
    run = SeedRun(task, forward, clock or RunClock.for_task(task, budget, progress), seed)
    optimiser = start(task, architecture, settings, seed)
    reuse = getattr(task, "scores_on_training_set", False)
    while True:
        members = optimiser.ask()
        if members is None:  # the optimiser converged and does not go on
            break
        run.asked(members)
        kept = {}
        if len(members):
            population_forward = forward.numpy(members)

            def forward_and_keep(x, population_forward=population_forward):
                kept["predictions"] = population_forward(x)
                return kept["predictions"]

            values, used = task.fitness(forward_and_keep if reuse else population_forward, episode_seed(seed, run.generation))
            fitness = worst_to_floor(values)
        else:
            fitness, used = np.empty(0), 0
        extra = optimiser.tell(fitness) or 0
        if run.told(used + extra, optimiser.champion(), kept.get("predictions")):
            break
    return run.finish(optimiser.metrics() if hasattr(optimiser, "metrics") else {})


class EachSeed:
    """Many one-seed optimisers as one many-seed optimiser (the `start_seeds` protocol), each asked and
    told under its own global random state, so each draws what it would alone."""

    def __init__(self, start, task, architecture, settings, seeds):
        self.optimisers, self.states = [], []
        for seed in seeds:
            seed_everything(seed)
            self.optimisers.append(start(task, architecture, settings, seed))
            self.states.append(self._state())

    @staticmethod
    def _state():
        import torch

        return np.random.get_state(), torch.get_rng_state(), random.getstate()

    def _each(self, call):
        import torch

        out = []
        for i, optimiser in enumerate(self.optimisers):
            numpy_state, torch_state, python_state = self.states[i]
            np.random.set_state(numpy_state)
            torch.set_rng_state(torch_state)
            random.setstate(python_state)
            out.append(call(i, optimiser))
            self.states[i] = self._state()
        return out

    def ask(self) -> list:
        return self._each(lambda _i, optimiser: optimiser.ask())

    def tell(self, fitness: list) -> list:
        return self._each(lambda i, optimiser: optimiser.tell(fitness[i]))

    def champions(self) -> list:
        return [optimiser.champion() for optimiser in self.optimisers]

    def metrics(self, row: int) -> dict:
        optimiser = self.optimisers[row]
        return optimiser.metrics() if hasattr(optimiser, "metrics") else {}

    def drop(self, rows: list[int]) -> None:
        self.optimisers = [o for row, o in enumerate(self.optimisers) if row not in rows]
        self.states = [s for row, s in enumerate(self.states) if row not in rows]


class OneSeed:
    """A many-seed optimiser (`start_seeds`) for a single seed, under the one-seed protocol."""

    def __init__(self, many):
        self.many = many

    def ask(self):
        return self.many.ask()[0]

    def tell(self, fitness):
        return self.many.tell([fitness])[0]

    def champion(self):
        return self.many.champions()[0]

    def metrics(self) -> dict:
        return self.many.metrics(0) if hasattr(self.many, "metrics") else {}


def train_population_seeds(start, task, architecture, settings, budget: Budget, seeds, progress=None, start_seeds=None) -> list[RunResult]:
    """Many seeds of a population method in lock-step, generation by generation: every active seed's
    asked members scored in ONE stacked forward (`PopulationForward.stacked`), each seed's fitness told
    to its own optimiser; each seed's result is its `train_population` run's, bit for bit, as long as a
    member's forward gives the same floats stacked or alone (it does, but a seed asking for a single
    member can differ in the last bit: torch's one-row product path). Needs `batches(task)`.

    Seconds: each seed gets an equal share of every generation it took part in (ask, forward, tell, and
    the previous generation's solve checks); `metrics["batched"]` = the number of seeds.
    """
    import torch

    from arena.models.network import PopulationForward

    seeds = [int(seed) for seed in seeds]
    count = len(seeds)
    forward = PopulationForward(architecture)
    x = torch.from_numpy(np.ascontiguousarray(task.x_train, dtype=np.float32))
    reuse = getattr(task, "scores_on_training_set", False)
    started, cpu_started = time.perf_counter(), time.thread_time()
    many = start_seeds(task, architecture, settings, seeds) if start_seeds is not None else EachSeed(start, task, architecture, settings, seeds)
    runs = [SeedRun(task, forward, SharedClock(budget, task.info.higher_is_better, for_seed(progress, seed), check_every(task)), seed) for seed in seeds]
    results: list[RunResult | None] = [None] * count
    active = list(range(count))  # original index of each seed the many-seed optimiser still holds, in its order

    def share_out(started: float, cpu_started: float) -> tuple[float, float]:
        now, cpu_now = time.perf_counter(), time.thread_time()
        for i in active:
            runs[i].clock.share += (now - started) / len(active)
            runs[i].clock.cpu_share += (cpu_now - cpu_started) / len(active)
        return now, cpu_now

    def finish(rows: list[int]) -> None:
        """Close the runs of these rows of the many-seed optimiser and forget them."""
        nonlocal active
        for row in rows:
            metrics = many.metrics(row) if hasattr(many, "metrics") else {}
            results[active[row]] = runs[active[row]].finish(metrics)
        many.drop(rows)
        active = [i for row, i in enumerate(active) if row not in rows]

    asked = many.ask()
    while active:
        converged = [row for row, members in enumerate(asked) if members is None]
        if converged:
            finish(converged)
            asked = [members for row, members in enumerate(asked) if row not in converged]
            if not active:
                break
        sizes = [len(members) for members in asked]
        for row, members in enumerate(asked):
            runs[active[row]].asked(members)
        # ONE stacked forward for every seed's asked members; each seed's rows are its own population's floats.
        fitness, predictions, per_member = [np.empty(0)] * len(asked), [None] * len(asked), 0
        if sum(sizes):
            stacked = forward.stacked(np.concatenate([members for members in asked if len(members)]), x, [s for s in sizes if s]).numpy()
            values, used = task.fitness(lambda _x: stacked)
            values, per_member = worst_to_floor(values), used // len(stacked)
            bounds = np.cumsum([0, *sizes])
            fitness = [values[bounds[row] : bounds[row + 1]] for row in range(len(asked))]
            predictions = [stacked[bounds[row] : bounds[row + 1]] for row in range(len(asked))]
        extras = many.tell(fitness)
        champions = many.champions()
        # The generation's time so far, shared equally by its seeds before their clocks record it (the
        # solve checks' time falls into the next share: one clock read per generation, as they cost).
        started, cpu_started = share_out(started, cpu_started)
        stopping = []
        for row, i in enumerate(active):
            if runs[i].told(sizes[row] * per_member + (extras[row] or 0), champions[row], predictions[row] if reuse else None):
                stopping.append(row)
        if stopping:
            finish(stopping)
        if active:
            asked = many.ask()

    for result in results:
        result.metrics["batched"] = count
    return results

