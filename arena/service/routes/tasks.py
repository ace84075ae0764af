"""GET /tasks: every task with its defaults and each method's settings."""

from __future__ import annotations

from fastapi import APIRouter

from arena.methods import METHODS, describe_settings
from arena.tasks import TASKS

router = APIRouter()


@router.get("/tasks", tags=["tasks"])
def list_tasks() -> list[dict]:
    """Every task, with its defaults, and each method's settings (default, choices or range).

    `settings` is keyed by method; each names the algorithm it runs on this task (backprop runs ppo on
    car tasks) and lists that algorithm's settings, with this task's tuned defaults.
    """
    listing = []
    for info in TASKS.values():
        entry = info.public()
        entry["method_defaults"] = info.method_defaults
        entry["settings"] = {}
        for name, method in METHODS.items():
            algorithm = method.algorithm(info.kind)
            tuned = info.method_defaults.get(algorithm.NAME, {})
            rows = [{**row, "default": tuned.get(row["name"], row["default"])} for row in describe_settings(algorithm)]
            entry["settings"][name] = {"algorithm": algorithm.NAME, "settings": rows}
        listing.append(entry)
    return listing
