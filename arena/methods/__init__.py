"""The methods: one module per algorithm (its settings model, its `train()` and everything else about it), and the registry.

A *method* is what a user picks and what a queue serves: `backprop`, `ga`, `cmaes`, `es`. It trains with
one *algorithm* per kind of task: `backprop` runs gradient descent on supervised tasks and PPO on
control (car) tasks; the others run the same algorithm everywhere. Every caller (the CLI, the runner,
the HTTP schemas and cost caps, `arena tasks --settings`, the queues and their workers, the plots and
the dashboard) reads this registry; no other file names a method.

Each algorithm module defines

    NAME          the algorithm's name (the key of its settings object in a job body)
    Settings      a pydantic model (importable without torch: its bounds are the OpenAPI's)
    train(task, architecture, settings, budget, seed, progress=None) -> RunResult

importing its heavy libraries inside functions, and may define (else the defaults below apply)

    LABEL         what plots and pages call it ("CMA-ES"; default: the method's name)
    COLOUR        its colour in plots and pages ("#2ca02c"; default: one from PALETTE by name)
    LIBRARIES     the distributions whose versions its runs record (besides arena, python, numpy, torch)
    WARM_IMPORTS  the modules its worker imports before it forks its pool (besides the common ones)
    memory_floats(architecture, settings) -> (floats, setting, words)
                  the floats a run holds at once, for the service's cost caps (default: a population
                  method's population_size x parameters, else 3 x parameters: weights and two moments)

Adding a method is one module here and one line in METHODS below.
"""

from __future__ import annotations

import zlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from types import ModuleType

from arena.errors import ArenaError
from arena.methods import backprop, cmaes, es, ga, hybrid, ppo
from arena.validation import check, did_you_mean

TASK_KINDS = ("supervised", "control")
# Colours for a method whose module names none (matplotlib's tab10 after the three the built-ins use).
PALETTE = ("#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    supervised: ModuleType  # the algorithm on supervised tasks (logic, functions)
    control: ModuleType  # the algorithm on control tasks (car)
    default: bool = True  # one of a job's methods when the job names none (`default_methods()`)

    def algorithm(self, kind: str) -> ModuleType:
        return self.control if kind == "control" else self.supervised

    @property
    def modules(self) -> tuple[ModuleType, ...]:
        return (self.supervised,) if self.control is self.supervised else (self.supervised, self.control)

    @property
    def label(self) -> str:
        return getattr(self.supervised, "LABEL", self.name)

    @property
    def colour(self) -> str:
        # A stable colour by name (not by position), so a method keeps its colour as others are added.
        return getattr(self.supervised, "COLOUR", None) or PALETTE[zlib.crc32(self.name.encode()) % len(PALETTE)]

    @property
    def libraries(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for module in self.modules for name in getattr(module, "LIBRARIES", ())))

    @property
    def warm_imports(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for module in self.modules for name in getattr(module, "WARM_IMPORTS", ())))

    def public(self) -> dict:
        """What the HTTP API and the dashboard's scripts know of the method (GET /methods): plain data."""
        return {
            "name": self.name, "label": self.label, "description": self.description, "colour": self.colour,
            "algorithms": {kind: self.algorithm(kind).NAME for kind in TASK_KINDS},
            "libraries": list(self.libraries), "default": self.default,
        }  # fmt: skip


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("backprop", "gradient descent (PyTorch); PPO on car tasks", backprop, ppo),
        Method("ga", "a genetic algorithm (PyGAD)", ga, ga),
        Method("cmaes", "CMA-ES (pycma), with IPOP restarts", cmaes, cmaes),
        # Not (yet) in a job's default methods: the service's tests and the compose file's worker services
        # count on the three above; name it (`methods: ["es"]`, `--methods es`) to run it.
        Method("es", "OpenAI-ES (natural-gradient evolution strategy: mirrored samples, centered ranks, Adam)", es, es, default=False),
        Method("hybrid", "a GA whose members take Adam steps before selection (Lamarckian or Baldwinian); OpenAI-ES on car tasks", hybrid, es, default=False),
    )
}


def default_methods() -> list[str]:
    """A job's methods when it names none."""
    return [name for name, method in METHODS.items() if method.default]


