"""The methods: one module per algorithm (its settings model and its `train()`), and the registry.

A *method* is what a user picks and what a queue serves: `backprop`, `ga`, `cmaes`. It trains with
one *algorithm* per kind of task: `backprop` runs gradient descent on supervised tasks and PPO on
control (car) tasks; the others run the same algorithm everywhere. Every caller (the CLI, the runner,
the HTTP schemas, `arena tasks --settings`, the queues) reads this registry.

Each algorithm module defines `NAME`, `Settings` (a pydantic model: importable without torch) and

    train(task, architecture, settings, budget, seed, progress=None) -> RunResult

importing its heavy libraries inside `train`. Adding a method is one module here and one line in
METHODS below.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from arena.errors import ArenaError
from arena.methods import backprop, cmaes, ga, ppo
from arena.validation import check, did_you_mean

TASK_KINDS = ("supervised", "control")


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    supervised: ModuleType  # the algorithm on supervised tasks (logic, functions)
    control: ModuleType  # the algorithm on control tasks (car)

    def algorithm(self, kind: str) -> ModuleType:
        return self.control if kind == "control" else self.supervised


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("backprop", "gradient descent (PyTorch); PPO on car tasks", backprop, ppo),
        Method("ga", "a genetic algorithm (PyGAD)", ga, ga),
        Method("cmaes", "CMA-ES (pycma), with IPOP restarts", cmaes, cmaes),
    )
}

# Every algorithm module by name: the settings objects of a job body are keyed by these.
ALGORITHMS: dict[str, ModuleType] = {m.NAME: m for method in METHODS.values() for m in (method.supervised, method.control)}


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
            high = next((o.get("maximum") for o in options if "maximum" in o), None)
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


__all__ = ["ALGORITHMS", "METHODS", "Method", "describe_settings", "get_method", "label", "make_settings", "parse_value"]
