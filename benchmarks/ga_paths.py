"""Reference GA implementations for the benchmark: the textbook PyGAD path and a plain vectorised torch loop.

Both evolve the same architecture on the same task data as Arena's GA trainer, with the same population,
so the benchmark compares milliseconds per generation, not outcomes.
"""

from __future__ import annotations

import time

import numpy as np
import pygad
import pygad.torchga
import torch

from arena.models.architecture import Architecture
from arena.models.network import PopulationForward, build_module, initial_vectors
from arena.tasks.supervised import SupervisedTask, loss_per_member


def textbook_pygad(task: SupervisedTask, arch: Architecture, population: int, generations: int, seed: int) -> float:
    """The PyGAD tutorial's way: TorchGA population, one `pygad.torchga.predict` per solution, built-in operators.

    Returns seconds per generation.
    """
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = build_module(arch)
    torch_ga = pygad.torchga.TorchGA(model=model, num_solutions=population)
    x, y = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
    loss = torch.nn.BCELoss() if task.info.loss == "bce" else torch.nn.MSELoss()

    def fitness_func(ga, solution, index):
        predictions = pygad.torchga.predict(model=model, solution=solution, data=x)
        return -loss(predictions.clamp(1e-7, 1 - 1e-7), y).item()

    ga = pygad.GA(
        num_generations=generations,
        num_parents_mating=population // 2,
        initial_population=torch_ga.population_weights,
        fitness_func=fitness_func,
        parent_selection_type="tournament",
        crossover_type="uniform",
        mutation_type="random",
        mutation_probability=0.1,
        keep_elitism=2,
        random_seed=seed,
        suppress_warnings=True,
    )
    start = time.perf_counter()
    ga.run()
    return (time.perf_counter() - start) / generations


def vectorised_torch_ga(task: SupervisedTask, arch: Architecture, population: int, generations: int, seed: int) -> float:
    """The practical floor: the same GA (tournament, uniform crossover, gaussian mutation, elitism) in a few
    torch tensor operations per generation, no library. Returns seconds per generation."""
    torch.manual_seed(seed)
    forward = PopulationForward(arch)
    pop = initial_vectors(arch, population)
    x, y = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train).numpy()
    elites, parents_mating, k = 2, population // 2, 3
    start = time.perf_counter()
    for _ in range(generations):
        fitness = torch.from_numpy(-loss_per_member(forward(pop, x).numpy(), y, task.info.loss))
        order = torch.argsort(fitness, descending=True)
        contenders = torch.randint(0, population, (parents_mating, k))
        parents = pop[contenders[torch.arange(parents_mating), fitness[contenders].argmax(1)]]
        n = population - elites
        i = torch.arange(n)
        first, second = parents[i % parents_mating], parents[(i + 1) % parents_mating]
        children = torch.where(torch.rand(n, pop.shape[1]) < 0.5, first, second)
        children += (torch.rand_like(children) < 0.1) * torch.randn_like(children) * 0.5
        pop = torch.cat([pop[order[:elites]], children])
    return (time.perf_counter() - start) / generations
