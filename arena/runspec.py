"""Everything that defines a run except its seed, resolved and validated without torch.

The CLI, the Python API and the HTTP API all call `resolve`, so a bad task, method, architecture,
budget or setting is refused the same way everywhere, before anything is stored or queued.
`RunSpec.to_dict()` is what the database stores (a run's `spec`); `RunSpec.from_dict()` gives back the
same run, so every run is reproducible from its stored seed and spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from arena.contract import Budget
from arena.errors import ArenaError
from arena.methods import get_method, make_settings
from arena.models.architecture import Architecture
from arena.tasks import check_architecture, check_task_options, task_info
from arena.validation import Model, check

MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class RunSpec:
    task: str
    method: str  # the family a user picks: backprop, ga, cmaes
    algorithm: str  # what it runs on this task: backprop or ppo, ga, cmaes
    architecture: Architecture
    settings: Model  # the algorithm's settings model, complete
    budget: Budget
    task_options: dict

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "method": self.method,
            "algorithm": self.algorithm,
            "architecture": self.architecture.model_dump(mode="json"),
            "settings": self.settings.model_dump(mode="json"),
            "budget": self.budget.model_dump(),
            "task_options": self.task_options,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "RunSpec":
        return resolve(
            data["task"], data["method"], data.get("budget"), data.get("settings"), data.get("architecture"), data.get("task_options")
        )


def resolve(
    task: str,
    method: str,
    budget: dict | Budget | None = None,
    settings=None,
    architecture: dict | Architecture | None = None,
    task_options: dict | None = None,
) -> RunSpec:
    """Validate and complete a run's definition. `settings` are the user's overrides (a dict or the
    algorithm's settings model); the task's tuned defaults fill the rest."""
    info = task_info(task)
    algorithm = get_method(method).algorithm(info.kind)
    arch = info.default_architecture if architecture is None else check(Architecture, architecture, ("architecture",))
    check_architecture(info, arch)
    budget_obj = info.default_budget if budget is None else check(Budget, budget, ("budget",))
    config = make_settings(method, info.kind, info.method_defaults.get(algorithm.NAME), settings)
    loss = info.loss if getattr(config, "loss", "task") == "task" else config.loss
    if info.kind == "supervised" and loss == "bce" and arch.output_activation != "sigmoid":
        raise ArenaError(
            f"the bce loss needs outputs in (0, 1): use output_activation 'sigmoid' (got {arch.output_activation!r}) or loss 'mse'",
            location=("architecture", "output_activation"),
        )
    options = check_task_options(info, task_options)
    return RunSpec(task, method, algorithm.NAME, arch, config, budget_obj, options)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ArenaError(f"a seed must be an integer from 0 to {MAX_SEED}, got {seed!r}", "seed")
    return seed
