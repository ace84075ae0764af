"""Execute one run in this process: build the task, seed everything, call the algorithm's `train`.

No Celery, HTTP or SQL here: the worker, the CLI's `arena train` and Python users all call `execute`.
"""

from __future__ import annotations

import platform
import random

import numpy as np

from arena.contract import ProgressCallback, RunResult
from arena.methods import ALGORITHMS
from arena.runspec import RunSpec, check_seed
from arena.tasks import make_task


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def library_versions() -> dict:
    """What a run's result depends on besides its spec and seed: stored with every run."""
    import cma
    import pygad
    import torch

    import arena

    return {
        "arena": arena.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pygad": pygad.__version__,
        "cma": cma.__version__,
        "numpy": np.__version__,
    }


def execute(spec: RunSpec, seed: int, progress: ProgressCallback | None = None) -> RunResult:
    """Run `spec` with `seed`: same spec, same seed -> same result, bit for bit, on one machine."""
    import torch

    check_seed(seed)
    torch.set_num_threads(1)  # runs are single-threaded: comparable, and a machine scales by processes
    task = make_task(spec.task, spec.task_options)
    seed_everything(seed)
    return ALGORITHMS[spec.algorithm].train(task, spec.architecture, spec.settings, spec.budget, seed, progress)
