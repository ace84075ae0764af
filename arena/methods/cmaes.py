"""CMA-ES (pycma, the reference implementation) on the flat weight vector, through its ask/tell interface.

`CMAES` is pycma's ask/tell plus IPOP restarts, and nothing else: the population loop
(arena/methods/loop.py) scores each generation in one stacked forward pass, counts, keeps the clock,
runs the solve checks at the shared cadence and stops the run, as for every population method; many
seeds run in lock-step there (`train_seeds`), each under its own global random state (pycma samples
from numpy's legacy generator), bit for bit its run alone. The initial mean is one draw of the shared
initial-weight distribution.

- `covariance`: "full" adapts the full N x N covariance (O(N^2) memory and time per sample); "diagonal"
  is sep-CMA-ES (Ros and Hansen 2008), linear in N, for larger networks; "auto" picks diagonal above
  AUTO_DIAGONAL_PARAMETERS.
- `ipop_restarts`: when pycma's own termination criteria fire before the budget is spent (the search
  has converged, often to a local optimum), restart from a fresh initial draw with twice the
  population (IPOP-CMA-ES, Auger and Hansen 2005). Without it, the run stops there.
- Control tasks (`info.noisy_fitness`): every member of a generation is scored on that generation's
  episodes; CMA-ES keeps no elites, so no member carries a score from other episodes (the GA must
  re-score its survivors for this).

Counting: one evaluation per member per training sample (per agent-step on control tasks). Solve
checks on the task's held-out set or evaluation episodes are not counted, for any method.

Runs are single-threaded (the runner limits torch to one thread); pycma's linear algebra goes through
numpy's OpenBLAS, which would start a thread per core: on a busy 2-core machine that made a parity-3
run 5x slower in wall time (17 s against 3.5 s) and hid CPU time from `cpu_seconds`. `train` limits
it to one thread (`start`), as the runner does for torch.
"""

from __future__ import annotations

import ctypes
import glob
import math
import os
from typing import Literal

import numpy as np
from pydantic import Field

from arena.methods import loop
from arena.models.architecture import INIT_SCHEMES, Architecture
from arena.validation import Model

NAME = "cmaes"
LABEL = "CMA-ES"
COLOUR = "#2ca02c"
LIBRARIES = ("cma",)
WARM_IMPORTS = ("cma",)
AUTO_DIAGONAL_PARAMETERS = 1_000
# `train_seeds` (S seeds in lock-step, one stacked forward) is bit-for-bit the unbatched run and about as
# fast (pycma's Python ask/tell dominates: benchmarks/bench_seeds.py), but one message for a job's seeds
# instead of one per seed saves the queue's per-message overhead, so the service batches CMA-ES too.
MAX_RESTARTS = 999  # IPOP doubles the population each time: far beyond any budget


def memory_floats(architecture, settings) -> tuple[int, str | None, str]:
    """The floats a run holds at once, for the cost caps: every sample's weights, and with a full
    covariance two N x N matrices (the covariance and its eigenvectors)."""
    n = architecture.num_parameters
    population = settings.population_size or 4 + int(3 * math.log(max(n, 1)))  # pycma's default: 4 + floor(3 ln N)
    full = settings.covariance == "full" or (settings.covariance == "auto" and n <= AUTO_DIAGONAL_PARAMETERS)
    covariance = 2 * n * n if full else 0
    words = f"{n:,} parameters x population {population}" + (f" + a full covariance (2 x {n:,}^2)" if full else "")
    return n * population + covariance, "population_size" if not full or settings.covariance != "full" else "covariance", words


