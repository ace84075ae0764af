"""Gradient descent on a supervised task (PyTorch), under the run contract.

Counting: every training sample costs one evaluation for the forward pass and two for the backward
pass (design.md), so an epoch over N samples costs 3N. The solve check on the held-out set after each
epoch is not training and is not counted in evaluations (no method's check is); its time is.

torch is imported inside `train`: the settings model above it is read by the HTTP API, which never
imports torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from arena.contract import Budget, ProgressCallback, RunClock, RunResult
from arena.models.architecture import INIT_SCHEMES, Architecture
from arena.validation import Model

NAME = "backprop"
EPS = 1e-7
EVALUATIONS_PER_SAMPLE = 3  # forward (1) + backward (2)


class BackpropSettings(Model):
    """Gradient descent on a supervised task (PyTorch)."""

    optimizer: Literal["adam", "sgd", "rmsprop"] = Field("adam", description="the torch optimiser")
    learning_rate: float = Field(0.01, ge=1e-6, le=10.0, description="step size")
    momentum: float = Field(0.9, ge=0.0, le=0.999, description="SGD/RMSprop momentum")
    batch_size: int | None = Field(None, ge=1, le=1_000_000, description="mini-batch size; null for the full batch")
    loss: Literal["task", "mse", "bce"] = Field("task", description="the loss; 'task' uses the task's own (bce for logic, mse for functions)")
    init: Literal[INIT_SCHEMES] = Field("default", description="initial weights: torch's default, normal(0, scale), uniform(-scale, scale), xavier")
    init_scale: float = Field(1.0, ge=1e-6, le=100.0, description="scale of the normal or uniform initialisation")


Settings = BackpropSettings


def train(
    task,
    architecture: Architecture,
    settings: BackpropSettings,
    budget: Budget,
    seed: int,
    progress: ProgressCallback | None = None,
) -> RunResult:
    import torch
    import torch.nn.functional as F

    from arena.models.network import build_module, initial_vectors, module_to_vector, vector_to_module

    # The same initial-weight distribution as the other methods' (arena.models.network.initial_vectors).
    model = build_module(architecture)
    vector_to_module(initial_vectors(architecture, 1, settings.init, settings.init_scale)[0], model)
    if settings.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=settings.momentum)
    elif settings.optimizer == "rmsprop":
        optimizer = torch.optim.RMSprop(model.parameters(), lr=settings.learning_rate, momentum=settings.momentum)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    if (task.info.loss if settings.loss == "task" else settings.loss) == "bce":
        criterion = lambda output, target: F.binary_cross_entropy(output.clamp(EPS, 1 - EPS), target)  # noqa: E731
    else:
        criterion = F.mse_loss

    @torch.no_grad()
    def forward(x):
        return model(torch.from_numpy(x)).numpy()

    x, y = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
    n = len(x)
    batch_size = min(settings.batch_size or n, n)
    shuffle = torch.Generator().manual_seed(seed)  # mini-batch order, reproducible per seed

    clock = RunClock(budget, task.info.higher_is_better, progress)
    best_weights = module_to_vector(model)
    while True:
        order = torch.randperm(n, generator=shuffle) if batch_size < n else None
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size] if order is not None else slice(None)
            optimizer.zero_grad()
            loss = criterion(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            clock.evaluations += EVALUATIONS_PER_SAMPLE * (min(start + batch_size, n) - start)

        score, solved, _ = task.evaluate(forward)
        if clock.record(score, solved):
            best_weights = module_to_vector(model)
        if clock.should_stop():
            break

    vector_to_module(best_weights, model)
    score, solved, metrics = task.evaluate(forward)
    return clock.finish(best_weights.numpy(), score, solved, metrics)
