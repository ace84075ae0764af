"""Gradient descent on a supervised task (PyTorch), under the run contract.

Counting: every training sample costs one evaluation for the forward pass and two for the backward
pass (design.md), so an epoch over N samples costs 3N. The solve check on the held-out set is not
training and is not counted in evaluations (no method's check is); its time is. It runs at most every
`check_every(task)` evaluations (the same cadence for every method); on logic tasks with the full batch
it reuses the training forward pass (the truth table is both the training batch and the held-out set).

`train_seeds` trains S seeds as one stacked model (arena.runner.execute_seeds). The loop itself stays here
(epochs, mini-batches); every decision about counting, checking and stopping is the RunClock's
(arena.methods.loop), the same object the population loop uses.

torch is imported inside `train`: the settings model above it is read by the HTTP API, which never
imports torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

import numpy as np

from arena.contract import Budget, ProgressCallback, RunResult
from arena.methods.loop import RunClock, SharedClock, check_every, for_seed, seed_everything
from arena.models.architecture import INIT_SCHEMES, Architecture
from arena.validation import Model

NAME = "backprop"
LABEL = "backprop"
COLOUR = "#1f77b4"
LIBRARIES = ("torch",)
# torch.optim imports torch._dynamo at the first optimizer a process makes (1.0-1.2 s of CPU): its worker
# imports it before forking, so every pool process shares it (arena.workers.app.WarmImports).
WARM_IMPORTS = ("torch._dynamo",)


def memory_floats(architecture, settings) -> tuple[int, str | None, str]:
    """The floats a run holds at once, for the cost caps: the weights and Adam's two moments."""
    n = architecture.num_parameters
    return 3 * n, None, f"{n:,} parameters x 3 (weights and the optimiser's moments)"


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

    from arena.models.network import build_module, flat_parameters, initial_vectors, vector_to_module

    # The same initial-weight distribution as the other methods' (arena.models.network.initial_vectors).
    model = build_module(architecture)
    vector_to_module(initial_vectors(architecture, 1, settings.init, settings.init_scale)[0], model)
    weights = flat_parameters(model)  # the parameters are views of it: keeping the best network is a clone
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

    clock = RunClock(budget, task.info.higher_is_better, progress, check_every(task))
    best_weights = weights.clone()
    if batch_size == n and getattr(task, "scores_on_training_set", False):
        # The training batch is the held-out set: the forward pass at the start of epoch k+1 is the
        # solve check of the weights epoch k produced (judged before the step changes them), so no
        # second forward. Same weights judged at the same evaluation count as a separate check.
        epoch = 0
        while True:
            optimizer.zero_grad()
            output = model(x)
            if epoch > 0:
                predictions = output.detach().numpy()
                score, solved, _ = task.evaluate(lambda _inputs: predictions)
                if clock.record(score, solved):
                    best_weights = weights.clone()
                if clock.should_stop():
                    break
            criterion(output, y).backward()
            optimizer.step()
            clock.evaluations += EVALUATIONS_PER_SAMPLE * n
            epoch += 1
    else:
        while True:
            order = torch.randperm(n, generator=shuffle) if batch_size < n else None
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size] if order is not None else slice(None)
                optimizer.zero_grad()
                loss = criterion(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
                clock.evaluations += EVALUATIONS_PER_SAMPLE * (min(start + batch_size, n) - start)

            if clock.due():
                score, solved, _ = task.evaluate(forward)
                if clock.record(score, solved):
                    best_weights = weights.clone()
            else:
                clock.record(None)
            if clock.should_stop():
                break

    vector_to_module(best_weights, model)
    score, solved, metrics = task.evaluate(forward)
    return clock.finish(best_weights.numpy(), score, solved, metrics)


# --- many seeds as one stacked model ---------------------------------------------------------------


def train_seeds(
    task,
    architecture: Architecture,
    settings: BackpropSettings,
    budget: Budget,
    seeds: list[int],
    progress=None,
) -> list[RunResult]:
    """Train one network per seed as one stacked model: the same runs as `train` for each seed, batched.

    Per seed, as unbatched: initial weights (torch seeded with the seed, then `build_module` and
    `initial_vectors` draw from the global generator), mini-batch order (a generator per seed), the
    optimiser state (Adam, SGD and RMSprop are elementwise, so one optimiser over (S, ...) tensors is
    S optimisers when the loss is the SUM over seeds of each seed's mean loss: seed s's weights only
    get seed s's gradient), evaluations, solve checks, curve and early stop. A seed that stops is frozen
    and dropped from the stack. The only differences from `train` are float reduction orders (batched
    matrix products), so a seed's result is equal or within float noise of its unbatched run.

    Seconds: each epoch's wall and CPU time is shared equally by the seeds still training in it; every
    result records `metrics["batched"] = S`. `progress(seed, Progress)` returning True cancels that seed.
    """
    import time

    import torch
    import torch.nn.functional as F

    from arena.models.network import FUNCTIONAL, build_module, initial_vectors, layer_slices, vector_to_module

    seeds = list(seeds)
    count = len(seeds)
    vectors = []
    for seed in seeds:
        seed_everything(seed)
        build_module(architecture)  # draws from the global generator exactly as `train` does
        vectors.append(initial_vectors(architecture, 1, settings.init, settings.init_scale)[0])
    vectors = torch.stack(vectors)
    slices = layer_slices(architecture)
    hidden, output_activation = FUNCTIONAL[architecture.hidden_activation], FUNCTIONAL[architecture.output_activation]
    last_layer = len(slices) - 1

    def stack(rows: torch.Tensor) -> list[torch.Tensor]:
        params = []
        for w, shape, b in slices:
            params.append(rows[:, w].reshape(-1, *shape).clone().requires_grad_())  # (S, out, in)
            params.append(rows[:, b].reshape(-1, 1, shape[0]).clone().requires_grad_())  # (S, 1, out)
        return params

    def flat(params: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([p.detach().reshape(p.shape[0], -1) for p in params], dim=1)  # the shared layout

    def stacked_forward(params: list[torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        h = inputs if inputs.dim() == 3 else inputs.expand(params[0].shape[0], -1, -1)
        for i in range(len(slices)):
            h = torch.baddbmm(params[2 * i + 1], h, params[2 * i].transpose(1, 2))
            h = output_activation(h) if i == last_layer else hidden(h)
        return h

    def make_optimizer(params):
        if settings.optimizer == "sgd":
            return torch.optim.SGD(params, lr=settings.learning_rate, momentum=settings.momentum)
        if settings.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=settings.learning_rate, momentum=settings.momentum)
        return torch.optim.Adam(params, lr=settings.learning_rate)

    if (task.info.loss if settings.loss == "task" else settings.loss) == "bce":
        def criterion(output, target):  # the sum over seeds of each seed's mean loss
            return F.binary_cross_entropy(output.clamp(EPS, 1 - EPS), target.expand_as(output), reduction="none").mean(dim=(1, 2)).sum()
    else:
        def criterion(output, target):
            return F.mse_loss(output, target.expand_as(output), reduction="none").mean(dim=(1, 2)).sum()

    params = stack(vectors)
    optimizer = make_optimizer(params)
    best = vectors.clone()  # (S, P): each seed's best network so far
    active = list(range(count))  # original index of each row of the stack

    def drop(stopping: list[int]) -> bool:
        """Drop the stopped rows from the stack, with their optimiser state; False when no row is left."""
        nonlocal params, optimizer
        keep = [row for row in range(len(active)) if row not in set(stopping)]
        if not keep:
            return False
        index = torch.tensor(keep)
        rows = len(active)
        new_params = [p.detach()[index].clone().requires_grad_() for p in params]
        new_optimizer = make_optimizer(new_params)
        for old, new in zip(params, new_params):
            state = optimizer.state.get(old, {})
            new_optimizer.state[new] = {
                key: value[index].clone() if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == rows else (
                    value.clone() if torch.is_tensor(value) else value)
                for key, value in state.items()
            }
        params, optimizer = new_params, new_optimizer
        active[:] = [active[row] for row in keep]
        return True

    clocks = [
        SharedClock(budget, task.info.higher_is_better, for_seed(progress, seed), check_every(task))
        for seed in seeds
    ]
    x, y = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
    x_test = torch.from_numpy(task.x_test)
    n = len(x)
    batch_size = min(settings.batch_size or n, n)
    shuffles = [torch.Generator().manual_seed(seed) for seed in seeds]
    reuse = batch_size == n and getattr(task, "scores_on_training_set", False)

    def judge(predictions: np.ndarray) -> list[int]:
        """Solve-check the active rows on their held-out predictions; return the rows that stop."""
        scores, solved = task.evaluate_many(predictions)  # the task's own rule, row by row
        improved, stopping = [], []
        for row, i in enumerate(active):
            clock = clocks[i]
            if clock.record(float(scores[row]), bool(solved[row])):
                improved.append(row)
            if clock.should_stop():
                stopping.append(row)
        if improved:
            rows = torch.tensor(improved)
            best[torch.tensor([active[r] for r in rows.tolist()])] = flat([p[rows] for p in params])
        return stopping

    def tick(started: float, cpu_started: float) -> tuple[float, float]:
        now, cpu_now = time.perf_counter(), time.thread_time()
        share, cpu_share = (now - started) / len(active), (cpu_now - cpu_started) / len(active)
        for i in active:
            clocks[i].share += share
            clocks[i].cpu_share += cpu_share
        return now, cpu_now

    started, cpu_started = time.perf_counter(), time.thread_time()
    epoch = 0
    while active:
        stopping: list[int] = []
        if reuse:
            optimizer.zero_grad()
            output = stacked_forward(params, x)
            if epoch > 0:
                started, cpu_started = tick(started, cpu_started)
                stopping = judge(output.detach().numpy())
                if stopping:
                    if not drop(stopping):
                        break
                    optimizer.zero_grad()
                    output = stacked_forward(params, x)
            criterion(output, y).backward()
            optimizer.step()
            for i in active:
                clocks[i].evaluations += EVALUATIONS_PER_SAMPLE * n
            epoch += 1
            continue

        orders = torch.stack([torch.randperm(n, generator=shuffles[i]) for i in active]) if batch_size < n else None
        for start in range(0, n, batch_size):
            optimizer.zero_grad()
            if orders is None:
                loss = criterion(stacked_forward(params, x), y)
            else:
                batch = orders[:, start : start + batch_size]  # (S, B)
                loss = criterion(stacked_forward(params, x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            for i in active:
                clocks[i].evaluations += EVALUATIONS_PER_SAMPLE * (min(start + batch_size, n) - start)
        epoch += 1
        started, cpu_started = tick(started, cpu_started)
        if clocks[active[0]].due():  # every active seed has the same evaluations and seconds
            with torch.no_grad():
                stopping = judge(stacked_forward(params, x_test).numpy())
        else:
            for i in active:
                clocks[i].record(None)
                if clocks[i].should_stop():
                    stopping.append(active.index(i))
        if stopping and not drop(stopping):
            break

    model = build_module(architecture)

    @torch.no_grad()
    def forward(inputs):
        return model(torch.from_numpy(inputs)).numpy()

    results = []
    for i in range(count):
        vector_to_module(best[i], model)
        score, solved, metrics = task.evaluate(forward)
        results.append(clocks[i].finish(best[i].numpy(), score, solved, {**metrics, "batched": count}))
    return results