class CMAESSettings(Model):
    """CMA-ES (pycma) on the flat weight vector."""

    population_size: int | None = Field(None, ge=2, le=10_000, description="samples per generation; null for pycma's default 4 + 3 ln(N)")
    sigma0: float = Field(0.5, ge=1e-6, le=100.0, description="initial step size (standard deviation of the first generation around the mean)")
    covariance: Literal["auto", "full", "diagonal"] = Field(
        "auto", description=f"full covariance, diagonal (sep-CMA-ES, for larger networks), or auto: diagonal above {AUTO_DIAGONAL_PARAMETERS} parameters"
    )
    ipop_restarts: bool = Field(True, description="restart with twice the population when pycma's termination criteria fire before the budget is spent (IPOP)")
    init: Literal[INIT_SCHEMES] = Field("default", description="the initial mean's distribution, the same schemes as the other methods")
    init_scale: float = Field(1.0, ge=1e-6, le=100.0, description="scale of the normal or uniform initialisation")


Settings = CMAESSettings


def single_threaded_blas() -> None:
    """numpy's bundled OpenBLAS on one thread, as the runner does for torch (a no-op where not found)."""
    for path in glob.glob(os.path.join(os.path.dirname(np.__path__[0]), "numpy.libs", "*openblas*")):
        lib = ctypes.CDLL(path)  # the copy numpy already loaded
        for setter in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads"):
            if hasattr(lib, setter):
                getattr(lib, setter)(1)
                break


class CMAES:
    """pycma's ask/tell, with IPOP restarts: the optimiser `arena.methods.loop` drives."""

    def __init__(self, task, architecture: Architecture, settings: CMAESSettings, seed: int):
        single_threaded_blas()
        self.architecture, self.settings, self.seed = architecture, settings, seed
        self.diagonal = settings.covariance == "diagonal" or (
            settings.covariance == "auto" and architecture.num_parameters > AUTO_DIAGONAL_PARAMETERS
        )
        self.population_size = settings.population_size
        self.restart = -1
        self.generation = 0
        self.es = None

    def _restart(self) -> None:
        import cma  # here, not at the top: the HTTP API reads CMAESSettings and never imports pycma or torch

        from arena.models.network import initial_vectors

        self.restart += 1
        # The initial mean: one draw of the shared initial-weight distribution (torch's seeded generator).
        mean = initial_vectors(self.architecture, 1, self.settings.init, self.settings.init_scale)[0].double().numpy()
        options = {
            # pycma seeds numpy's legacy generator, which takes 1 .. 2**32 - 1 (0 means "from the clock").
            "seed": int(np.random.SeedSequence([self.seed, self.restart]).generate_state(1)[0]) % (2**32 - 1) + 1,
            "CMA_diagonal": self.diagonal,
            "verbose": -9,
            "verb_log": 0,  # pycma would write data files under ./outcmaes
            "verb_disp": 0,
            "maxiter": np.inf,
            "maxfevals": np.inf,
        }
        if self.population_size is not None:
            options["popsize"] = self.population_size
        self.es = cma.CMAEvolutionStrategy(mean, self.settings.sigma0, options)
        self.population_size = self.es.popsize

    def ask(self) -> np.ndarray | None:
        if self.es is None:
            self._restart()
        while self.es.stop():  # pycma's own termination criteria fired: restart (IPOP) or stop with what we have
            if not self.settings.ipop_restarts or self.restart >= MAX_RESTARTS:
                return None
            self.population_size *= 2
            self._restart()
        self.solutions = np.asarray(self.es.ask())
        return self.solutions

    def tell(self, fitness: np.ndarray) -> None:
        losses = -fitness  # pycma minimises; the fitness is higher-is-better (a diverged member: -WORST_FITNESS)
        self.es.tell(list(self.solutions), losses.tolist())
        self.generation += 1
        self.index = int(np.argmin(losses))

    def champion(self) -> tuple[np.ndarray, int]:
        return self.solutions[self.index], self.index

    def metrics(self) -> dict:
        return {"generations": self.generation, "restarts": self.restart, "final_population_size": self.population_size, "diagonal": self.diagonal}


start = CMAES
# One line: the loop owns counting, the clock, the solve checks and stopping; `train_seeds` runs seeds in
# lock-step (one stacked forward per generation, each seed under its own random state, bit for bit alone).
train, train_seeds, batches = loop.population_method(start)
