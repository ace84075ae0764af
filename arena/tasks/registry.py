"""The task registry: every task's plain-data description, and how to build it.

Importing this module is cheap (no torch, no simulator): the HTTP layer uses it to validate jobs.
`make_task` builds the data or environment, importing heavier modules only when asked.
"""

from __future__ import annotations

import difflib
from typing import Callable

from arena.contract import Budget
from arena.errors import ArenaError
from arena.models.architecture import Architecture
from arena.tasks import supervised as sv
from arena.tasks.base import Task, TaskInfo
from arena.tasks.car.catalog import CAR_TASKS

TASKS: dict[str, TaskInfo] = {}
_BUILDERS: dict[str, Callable[[TaskInfo, dict], Task]] = {}


def register(info: TaskInfo, builder: Callable[[TaskInfo, dict], Task]) -> None:
    TASKS[info.name] = info
    _BUILDERS[info.name] = builder


def task_names() -> list[str]:
    return list(TASKS)


def task_info(name: str) -> TaskInfo:
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), TASKS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ArenaError(f"unknown task {name!r}{hint}; valid tasks: {', '.join(TASKS)}", "task") from None


def make_task(name: str, options: dict | None = None) -> Task:
    """Build a task's data or environment (imports the simulator for car tasks)."""
    info = task_info(name)
    return _BUILDERS[name](info, check_task_options(info, options))


def check_task_options(info: TaskInfo, options: dict | None) -> dict:
    """The one check of task options: only car tasks take any (a track); returns them normalised."""
    if not options:
        return {}
    if info.family != "car":
        raise ArenaError(f"task {info.name!r} takes no options, got {sorted(options) if isinstance(options, dict) else options!r}", "task_options")
    from arena.tasks.car.catalog import check_car_options  # plain data and numpy: no simulator, no gymnasium

    return check_car_options(info, options)


def check_architecture(info: TaskInfo, architecture: Architecture) -> None:
    """Refuse an architecture whose input or output size does not fit the task."""
    if architecture.input_size != info.input_size or architecture.output_size != info.output_size:
        raise ArenaError(
            f"task {info.name!r} needs input_size {info.input_size} and output_size {info.output_size}; "
            f"got {architecture.input_size} and {architecture.output_size}",
            "architecture",
        )


# --- logic tasks ----------------------------------------------------------------------------------

LOGIC_RULE = "every row of the truth table on the right side of 0.5"


def _logic_info(name, description, inputs, outputs, hidden, budget_evaluations, ga=None, backprop=None, cmaes=None, seconds=60.0):
    return TaskInfo(
        name=name,
        description=description,
        kind="supervised",
        family="logic",
        input_size=inputs,
        output_size=outputs,
        default_architecture=Architecture(inputs, hidden, outputs, "tanh", "sigmoid"),
        # Evaluations are the budget (reproducible); the seconds cap only guards against a slow machine.
        default_budget=Budget(evaluations=budget_evaluations, seconds=seconds, stop_on_solve=True),
        score_name="mse",
        higher_is_better=False,
        solved_rule=LOGIC_RULE,
        loss="bce",
        # lr 0.03 solved 30/30 XOR seeds in a third of the epochs of 0.01; 0.1 lost a seed.
        method_defaults={"ga": ga or {}, "backprop": {"learning_rate": 0.03, **(backprop or {})}, "cmaes": cmaes or {}},
    )


def _build_from(data_fn):
    def build(info: TaskInfo, options: dict) -> Task:
        x, y = data_fn()
        return sv.SupervisedTask(info, x, y, x, y)

    return build


for _gate in sv.GATES:
    register(
        _logic_info(_gate, f"the {_gate.upper()} gate: 2 inputs, 1 output, 4 rows", 2, 1, (4,), 1_000_000),
        _build_from(lambda g=_gate: sv.gate_data(g)),
    )

# Stronger selection and fewer, smaller mutations as N grows (benchmarks/run.py --only success --tasks
# parity-N). Over 30 seeds, parity-4/5/6 solved 30/28/29 with these against 29/29/25 with range 0.5;
# on parity-7 the general defaults solved 0/4 trial seeds, these 4/4.
PARITY_GA_DEFAULTS = {
    **{n: {"tournament_size": 5, "mutation_probability": 0.05, "mutation_range": 0.3} for n in (4, 5, 6)},
    **{n: {"tournament_size": 7, "mutation_probability": 0.03, "mutation_range": 0.3} for n in (7, 8)},
}

