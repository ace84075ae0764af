"""The methods and their settings, as plain data (no torch: the HTTP layer validates with these).

Each setting is a dataclass field whose metadata declares its valid choices or range; `make_config`
merges the class defaults, the task's tuned defaults and the user's overrides, and refuses unknown
keys and bad values with a message that names the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field

from arena.errors import ArenaError

METHODS = ("backprop", "ga")
INIT_SCHEMES = ("default", "normal", "uniform", "xavier")


def choice(default, choices, help=""):
    return field(default=default, metadata={"choices": tuple(choices), "help": help})


def number(default, low, high, help="", integer=False, optional=False):
    return field(default=default, metadata={"range": (low, high), "integer": integer, "optional": optional, "help": help})


@dataclass(frozen=True)
class BackpropConfig:
    """Gradient descent on a supervised task (PyTorch)."""

    optimizer: str = choice("adam", ("adam", "sgd", "rmsprop"), "the torch optimiser")
    learning_rate: float = number(0.01, 1e-6, 10.0, "step size")
    momentum: float = number(0.9, 0.0, 0.999, "SGD/RMSprop momentum")
    batch_size: int | None = number(None, 1, 1_000_000, "mini-batch size; null for the full batch", integer=True, optional=True)
    loss: str = choice("task", ("task", "mse", "bce"), "the loss; 'task' uses the task's own (bce for logic, mse for functions)")
    init: str = choice("default", INIT_SCHEMES, "initial weights: torch's default, normal(0, scale), uniform(-scale, scale), xavier")
    init_scale: float = number(1.0, 1e-6, 100.0, "scale of the normal or uniform initialisation")


@dataclass(frozen=True)
class GAConfig:
    """A genetic algorithm (PyGAD) evolving the flat weight vector; the population is evaluated at once."""

    population_size: int = number(50, 2, 10_000, "networks per generation", integer=True)
    num_parents_mating: int = number(20, 2, 10_000, "parents selected per generation", integer=True)
    parent_selection_type: str = choice("tournament", ("sss", "rws", "sus", "rank", "random", "tournament"), "PyGAD parent selection")
    tournament_size: int = number(3, 1, 100, "K for tournament selection", integer=True)
    crossover_type: str = choice("uniform", ("single_point", "two_points", "uniform", "scattered", "none"), "PyGAD crossover")
    crossover_probability: float = number(0.9, 0.0, 1.0, "probability that a pair of parents is crossed over")
    mutation_type: str = choice("gaussian", ("gaussian", "random"), "gaussian: add N(0, range^2); random: add U(-range, range) (PyGAD's 'random')")
    mutation_probability: float = number(0.1, 0.0, 1.0, "probability that a gene is mutated")
    mutation_range: float = number(0.5, 1e-6, 100.0, "gaussian: standard deviation; random: uniform in [-range, range]")
    keep_elitism: int = number(2, 0, 10_000, "best networks copied unchanged into the next generation", integer=True)
    operators: str = choice(
        "vectorised", ("vectorised", "pygad"), "vectorised: numpy tournament, crossover and mutation through PyGAD's hooks; "
        "pygad: PyGAD's built-in operators (per-gene Python loops, slower; its mutation is 'random' whatever mutation_type says)"
    )
    init: str = choice("default", INIT_SCHEMES, "initial weights, the same schemes as backprop")
    init_scale: float = number(1.0, 1e-6, 100.0, "scale of the normal or uniform initialisation")

    def check(self):
        if self.num_parents_mating > self.population_size:
            raise ArenaError(
                f"num_parents_mating ({self.num_parents_mating}) must not exceed population_size ({self.population_size})",
                "num_parents_mating",
            )
        if self.keep_elitism > self.population_size:
            raise ArenaError(
                f"keep_elitism ({self.keep_elitism}) must not exceed population_size ({self.population_size})", "keep_elitism"
            )


@dataclass(frozen=True)
class PPOConfig:
    """Proximal policy optimisation with clipping and GAE (the gradient method on control tasks)."""

    learning_rate: float = number(3e-3, 1e-6, 1.0, "Adam step size")
    num_envs: int = number(64, 1, 4096, "episodes stepped together", integer=True)
    num_steps: int = number(128, 1, 10_000, "steps per environment per rollout", integer=True)
    gamma: float = number(0.99, 0.0, 1.0, "discount")
    gae_lambda: float = number(0.95, 0.0, 1.0, "GAE lambda")
    update_epochs: int = number(4, 1, 100, "passes over each rollout", integer=True)
    num_minibatches: int = number(4, 1, 1024, "minibatches per pass", integer=True)
    clip_coef: float = number(0.2, 0.0, 10.0, "PPO clip range")
    ent_coef: float = number(0.0, 0.0, 10.0, "entropy bonus")
    vf_coef: float = number(0.5, 0.0, 100.0, "value loss weight")
    max_grad_norm: float = number(0.5, 1e-6, 1000.0, "gradient clipping")
    init_log_std: float = number(-0.5, -5.0, 2.0, "initial log standard deviation of the Gaussian action head")
    value_hidden: int = number(64, 1, 1024, "hidden units of the value network (two layers)", integer=True)
    init: str = choice("default", INIT_SCHEMES, "initial policy weights, the same schemes as the GA")
    init_scale: float = number(1.0, 1e-6, 100.0, "scale of the normal or uniform initialisation")


def config_class(method: str, kind: str = "supervised") -> type:
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), METHODS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ArenaError(f"unknown method {method!r}{hint}; valid methods: {', '.join(METHODS)}", "method")
    if method == "ga":
        return GAConfig
    return PPOConfig if kind == "control" else BackpropConfig


def _check_value(cls, name: str, value):
    meta = cls.__dataclass_fields__[name].metadata
    if "choices" in meta:
        if value not in meta["choices"]:
            raise ArenaError(f"{name} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}", name)
        return value
    low, high = meta["range"]
    if value is None and meta.get("optional"):
        return None
    if meta.get("integer"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArenaError(f"{name} must be an integer from {low} to {high}; got {value!r}", name)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArenaError(f"{name} must be a number from {low:g} to {high:g}; got {value!r}", name)
    if not low <= value <= high:  # also refuses NaN
        raise ArenaError(f"{name} must be from {low:g} to {high:g}; got {value!r}", name)
    return float(value) if not meta.get("integer") else value


def make_config(method: str, kind: str = "supervised", task_defaults: dict | None = None, overrides: dict | None = None):
    """Class defaults < the task's tuned defaults < the user's overrides; validated."""
    cls = config_class(method, kind)
    valid = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for source in (task_defaults or {}, overrides or {}):
        if not isinstance(source, dict):
            raise ArenaError(f"{method} settings must be an object", method)
        for key, value in source.items():
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ArenaError(f"unknown {method} setting {key!r}{hint}; valid: {', '.join(valid)}", key)
            values[key] = _check_value(cls, key, value)
    config = cls(**values)
    if hasattr(config, "check"):
        config.check()
    return config


def describe_settings(cls) -> list[dict]:
    """Each setting with its default, choices or range: for `arena tasks --settings`, the README and the API."""
    rows = []
    for f in dataclasses.fields(cls):
        row = {"name": f.name, "default": f.default, "help": f.metadata.get("help", "")}
        if "choices" in f.metadata:
            row["choices"] = list(f.metadata["choices"])
        else:
            row["range"] = list(f.metadata["range"])
        rows.append(row)
    return rows


def parse_value(text: str):
    """`--set key=value` values: JSON-ish scalars (ints, floats, true/false/null) or plain strings."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text
