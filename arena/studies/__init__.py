"""Studies: a declarative experiment over one or two axes, expanded into one ordinary job body per cell.

A study names a task (or a `task` axis), methods, seeds, a budget and one or two axes; `expand` turns it
into the cells' job bodies (what POST /jobs accepts), each validated, costed and stored by the same code
as a job (arena.service.routes.studies). Plain data only: no database, no HTTP.

Axes (`name`: values):
- `hidden`: hidden widths (an int: one layer; a list: the layers), on the task's (or the given) network;
- `depth`: numbers of hidden layers of the base network's first width;
- `task`: task names (problem size: parity-2 .. parity-8);
- `budget.evaluations`, `budget.seconds`: the budget;
- `ALGORITHM.SETTING` (for example `ga.population_size`): a method setting.
"""

from __future__ import annotations

import itertools
from typing import Any

from arena.errors import ArenaError
from arena.methods import ALGORITHMS
from arena.models.architecture import Architecture
from arena.tasks import task_info

MAX_AXES = 2
MAX_CELLS = 100


def axis_kind(name: str) -> str:
    """What an axis varies: architecture, task, budget or setting; ArenaError for an unknown name."""
    if name in ("hidden", "depth"):
        return "architecture"
    if name == "task":
        return "task"
    if name in ("budget.evaluations", "budget.seconds"):
        return "budget"
    algorithm, _, setting = name.partition(".")
    if algorithm in ALGORITHMS and setting:
        if setting not in ALGORITHMS[algorithm].Settings.model_fields:
            raise ArenaError(f"{algorithm} has no setting {setting!r}; its settings: {', '.join(ALGORITHMS[algorithm].Settings.model_fields)}", "axis")
        return "setting"
    valid = "hidden, depth, task, budget.evaluations, budget.seconds, ALGORITHM.SETTING (e.g. ga.population_size)"
    raise ArenaError(f"unknown axis {name!r}; valid axes: {valid} (solve threshold and function frequency are not axes yet)", "axis")


def base_architecture(task: str, architecture: dict | None) -> Architecture:
    return Architecture.model_validate(architecture) if architecture else task_info(task).default_architecture


def _with_axis(body: dict, name: str, value: Any) -> dict:
    """The job body of a cell: `body` with one axis set to `value`."""
    body = {**body}
    kind = axis_kind(name)
    if kind == "task":
        body["task"] = value
    elif kind == "budget":
        body["budget"] = {**(body.get("budget") or {}), name.split(".", 1)[1]: value}
    elif kind == "setting":
        algorithm, setting = name.split(".", 1)
        body[algorithm] = {**(body.get(algorithm) or {}), setting: value}
    else:
        network = base_architecture(body["task"], body.get("architecture")).model_dump(mode="json")
        if name == "hidden":
            sizes = [value] if isinstance(value, int) else list(value)
        else:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ArenaError(f"depth values are numbers of hidden layers, got {value!r}", "axis")
            width = (network["hidden_sizes"] or [8])[0]
            sizes = [width] * value
        body["architecture"] = {**network, "hidden_sizes": sizes}
    return body


def expand(study: dict) -> list[dict]:
    """[{"position", "point": {axis: value}, "task", "body": job body}] in row-major order over the axes.

    `study` has the job fields (task, methods, seeds, budget, architecture, task_options, per-algorithm
    settings) and `axes`: [{"name", "values"}]. The architecture axis is applied last, so a `task` axis
    gives each task its own default network with the chosen hidden layers."""
    axes = study["axes"]
    if not 1 <= len(axes) <= MAX_AXES:
        raise ArenaError(f"a study has one or two axes, got {len(axes)}", "axes")
    names = [axis["name"] for axis in axes]
    if len(set(names)) != len(names):
        raise ArenaError("axes must not repeat", "axes")
    for axis in axes:
        axis_kind(axis["name"])
        if not axis["values"]:
            raise ArenaError(f"axis {axis['name']!r} has no values", "axes")
    cells = 1
    for axis in axes:
        cells *= len(axis["values"])
    if cells > MAX_CELLS:
        raise ArenaError(f"this study has {cells} cells; at most {MAX_CELLS}", "axes")
    job_fields = {key: value for key, value in study.items() if key not in ("axes", "name", "tuning") and value is not None}
    order = sorted(range(len(axes)), key=lambda k: axis_kind(axes[k]["name"]) == "architecture")  # architecture last
    out = []
    for position, values in enumerate(itertools.product(*(axis["values"] for axis in axes))):
        body = dict(job_fields)
        for k in order:
            body = _with_axis(body, names[k], values[k])
        out.append({"position": position, "point": dict(zip(names, values)), "task": body["task"], "body": body})
    return out


def parameters(task: str, body: dict) -> int:
    """The number of parameters of a cell's network: shown beside an architecture axis."""
    return base_architecture(task, body.get("architecture")).num_parameters


# Built-in studies, by name: each answers one question of the blog post Arena grew from, with a budget
# that finishes on a laptop in minutes; NAME-full is sized for a cluster (more seeds, wider axes).
BUILTIN: dict[str, dict] = {
    "network-size": {
        "name": "network-size", "task": "parity-3", "methods": ["backprop", "ga", "cmaes"], "seeds": 20,
        "axes": [{"name": "hidden", "values": [2, 3, 4, 6, 8]}], "budget": {"evaluations": 200_000, "seconds": 60.0},
    },
    "network-size-full": {
        "name": "network-size-full", "task": "parity-4", "methods": ["backprop", "ga", "cmaes"], "seeds": 30,
        "axes": [{"name": "hidden", "values": [2, 4, 8, 16, 32, 64]}], "budget": {"evaluations": 8_000_000, "seconds": 600.0},
    },
    "problem-size": {
        "name": "problem-size", "task": "parity-2", "methods": ["backprop", "ga", "cmaes"], "seeds": 10,
        "axes": [{"name": "task", "values": ["parity-2", "parity-3", "parity-4"]}], "budget": {"evaluations": 300_000, "seconds": 60.0},
    },
    "problem-size-full": {
        "name": "problem-size-full", "task": "parity-2", "methods": ["backprop", "ga", "cmaes"], "seeds": 30,
        "axes": [{"name": "task", "values": [f"parity-{n}" for n in range(2, 9)]}], "budget": {"evaluations": 64_000_000, "seconds": 3600.0},
    },
    "population-size": {
        "name": "population-size", "task": "xor", "methods": ["backprop", "ga"], "seeds": 10,
        "axes": [{"name": "ga.population_size", "values": [10, 30, 100]}], "budget": {"evaluations": 200_000, "seconds": 60.0},
    },
    "budget": {
        "name": "budget", "task": "parity-3", "methods": ["backprop", "ga", "cmaes"], "seeds": 10,
        "axes": [{"name": "budget.evaluations", "values": [2_000, 10_000, 50_000]}],
    },
}
