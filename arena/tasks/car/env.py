"""A single-car Gymnasium environment, for users (`gymnasium.make("arena/CarNav-v0", track="oval")`).

It runs the same simulator as training with a batch of one car; training itself never goes through
it (one car per Python call is about 25 times slower than the batch).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from arena.tasks.car.sim import ACTION_SIZE, OBSERVATION_SIZE, Cars, World, random_starts
from arena.tasks.car.tracks import parse_track


class CarNavEnv(gym.Env):
    """Drive laps without touching the walls.

    Observation: 5 ray distances (-45, -20, 0, 20, 45 degrees) / 10 m, and speed / top speed, in [0, 1].
    Action: steering and a speed command, in [-1, 1]. Reward: 100 x signed progress / lap length per
    step, -5 on a crash. `terminated` on a crash; `truncated` on a stall (best progress has not grown
    5 m in 60 steps) or after 1000 steps. `info` has the progress in laps and why the episode ended.
    """

    metadata = {"render_modes": []}

    def __init__(self, track="oval"):
        self.track = parse_track(track)
        self.world = World([self.track])
        self.observation_space = spaces.Box(0.0, 1.0, (OBSERVATION_SIZE,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_SIZE,), np.float32)
        self.cars: Cars | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.cars = Cars(self.world, random_starts(self.world, self.np_random, 1))
        return self.cars.obs[0].copy(), {"laps": 0.0}

    def step(self, action):
        action = np.asarray(action, dtype=np.float32).reshape(1, ACTION_SIZE)
        reward, crashed, stalled, timed_out = self.cars.step(action)
        info = {
            "laps": float(self.cars.progress[0] / self.cars.lap[0]),
            "crashed": bool(crashed[0]),
            "stalled": bool(stalled[0]),
        }
        return self.cars.obs[0].copy(), float(reward[0]), bool(crashed[0]), bool(stalled[0] or timed_out[0]), info


if "arena/CarNav-v0" not in gym.registry:
    gym.register("arena/CarNav-v0", entry_point="arena.tasks.car.env:CarNavEnv", kwargs={"track": "oval"})
