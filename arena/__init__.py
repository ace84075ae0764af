"""Arena: neuroevolution (GA, CMA-ES) against gradient descent (backprop) on the same network, task and budget.

The public Python API, stable however the modules move:

    from arena import resolve, execute, make_task, Budget, Architecture, METHODS

    spec = resolve("xor", "cmaes", budget={"evaluations": 50_000}, settings={"sigma0": 0.5})
    result = execute(spec, seed=0)          # a RunResult: score, solved, evaluations_to_solve, curve...

Importing `arena` is light (no torch); `execute` imports torch when it runs.
"""

__version__ = "0.3.0"

_PUBLIC = {
    "resolve": "arena.runspec",
    "RunSpec": "arena.runspec",
    "execute": "arena.runner",
    "execute_seeds": "arena.runner",
    "make_task": "arena.tasks",
    "task_info": "arena.tasks",
    "TASKS": "arena.tasks",
    "Budget": "arena.contract",
    "RunResult": "arena.contract",
    "Progress": "arena.contract",
    "Architecture": "arena.models.architecture",
    "METHODS": "arena.methods",
    "ALGORITHMS": "arena.methods",
    "ArenaError": "arena.errors",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'arena' has no attribute {name!r}")


__all__ = ["__version__", *_PUBLIC]
