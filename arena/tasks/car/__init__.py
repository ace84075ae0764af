"""Car navigation: a batched numpy simulator, the task both methods train on, and a Gymnasium env.

Importing this package registers the Gymnasium environment `arena/CarNav-v0` (keyword `track`: a
built-in name, "oval", "scurve" or "hard", or {"points": [[x, y], ...], "width": w}).
"""

from __future__ import annotations

import gymnasium

from arena.errors import ArenaError
from arena.tasks.base import TaskInfo
from arena.tasks.car.env import CarNavEnv
from arena.tasks.car.sim import Cars, World, random_starts
from arena.tasks.car.task import CarBatchEnv, CarTask, run_episodes
from arena.tasks.car_catalog import TRACKS_OF_TASK
from arena.tasks.car_tracks import BUILTIN_TRACKS, Track, builtin_track, parse_track

ENV_ID = "arena/CarNav-v0"
if ENV_ID not in gymnasium.registry:
    gymnasium.register(ENV_ID, entry_point="arena.tasks.car.env:CarNavEnv", kwargs={"track": "oval"})


def make_task(info: TaskInfo, options: dict | None = None) -> CarTask:
    """Build a car task; the option `track` (a user track or built-in name) replaces the scored track.

    On single-track tasks it replaces the one track (trained and scored on it); on `car-generalize`
    it replaces only the track the policy is scored on, never trained on.
    """
    options = dict(options or {})
    train_names, eval_name = TRACKS_OF_TASK[info.name]
    track = options.pop("track", None)
    if options:
        raise ArenaError(f"unknown car task option(s) {sorted(options)}; valid: track", "task_options")
    train = [builtin_track(name) for name in train_names]
    scored = builtin_track(eval_name)
    if track is not None:
        scored = parse_track(track)
        if eval_name in train_names:  # a single-track task: train where it is scored
            train = [scored]
    return CarTask(info, train, scored)


__all__ = [
    "BUILTIN_TRACKS",
    "CarBatchEnv",
    "CarNavEnv",
    "CarTask",
    "Cars",
    "ENV_ID",
    "Track",
    "World",
    "builtin_track",
    "make_task",
    "parse_track",
    "random_starts",
    "run_episodes",
]
