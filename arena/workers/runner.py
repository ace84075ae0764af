"""Execute one run: build the task, seed everything, call the method's trainer. No Celery, HTTP or SQL."""

from __future__ import annotations

import platform
import random

import numpy as np
import torch

from arena.contract import ProgressCallback, RunResult
from arena.runspec import RunSpec, check_seed
from arena.tasks import make_task


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def library_versions() -> dict:
    import pygad

    import arena

    return {
        "arena": arena.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pygad": pygad.__version__,
        "numpy": np.__version__,
    }


def execute(spec: RunSpec, seed: int, progress: ProgressCallback | None = None) -> RunResult:
    """Run `spec` with `seed`: same spec, same seed -> same result, bit for bit, on one machine."""
    check_seed(seed)
    torch.set_num_threads(1)  # runs are single-threaded: comparable, and a machine scales by processes
    task = make_task(spec.task, spec.task_options)
    seed_everything(seed)
    if spec.method == "ga":
        from arena.workers.ga import train
    elif task.info.kind == "control":
        from arena.workers.ppo import train
    else:
        from arena.workers.backprop import train
    return train(task, spec.architecture, spec.config, spec.budget, seed, progress)
