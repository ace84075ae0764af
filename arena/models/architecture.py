"""The architecture every method trains, as plain data, its flat-weight layout and a numpy forward.

No torch here: the HTTP layer validates architectures and draws what a stored network does (the
dashboard) with this module; the torch side (modules, the batched population forward) is
arena.models.network, on the same layout (`layer_slices`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from arena.errors import ArenaError
from arena.validation import Model

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "softsign")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "tanh")
INIT_SCHEMES = ("default", "normal", "uniform", "xavier")  # initial weights, shared by every method
MAX_LAYER_SIZE = 1024
MAX_HIDDEN_LAYERS = 8

LayerSize = Annotated[int, Field(ge=1, le=MAX_LAYER_SIZE)]


def dense_multiply_adds(layer_sizes) -> int:
    """Multiply-adds of one forward pass of one row through a dense network with these layer sizes
    (the weights; biases are adds): what every compute count (car tasks, PPO's value net) uses."""
    return int(sum(n_in * n_out for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])))


class Architecture(Model):
    """A feed-forward network: input -> hidden layers -> output.

    The flat parameter layout is that of `torch.nn.utils.parameters_to_vector` on the module built
    from it: for each layer in order, its weight (out x in, row-major) then its bias.
    """

    input_size: LayerSize = Field(description="inputs; must match the task")
    # strict=False on the container only: a JSON or Python list becomes a tuple; the sizes stay strict.
    hidden_sizes: tuple[LayerSize, ...] = Field(max_length=MAX_HIDDEN_LAYERS, strict=False, description="hidden layer sizes, in order")
    output_size: LayerSize = Field(description="outputs; must match the task")
    hidden_activation: Literal[HIDDEN_ACTIVATIONS] = "tanh"
    output_activation: Literal[OUTPUT_ACTIVATIONS] = "identity"

    def __init__(self, *args, **kwargs):
        # Positional arguments too, for brevity in code: Architecture(2, (4,), 1, "tanh", "sigmoid").
        kwargs.update(zip(("input_size", "hidden_sizes", "output_size", "hidden_activation", "output_activation"), args))
        super().__init__(**kwargs)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.input_size, *self.hidden_sizes, self.output_size)

    @property
    def num_parameters(self) -> int:
        sizes = self.layer_sizes
        return sum(n_out * n_in + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds of one forward pass of one row (`dense_multiply_adds`)."""
        return dense_multiply_adds(self.layer_sizes)

    def describe(self) -> str:
        """`2-4-1 tanh/sigmoid`."""
        return "-".join(map(str, self.layer_sizes)) + f" {self.hidden_activation}/{self.output_activation}"

    def with_hidden(self, spec: str) -> "Architecture":
        """`"8,8"` -> the same architecture with hidden layers 8 and 8 (CLI convenience); "" for none."""
        try:
            sizes = tuple(int(s) for s in spec.split(",") if s.strip())
        except ValueError:
            raise ArenaError(f"hidden sizes must be comma-separated integers, got {spec!r}", "hidden_sizes") from None
        from arena.validation import check

        return check(Architecture, {**self.model_dump(), "hidden_sizes": sizes}, ("architecture",))


def layer_slices(arch: Architecture) -> list[tuple[slice, tuple[int, int], slice]]:
    """For each layer: (weight slice, weight shape (out, in), bias slice) in the flat vector."""
    out, offset = [], 0
    sizes = arch.layer_sizes
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = slice(offset, offset + n_out * n_in)
        offset += n_out * n_in
        b = slice(offset, offset + n_out)
        offset += n_out
        out.append((w, (n_out, n_in), b))
    return out


NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0.0),
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "identity": lambda z: z,
}


def numpy_forward(weights, architecture: Architecture | dict, x) -> np.ndarray:
    """One network on inputs x (B, in) -> (B, out) in float64 numpy, from its flat weights (for each layer
    in order, its weight (out x in, row-major) then its bias): for readers without torch (the dashboard
    draws a stored run's network with it). Training uses arena.models.network's torch forward."""
    arch = architecture if isinstance(architecture, Architecture) else Architecture(**architecture)
    flat = np.asarray(weights, dtype=np.float64)
    if flat.size != arch.num_parameters:
        raise ValueError(f"{flat.size} weights for an architecture of {arch.num_parameters} parameters")
    hidden, output = NUMPY_ACTIVATIONS[arch.hidden_activation], NUMPY_ACTIVATIONS[arch.output_activation]
    h = np.asarray(x, dtype=np.float64)
    slices = layer_slices(arch)
    for layer, (w, shape, b) in enumerate(slices):
        h = h @ flat[w].reshape(shape).T + flat[b]
        h = output(h) if layer == len(slices) - 1 else hidden(h)
    return h
