"""Gradient descent on a supervised task (PyTorch), under the run contract.

Counting: every training sample costs one evaluation for the forward pass and two for the backward
pass (design.md), so an epoch over N samples costs 3N. The solve check on the held-out set after each
epoch is not training and is not counted in evaluations (the GA's check is not either); its time is.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from arena.contract import Budget, ProgressCallback, RunClock, RunResult
from arena.methods import BackpropConfig
from arena.models.architecture import Architecture
from arena.models.network import build_module, initial_vectors, module_to_vector, vector_to_module
from arena.tasks.supervised import SupervisedTask

EPS = 1e-7
EVALUATIONS_PER_SAMPLE = 3  # forward (1) + backward (2)


def make_optimizer(config: BackpropConfig, parameters) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.learning_rate, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.learning_rate, momentum=config.momentum)
    return torch.optim.Adam(parameters, lr=config.learning_rate)


def loss_function(name: str):
    if name == "bce":
        return lambda output, target: F.binary_cross_entropy(output.clamp(EPS, 1 - EPS), target)
    return F.mse_loss


def numpy_forward(model: torch.nn.Module):
    @torch.no_grad()
    def forward(x: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(x)).numpy()

    return forward


def train(
    task: SupervisedTask,
    architecture: Architecture,
    config: BackpropConfig,
    budget: Budget,
    seed: int,
    progress: ProgressCallback | None = None,
) -> RunResult:
    # The same initial-weight distribution as the GA's population (arena.models.network.initial_vectors).
    model = build_module(architecture)
    vector_to_module(initial_vectors(architecture, 1, config.init, config.init_scale)[0], model)
    optimizer = make_optimizer(config, model.parameters())
    criterion = loss_function(task.info.loss if config.loss == "task" else config.loss)
    forward = numpy_forward(model)

    x, y = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
    n = len(x)
    batch_size = min(config.batch_size or n, n)
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