class Algorithms(MutableMapping):
    """Every algorithm module by NAME (the settings objects of a job body are keyed by these), read from
    METHODS at each use: registering a method in METHODS registers its algorithms too. Items set here
    directly (older plug-in code) are kept beside them."""

    def __init__(self):
        self.extra: dict[str, ModuleType] = {}

    def _current(self) -> dict[str, ModuleType]:
        return {module.NAME: module for method in METHODS.values() for module in method.modules} | self.extra

    def __getitem__(self, name: str) -> ModuleType:
        return self._current()[name]

    def __setitem__(self, name: str, module: ModuleType) -> None:
        self.extra[name] = module

    def __delitem__(self, name: str) -> None:
        del self.extra[name]

    def __iter__(self):
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


ALGORITHMS: MutableMapping[str, ModuleType] = Algorithms()


def memory_floats(algorithm: ModuleType, architecture, settings) -> tuple[int, str | None, str]:
    """(floats a run holds at once, the setting that multiplies them, the product in words): the
    algorithm's own model (`memory_floats` in its module), else the default the module docstring states."""
    model = getattr(algorithm, "memory_floats", None)
    if model is not None:
        return model(architecture, settings)
    n = architecture.num_parameters
    population = getattr(settings, "population_size", None)
    if population:
        return n * population, "population_size", f"{n:,} parameters x population_size {population}"
    return 3 * n, None, f"{n:,} parameters x 3 (weights and the optimiser's moments)"


def library_versions() -> dict[str, str]:
    """What a run's result depends on besides its spec and seed, stored with every run: arena, python,
    numpy, torch and every registered method's libraries. Read from the installed distributions'
    metadata, so recording them imports nothing (a GA worker need not import pycma to say its version)."""
    import importlib.metadata
    import platform

    import arena

    versions = {"arena": arena.__version__, "python": platform.python_version()}
    for library in dict.fromkeys(("torch", "numpy", *(name for method in METHODS.values() for name in method.libraries))):
        try:
            versions[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            versions[library] = None
    return versions


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ArenaError(f"unknown method {name!r}{did_you_mean(name, METHODS)}; valid methods: {', '.join(METHODS)}", "method")
    return METHODS[name]


def label(method: str, algorithm: str | None) -> str:
    """What tables and pages call a run's method: `backprop (ppo)` when the algorithm is not the method."""
    return method if not algorithm or algorithm == method else f"{method} ({algorithm})"


def make_settings(method: str, kind: str, task_defaults: dict | None = None, overrides=None):
    """The settings a run uses: the model's defaults < the task's tuned defaults < the user's overrides.

    `overrides` is a dict or a settings model (then only the fields the user set override).
    """
    module = get_method(method).algorithm(kind)
    if overrides is None:
        overrides = {}
    elif isinstance(overrides, module.Settings):
        overrides = overrides.model_dump(include=overrides.model_fields_set)
    elif not isinstance(overrides, dict):
        raise ArenaError(f"{module.NAME} settings must be an object", location=(module.NAME,))
    return check(module.Settings, {**(task_defaults or {}), **overrides}, (module.NAME,), complete=True)


def describe_settings(module: ModuleType) -> list[dict]:
    """Each setting with its default and choices or range: for `arena tasks --settings` and the docs."""
    schema = module.Settings.model_json_schema()
    rows = []
    for name, field in module.Settings.model_fields.items():
        prop = schema["properties"][name]
        options = [prop, *prop.get("anyOf", [])]
        row = {"name": name, "default": field.default, "help": field.description or ""}
        choices = next((o["enum"] for o in options if "enum" in o), None)
        if choices is not None:
            row["choices"] = choices
        elif any(o.get("type") == "boolean" for o in options):
            row["choices"] = [True, False]
        else:
            low = next((o.get("minimum", o.get("exclusiveMinimum")) for o in options if "minimum" in o or "exclusiveMinimum" in o), None)
            high = next((o.get("maximum", o.get("exclusiveMaximum")) for o in options if "maximum" in o or "exclusiveMaximum" in o), None)
            row["range"] = [low, high]
        if any(o.get("type") == "null" for o in options):
            row["nullable"] = True
        rows.append(row)
    return rows


def parse_value(text: str):
    """`--set key=value` values: JSON-ish scalars (ints, floats, true/false/null) or plain strings.

    Only `null` is None: "none" stays a string, since it is a valid choice (crossover_type=none).
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


__all__ = [
    "ALGORITHMS", "METHODS", "Method", "default_methods", "describe_settings", "get_method", "label", "library_versions", "make_settings", "memory_floats",
    "parse_value",
]  # fmt: skip