# CMA-ES: a smaller initial step (sigma0 0.25, the settings' default is 0.5) on parity-3 and up, with
# pycma's population (execute(resolve(task, "cmaes", settings=...), seed) with the task's evaluation
# budget, seconds cap lifted). 10 seeds each, solved and median evaluations to solve, sigma0 0.25 / 0.5 /
# 1.0: parity-4 10/10 29k, 10/10 151k, 10/10 55k; parity-5 10/10 133k, 10/10 146k, 7/10 631k; parity-6
# 7/10, 4/10, 0/10 (sigma0 0.1: 7/10). 30 seeds on parity-3: 30/30 with 3.7k against 30/30 with 4.5k.
# Larger populations lost parity-6 seeds: 50 solved 3/10, 100 solved 1/10 (sigma0 0.25). Logic gates and
# the full adder keep sigma0 0.5 (30 seeds: XOR 672 evaluations at 0.25, 0.5 and 1.0; AND 384 at 0.25,
# 192 at 0.5; full adder 5.3k at 0.25, 5.2k at 0.5, 5.6k at 1.0, 9.9k at 2.0). parity-7/8: untuned.
PARITY_CMAES_DEFAULTS = {n: {"sigma0": 0.25} for n in range(3, 9)}

# Parity-7 and 8 need far more evaluations (the GA solved parity-8 only after about 33M in a trial).
PARITY_BUDGETS = {7: 32_000_000, 8: 64_000_000}

for _n in range(2, 9):
    register(
        _logic_info(
            f"parity-{_n}",
            f"{_n}-bit parity (XOR generalised): 1 when an odd number of the {_n} inputs is 1; {2**_n} rows",
            _n,
            1,
            (2 * _n,),
            PARITY_BUDGETS.get(_n, 2_000_000 * _n),
            ga=PARITY_GA_DEFAULTS.get(_n),
            cmaes=PARITY_CMAES_DEFAULTS.get(_n),
            seconds=300.0 if _n >= 7 else 60.0,
        ),
        _build_from(lambda n=_n: sv.parity_data(n)),
    )

register(
    _logic_info("full-adder", "a full adder: inputs a, b, carry-in; outputs sum and carry-out; 8 rows", 3, 2, (6,), 4_000_000),
    _build_from(sv.full_adder_data),
)

# --- function approximation -------------------------------------------------------------------------


# Function fitting needs small steps. The logic defaults (range 0.5) solved 0/6 sine seeds; these solved
# damped, step and ripple2d in 2/2 seeds each with 2-3x fewer evaluations than (tournament 5, p 0.1,
# range 0.05), which was slightly faster on sine only (trials with 30M-evaluation budgets).
FUNCTION_GA_DEFAULTS = {
    "population_size": 100,
    "num_parents_mating": 40,
    "tournament_size": 7,
    "mutation_probability": 0.03,
    "mutation_range": 0.1,
}

# On sine these were faster: 30/30 seeds within a 1-second budget against 22/30 for the settings above
# (benchmarks/run.py --only success --tasks sine --seconds 1).
SINE_GA_DEFAULTS = {**FUNCTION_GA_DEFAULTS, "tournament_size": 5, "mutation_probability": 0.1, "mutation_range": 0.05}


# CMA-ES: sigma0 0.1 with pycma's population (measured as for parity, above). 10 seeds per task, all
# solved at every sigma0; median evaluations to solve at sigma0 0.05 / 0.1 / 0.25 / 0.5 / 1.0: sine 393k
# / 390k / 491k / 456k / 787k, damped 789k / 694k / 744k / 888k / 1.08M, abs 492k / 391k / 446k / 590k /
# 574k, step 882k / 851k / 973k / 966k / 839k, ripple2d 1.76M / 2.02M / 2.65M / 3.04M / 5.58M. A
# population of 30 (pycma's is 15-16 here) needed 1.2-1.5x more at sigma0 0.1.
FUNCTION_CMAES_DEFAULTS = {"sigma0": 0.1}


def _build_function(info: TaskInfo, options: dict) -> Task:
    return sv.SupervisedTask(info, *sv.function_data(info.name), mse_threshold=sv.FUNCTIONS[info.name][2])


for _name, (_fn, _range, _threshold, _description) in sv.FUNCTIONS.items():
    _dims = sv.FUNCTION_DIMS.get(_name, 1)
    register(
        TaskInfo(
            name=_name,
            description=f"{_description}; trained on {sv.TRAIN_POINTS[_dims]} sampled points, "
            f"scored on a {'x'.join([str(sv.TEST_POINTS_PER_AXIS[_dims])] * _dims)} grid",
            kind="supervised",
            family="function",
            input_size=_dims,
            output_size=1,
            default_architecture=Architecture(_dims, (16,), 1, "tanh", "identity"),
            # Backprop needs 0.1-0.5M evaluations here, the GA 2-12M: a 3M budget hid what the GA can do.
            default_budget=Budget(evaluations=30_000_000, seconds=60.0, stop_on_solve=True),
            score_name="mse",
            higher_is_better=False,
            solved_rule=f"held-out MSE below {_threshold:g}",
            loss="mse",
            method_defaults={"ga": SINE_GA_DEFAULTS if _name == "sine" else FUNCTION_GA_DEFAULTS, "cmaes": FUNCTION_CMAES_DEFAULTS},
        ),
        _build_function,
    )

# --- car navigation (the simulator is imported only when a car task is built) --------------------------


def _build_car(info: TaskInfo, options: dict) -> Task:
    from arena.tasks.car.task import build_car_task

    return build_car_task(info, options)


for _info in CAR_TASKS:
    register(_info, _build_car)
