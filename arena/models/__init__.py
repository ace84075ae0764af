"""Networks: the architecture spec (plain data) and, in `arena.models.network`, its torch side."""

from arena.models.architecture import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, Architecture

__all__ = ["Architecture", "HIDDEN_ACTIVATIONS", "OUTPUT_ACTIVATIONS"]
