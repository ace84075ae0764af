"""Car navigation: tracks, the task catalog, a batched numpy simulator, the task, a Gymnasium env, plots.

    tracks.py   built-in and user tracks, their validation, the wall index (numpy only)
    catalog.py  the car tasks as plain data (what the HTTP API imports: no simulator, no gymnasium)
    sim.py      the batched simulator (kinematic bicycle, distance rays)
    task.py     the task every method trains on (fitness, evaluate, a batched env for PPO)
    generator.py  procedural tracks (`random:7` or {"generator": {"seed": 7, ...}})
    sources.py  `parse_track`: a track from any source (a built-in name, generated, user points)
    env.py      the single-car Gymnasium env `arena/CarNav-v0` (registered when env.py is imported)
    vector_env.py  the batched simulator as a gymnasium VectorEnv (`gym.make_vec(..., vectorization_mode="vector_entry_point")`)
    plot.py     the trajectory picture

Importing this package is cheap and imports neither gymnasium nor torch; the names below are loaded
on first use (`from arena.tasks.car import CarNavEnv` imports gymnasium then).
"""

from __future__ import annotations

import importlib

ENV_ID = "arena/CarNav-v0"

_LAZY = {
    "BUILTIN_TRACKS": "tracks", "Track": "tracks", "builtin_track": "tracks", "parse_track": "sources",
    "CAR_TASKS": "catalog", "TRACKS_OF_TASK": "catalog",
    "Cars": "sim", "World": "sim", "random_starts": "sim",
    "CarBatchEnv": "task", "CarTask": "task", "run_episodes": "task", "build_car_task": "task",
    "CarNavEnv": "env",
    "CarNavVectorEnv": "vector_env",
    "generated_track": "generator",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"arena.tasks.car.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'arena.tasks.car' has no attribute {name!r}")


__all__ = ["ENV_ID", *_LAZY]
