"""The architecture every method trains, as plain data (no torch: the HTTP layer validates it too)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from arena.errors import ArenaError
from arena.validation import Model

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "softsign")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "tanh")
INIT_SCHEMES = ("default", "normal", "uniform", "xavier")  # initial weights, shared by every method
MAX_LAYER_SIZE = 1024
MAX_HIDDEN_LAYERS = 8

LayerSize = Annotated[int, Field(ge=1, le=MAX_LAYER_SIZE)]


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
