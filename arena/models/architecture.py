"""The architecture both methods train, as plain data (no torch: the HTTP layer validates it too)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from arena.errors import ArenaError

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "softsign")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "tanh")
MAX_LAYER_SIZE = 1024
MAX_HIDDEN_LAYERS = 8


@dataclass(frozen=True)
class Architecture:
    """A feed-forward network: input -> hidden layers -> output.

    The flat parameter layout is that of `torch.nn.utils.parameters_to_vector` on the module built
    from it: for each layer in order, its weight (out x in, row-major) then its bias.
    """

    input_size: int
    hidden_sizes: tuple[int, ...]
    output_size: int
    hidden_activation: str = "tanh"
    output_activation: str = "identity"

    def __post_init__(self):
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        for name in ("input_size", "output_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LAYER_SIZE:
                raise ArenaError(f"{name} must be an integer from 1 to {MAX_LAYER_SIZE}, got {value!r}", name)
        if len(self.hidden_sizes) > MAX_HIDDEN_LAYERS:
            raise ArenaError(f"at most {MAX_HIDDEN_LAYERS} hidden layers, got {len(self.hidden_sizes)}", "hidden_sizes")
        for size in self.hidden_sizes:
            if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_LAYER_SIZE:
                raise ArenaError(f"hidden sizes must be integers from 1 to {MAX_LAYER_SIZE}, got {size!r}", "hidden_sizes")
        if self.hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ArenaError(
                f"unknown hidden_activation {self.hidden_activation!r}; choose one of {', '.join(HIDDEN_ACTIVATIONS)}",
                "hidden_activation",
            )
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ArenaError(
                f"unknown output_activation {self.output_activation!r}; choose one of {', '.join(OUTPUT_ACTIVATIONS)}",
                "output_activation",
            )

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

    def to_dict(self) -> dict:
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Architecture":
        if not isinstance(data, dict):
            raise ArenaError("architecture must be an object", "architecture")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ArenaError(f"unknown architecture field(s) {sorted(unknown)}; valid: {sorted(known)}", "architecture")
        missing = {"input_size", "hidden_sizes", "output_size"} - set(data)
        if missing:
            raise ArenaError(f"architecture is missing {sorted(missing)}", "architecture")
        hidden = data["hidden_sizes"]
        if not isinstance(hidden, (list, tuple)):
            raise ArenaError("hidden_sizes must be a list of integers", "hidden_sizes")
        return cls(**{**data, "hidden_sizes": tuple(hidden)})

    def with_hidden(self, spec: str) -> "Architecture":
        """`"8,8"` -> the same architecture with hidden layers 8 and 8 (CLI convenience); "" for none."""
        try:
            sizes = tuple(int(s) for s in spec.split(",") if s.strip())
        except ValueError:
            raise ArenaError(f"hidden sizes must be comma-separated integers, got {spec!r}", "hidden_sizes") from None
        return Architecture(self.input_size, sizes, self.output_size, self.hidden_activation, self.output_activation)
