"""What every task is, as plain data, and the interface trainers use. No torch here.

A task owns its data or environment, its loss, its score and its solved rule. A trainer sees it through
two calls, so the task knows nothing of the method training on it:

- `fitness(population_forward, episode_seed)`: evaluate a whole population at once (the GA's view).
  `population_forward` maps inputs of shape (B, in), shared by every member, or (P, B, in), one batch
  per member, to outputs (P, B, out). `episode_seed` picks the episodes (control tasks; supervised
  tasks ignore it): the same seed gives the same episodes. Returns (fitness per member, higher is
  better; evaluations used).
- `evaluate(forward)`: the task's verdict on one network, by the same code for every method. `forward`
  maps (B, in) -> (B, out). Returns (score, solved, metrics).

Supervised tasks also expose their training data and loss name, which is what gradient descent needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from arena.contract import Budget
from arena.models.architecture import Architecture


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    kind: str  # "supervised" or "control"
    input_size: int
    output_size: int
    default_architecture: Architecture
    default_budget: Budget
    score_name: str
    higher_is_better: bool
    solved_rule: str
    loss: str = "mse"  # supervised: the loss both methods minimise ("mse" or "bce")
    family: str = ""  # "logic", "function", "car": for grouping in listings
    method_defaults: dict = field(default_factory=dict)  # {"ga": {...}, "backprop": {...}}: tuned per task
    # The solve-check cadence in evaluations, the same for every method (`arena.methods.loop.check_every`):
    # None derives it from the held-out set (supervised tasks); control tasks set it in their catalog.
    check_every: int | None = None
    noisy_fitness: bool = False  # fitness depends on the episodes drawn: survivors must be re-scored

    def public(self) -> dict:
        """What the API and `arena tasks` show."""
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "family": self.family,
            "input_size": self.input_size,
            "output_size": self.output_size,
            "default_architecture": self.default_architecture.model_dump(mode="json"),
            "default_budget": self.default_budget.model_dump(),
            "score_name": self.score_name,
            "higher_is_better": self.higher_is_better,
            "solved_rule": self.solved_rule,
            "loss": self.loss,
        }


Forward = Callable[[np.ndarray], np.ndarray]


def episode_seed(seed: int, generation: int) -> int:
    """The episodes of one generation of a population method: every member of it sees the same ones."""
    return int(np.random.SeedSequence([seed, generation]).generate_state(1)[0])


class Task(Protocol):
    info: TaskInfo

    def fitness(self, population_forward: Forward, episode_seed: int = 0) -> tuple[np.ndarray, int]: ...

    def evaluate(self, forward: Forward) -> tuple[float, bool, dict]: ...
