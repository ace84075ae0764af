"""A hybrid of evolution and gradient descent: a genetic algorithm whose members each take `steps`
gradient steps (Adam, full batch on the training set) before they are scored and selected.

- `inheritance="lamarckian"`: what a member learned is inherited (the trained weights are the genome);
  `"baldwinian"`: only the fitness it reached after learning is (the genome stays the untrained
  weights; learning shapes selection, not heredity). Hinton and Nowlan 1987; Whitley, Gordon and
  Mathias 1994.
- Selection: the `elites` best members are kept, the rest are children of tournament winners
  (`tournament_size`), mutated by Gaussian noise of standard deviation `mutation_sigma`.

Counting, as the contract says: every gradient step is a forward pass (1) and a backward pass (2) per
training sample per member: 3 x samples x population_size evaluations per step, returned by `tell` as
the optimiser's own evaluations; the loop counts the scoring forward (1 per sample per member) itself.
So its verdict against its parents (ga, backprop) is at equal evaluations. The members' steps run as
one stacked, differentiable forward of the whole population (PopulationForward without no_grad).

Control (car) tasks have no differentiable loss here: on them `hybrid` runs OpenAI-ES (the registry's
control algorithm for this method), as `backprop` runs PPO.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from arena.methods import loop
from arena.models.architecture import INIT_SCHEMES
from arena.validation import Model

NAME = "hybrid"
LABEL = "GA + Adam"
COLOUR = "#ff7f0e"
LIBRARIES = ("torch",)
WARM_IMPORTS = ("torch._dynamo",)  # torch.optim's first-optimizer import (see backprop)
EVALUATIONS_PER_SAMPLE_STEP = 3  # forward (1) + backward (2)


class HybridSettings(Model):
    """A genetic algorithm whose members take Adam steps before selection (Lamarckian or Baldwinian)."""

    population_size: int = Field(20, ge=2, le=10_000, description="members per generation")
    steps: int = Field(10, ge=0, le=1_000, description="Adam steps each member takes before it is scored (0: a plain GA)")
    learning_rate: float = Field(0.05, gt=0, le=10.0, description="Adam's step size for the members' steps")
    inheritance: Literal["lamarckian", "baldwinian"] = Field("lamarckian", description="lamarckian: the trained weights are inherited; baldwinian: only their fitness")
    elites: int = Field(2, ge=0, le=10_000, description="best members kept unchanged each generation")
    tournament_size: int = Field(3, ge=1, le=100, description="members drawn per tournament for each parent")
    mutation_sigma: float = Field(0.1, ge=0, le=10.0, description="standard deviation of the Gaussian mutation of each child")
    init: Literal[INIT_SCHEMES] = Field("default", description="the initial population's distribution, the same schemes as the other methods")
    init_scale: float = Field(1.0, ge=1e-6, le=100.0, description="scale of the normal or uniform initialisation")


Settings = HybridSettings


def memory_floats(architecture, settings: HybridSettings) -> tuple[int, str | None, str]:
    """The floats a run holds at once, for the cost caps: genomes, trained members and Adam's two moments."""
    n, population = architecture.num_parameters, settings.population_size
    return 4 * n * population, "population_size", f"{n:,} parameters x population_size {population} x 4 (genomes, trained, Adam's moments)"


class LearningGA:
    """The optimiser of one seed (ask/tell, arena.methods.loop's protocol)."""

    def __init__(self, task, architecture, settings: HybridSettings, genomes: np.ndarray, rng: np.random.Generator):
        import torch

        from arena.models.network import PopulationForward

        self.settings, self.rng = settings, rng
        self.genomes = genomes
        self.forward = PopulationForward.__call__.__wrapped__  # the stacked forward, differentiable (no no_grad)
        self.network = PopulationForward(architecture)
        self.x = torch.from_numpy(np.ascontiguousarray(task.x_train, dtype=np.float32))
        self.y = torch.from_numpy(np.ascontiguousarray(task.y_train, dtype=np.float32))
        self.loss = task.info.loss
        self.trained: np.ndarray | None = None
        self.best: tuple[np.ndarray, int] | None = None
        self.generations = 0

    def learn(self, genomes: np.ndarray) -> np.ndarray:
        """`steps` Adam steps of every member at once (one stacked forward and backward per step)."""
        import torch

        if self.settings.steps == 0:
            return genomes.copy()
        weights = torch.tensor(genomes, dtype=torch.float32, requires_grad=True)
        optimiser = torch.optim.Adam([weights], lr=self.settings.learning_rate)
        for _ in range(self.settings.steps):
            predictions = self.forward(self.network, weights, self.x)  # (P, B, out)
            if self.loss == "bce":
                per_member = torch.nn.functional.binary_cross_entropy(predictions.clamp(1e-7, 1 - 1e-7), self.y.expand_as(predictions), reduction="none")
            else:
                per_member = (predictions - self.y) ** 2
            optimiser.zero_grad()
            # The sum over members of each member's mean loss: each member's gradient is its own.
            per_member.reshape(len(genomes), -1).mean(dim=1).sum().backward()
            optimiser.step()
        return weights.detach().double().numpy()

    def ask(self) -> np.ndarray:
        self.trained = self.learn(self.genomes)
        return self.trained

    def tell(self, fitness: np.ndarray) -> int:
        settings, rng = self.settings, self.rng
        population = len(self.genomes)
        best = int(np.argmax(fitness))
        self.best = (self.trained[best].copy(), best)
        heritable = self.trained if settings.inheritance == "lamarckian" else self.genomes
        order = np.argsort(-fitness, kind="stable")
        elites = heritable[order[: min(settings.elites, population)]]
        children = population - len(elites)
        entrants = rng.integers(0, population, size=(children, settings.tournament_size))
        parents = entrants[np.arange(children), np.argmax(fitness[entrants], axis=1)]
        offspring = heritable[parents] + settings.mutation_sigma * rng.standard_normal((children, heritable.shape[1]))
        self.genomes = np.concatenate([elites, offspring])
        self.generations += 1
        return EVALUATIONS_PER_SAMPLE_STEP * settings.steps * population * len(self.x)

    def champion(self) -> tuple[np.ndarray, int] | None:
        return self.best

    def metrics(self) -> dict:
        return {"generations": self.generations, "inheritance": self.settings.inheritance}


def start(task, architecture, settings: HybridSettings, seed: int) -> LearningGA:
    from arena.models.network import initial_vectors  # torch: only where runs train

    genomes = initial_vectors(architecture, settings.population_size, settings.init, settings.init_scale).double().numpy()
    return LearningGA(task, architecture, settings, genomes, np.random.default_rng(np.random.SeedSequence([seed, 0x4B])))


train, train_seeds, batches = loop.population_method(start)
