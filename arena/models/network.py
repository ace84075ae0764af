"""The torch side of an architecture: module, flat weights, initial weights and a batched population forward."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from arena.models.architecture import Architecture, layer_slices

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "softsign": nn.Softsign,
    "identity": nn.Identity,
}
FUNCTIONAL = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "softsign": nn.functional.softsign,
    "identity": lambda x: x,
}


def build_module(arch: Architecture) -> nn.Sequential:
    """Linear, activation, ..., Linear, output activation."""
    layers: list[nn.Module] = []
    sizes = arch.layer_sizes
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        layers.append(ACTIVATIONS[arch.output_activation if last else arch.hidden_activation]())
    return nn.Sequential(*layers)


def module_to_vector(module: nn.Module) -> torch.Tensor:
    return nn.utils.parameters_to_vector(module.parameters()).detach().clone()


def flat_parameters(module: nn.Module) -> torch.Tensor:
    """Move the module's parameters into one flat tensor (in `module_to_vector` order) and return it: the
    parameters become views of it, so a copy of the whole network is one `clone()` (a trainer keeps its
    best network every time it improves)."""
    flat = module_to_vector(module)
    offset = 0
    for parameter in module.parameters():
        parameter.data = flat[offset : offset + parameter.numel()].view_as(parameter)
        offset += parameter.numel()
    return flat


def vector_to_module(vector, module: nn.Module) -> nn.Module:
    nn.utils.vector_to_parameters(torch.as_tensor(vector, dtype=torch.float32), module.parameters())
    return module


def initial_vectors(arch: Architecture, count: int, scheme: str = "default", scale: float = 1.0) -> torch.Tensor:
    """`count` flat weight vectors from one initial distribution, drawn from torch's global generator.

    Both methods start from this function, so they start from the same distribution:
    - default: torch's nn.Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases;
    - normal: N(0, scale^2) for everything (the classic examples use scale 1);
    - uniform: U(-scale, scale);
    - xavier: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) for weights, zero biases.
    """
    vectors = torch.empty(count, arch.num_parameters)
    for w, (n_out, n_in), b in layer_slices(arch):
        if scheme == "default":
            bound = 1.0 / math.sqrt(n_in)
            vectors[:, w].uniform_(-bound, bound)
            vectors[:, b].uniform_(-bound, bound)
        elif scheme == "normal":
            vectors[:, w].normal_(0.0, scale)
            vectors[:, b].normal_(0.0, scale)
        elif scheme == "uniform":
            vectors[:, w].uniform_(-scale, scale)
            vectors[:, b].uniform_(-scale, scale)
        elif scheme == "xavier":
            bound = math.sqrt(6.0 / (n_in + n_out))
            vectors[:, w].uniform_(-bound, bound)
            vectors[:, b].zero_()
        else:
            raise ValueError(f"unknown init scheme {scheme!r}")
    return vectors


class PopulationForward:
    """Evaluates P networks (flat vectors) on a batch in one go with stacked matrix products.

    Inputs of shape (B, in) are shared by every member; (P, B, in) gives each member its own batch
    (control tasks, where each car sees its own sensors). Returns (P, B, out).
    """

    def __init__(self, arch: Architecture):
        self.arch = arch
        self.slices = layer_slices(arch)
        self.hidden = FUNCTIONAL[arch.hidden_activation]
        self.output = FUNCTIONAL[arch.output_activation]

    @torch.no_grad()
    def __call__(self, population: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        p = population.shape[0]
        h = x
        last = len(self.slices) - 1
        for i, (w, shape, b) in enumerate(self.slices):
            weight = population[:, w].view(p, *shape)  # (P, out, in)
            bias = population[:, b].unsqueeze(1)  # (P, 1, out)
            # (B, in) @ (P, in, out) broadcasts to (P, B, out); (P, B, in) @ (P, in, out) is a bmm.
            h = torch.baddbmm(bias, h.expand(p, -1, -1), weight.transpose(1, 2)) if h.dim() == 3 else torch.matmul(
                h, weight.transpose(1, 2)
            ) + bias
            h = self.output(h) if i == last else self.hidden(h)
        return h

    @torch.no_grad()
    def stacked(self, population: np.ndarray, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """S populations stacked (sum(sizes), n) on a shared batch x, giving each member the floats its
        own population's forward gives it (how the GA's and CMA-ES's `train_seeds` score many seeds at
        once): the matrix products are stacked (one batched product per layer), the activations are
        applied per population. torch's vectorised elementwise kernels compute a tensor's last few
        elements on a scalar path whose rounding differs (tanh, sigmoid), so an activation over the whole
        stack would round a member differently depending on where it sits; per population, each block
        has its unbatched length and layout. A population of one takes another matrix-product path in
        torch (it can differ in the last bit)."""
        population = torch.as_tensor(population, dtype=torch.float32)
        p = population.shape[0]
        bounds = np.cumsum([0, *sizes]).tolist()
        last = len(self.slices) - 1
        h = x
        for i, (w, shape, b) in enumerate(self.slices):
            weight = population[:, w].view(p, *shape)
            bias = population[:, b].unsqueeze(1)
            h = torch.baddbmm(bias, h.expand(p, -1, -1), weight.transpose(1, 2)) if h.dim() == 3 else torch.matmul(
                h, weight.transpose(1, 2)
            ) + bias
            activation = self.output if i == last else self.hidden
            h = torch.cat([activation(h[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])])
        return h

    def numpy(self, population: np.ndarray):
        """A numpy-facing forward for one population, as the task interface expects."""
        pop = torch.as_tensor(population, dtype=torch.float32)

        def forward(x: np.ndarray) -> np.ndarray:
            return self(pop, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

        forward.network = self  # what is behind it: a task that counts compute reads its architecture
        return forward

    def single(self, weights: np.ndarray):
        """A (B, in) -> (B, out) numpy forward for one network (flat weights): what `task.evaluate` takes."""
        population_forward = self.numpy(np.asarray(weights)[None])
        return lambda x: population_forward(x)[0]
