"""Everything that defines a run except its seed, resolved and validated without torch.

The CLI and the HTTP API both call `resolve`, so a bad task, method, architecture, budget or setting
is refused the same way everywhere, before anything is stored or queued. `RunSpec.to_dict()` is what
the database stores; `RunSpec.from_dict()` gives back the same run, so every run is reproducible from
its stored seed and settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from arena.contract import Budget
from arena.errors import ArenaError
from arena.methods import config_class, make_config
from arena.models.architecture import Architecture
from arena.tasks import check_architecture, task_info

MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class RunSpec:
    task: str
    method: str
    architecture: Architecture
    config: object  # BackpropConfig, GAConfig or PPOConfig
    budget: Budget
    task_options: dict

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "method": self.method,
            "architecture": self.architecture.to_dict(),
            "settings": dataclasses.asdict(self.config),
            "budget": self.budget.to_dict(),
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
    settings: dict | None = None,
    architecture: dict | Architecture | None = None,
    task_options: dict | None = None,
) -> RunSpec:
    info = task_info(task)
    config_class(method)  # refuses an unknown method before anything else
    arch = info.default_architecture
    if isinstance(architecture, Architecture):
        arch = architecture
    elif architecture is not None:
        arch = Architecture.from_dict(architecture)
    check_architecture(info, arch)
    if budget is None:
        budget_obj = info.default_budget
    elif isinstance(budget, Budget):
        budget_obj = budget
    else:
        budget_obj = Budget.from_dict(budget)
    config = make_config(method, info.kind, info.method_defaults.get(method), settings)
    loss = info.loss if getattr(config, "loss", "task") == "task" else config.loss
    if info.kind == "supervised" and loss == "bce" and arch.output_activation != "sigmoid":
        raise ArenaError(
            f"the bce loss needs outputs in (0, 1): use output_activation 'sigmoid' (got {arch.output_activation!r}) or loss 'mse'",
            "output_activation",
        )
    options = dict(task_options or {})
    if options:
        if info.kind != "control":
            raise ArenaError(f"task {task!r} takes no options, got {sorted(options)}", "task_options")
        from arena.tasks.car_catalog import check_task_options  # plain data + numpy, no simulator

        options = check_task_options(info, options)
    return RunSpec(task, method, arch, config, budget_obj, options)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ArenaError(f"a seed must be an integer from 0 to {MAX_SEED}, got {seed!r}", "seed")
    return seed
