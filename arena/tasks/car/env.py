"""The Gymnasium envs: `gymnasium.make("arena/CarNav-v0", track="oval")` (one car) and
`gymnasium.make_vec("arena/CarNav-v0", num_envs=64)` (the batched simulator as a VectorEnv).

Both run the same simulator as training. Training itself goes through neither (it uses the batch
directly: arena.tasks.car.task). Registered when this module is imported.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from arena.tasks.car.sim import ACTION_SIZE, DT, OBSERVATION_SIZE, Cars, World, random_starts
from arena.tasks.car.sources import parse_track
from arena.tasks.car.tracks import CAR_RADIUS, Track

ENV_ID = "arena/CarNav-v0"
MAX_EPISODE_STEPS = 1000  # the registered time limit (gym.make(..., max_episode_steps=n) changes it)


def check_actions(action, batch: int | None) -> np.ndarray:
    """`action` as float32 of shape (2,) (batch None) or (batch, 2); ValueError on a wrong shape or NaN.

    Values outside [-1, 1] are clipped by the simulator, as for any Box action.
    """
    expected = (ACTION_SIZE,) if batch is None else (batch, ACTION_SIZE)
    try:
        array = np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the action must be numbers of shape {expected} (steering, speed command), got {action!r}") from error
    if array.shape != expected:
        raise ValueError(f"the action must have shape {expected} (steering, speed command in [-1, 1]), got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"the action contains NaN: {array.tolist()} (a diverged policy?); actions must be numbers in [-1, 1]")
    return array.reshape(-1, ACTION_SIZE)


class TrackPainter:
    """Top-down RGB pictures of a track with cars on it, drawn with numpy (no display, no pyplot)."""

    BACKGROUND = np.array([46, 110, 52], np.uint8)  # grass
    ROAD = np.array([110, 110, 110], np.uint8)
    WALL = np.array([240, 240, 240], np.uint8)
    START = np.array([250, 210, 40], np.uint8)
    CAR = np.array([220, 30, 30], np.uint8)
    NOSE = np.array([255, 255, 255], np.uint8)

    def __init__(self, track: Track, size: int = 480, margin: float = 3.0):
        from matplotlib.path import Path  # the point-in-polygon test only: no pyplot, no backend

        walls = np.vstack([track.left, track.right])
        lo, hi = walls.min(0) - margin, walls.max(0) + margin
        self.scale = (size - 1) / float((hi - lo).max())  # pixels per metre
        self.origin = lo
        self.height = int(round((hi[1] - lo[1]) * self.scale)) + 1
        self.width = int(round((hi[0] - lo[0]) * self.scale)) + 1
        cols, rows = np.meshgrid(np.arange(self.width), np.arange(self.height))
        world = self.to_world(rows.ravel(), cols.ravel())
        # Counter-clockwise track: the left wall is the inner one. Road = inside the outer wall, outside the inner.
        road = Path(track.right).contains_points(world) & ~Path(track.left).contains_points(world)
        image = np.empty((self.height * self.width, 3), np.uint8)
        image[:] = self.BACKGROUND
        image[road] = self.ROAD
        image = image.reshape(self.height, self.width, 3)
        for wall in (track.left, track.right):
            self._polyline(image, np.vstack([wall, wall[:1]]), self.WALL)
        self._polyline(image, np.array([track.left[0], track.right[0]]), self.START)
        self.base = image

    def to_world(self, rows, cols) -> np.ndarray:
        x = self.origin[0] + cols / self.scale
        y = self.origin[1] + (self.height - 1 - rows) / self.scale  # image rows grow downwards
        return np.stack([x, y], axis=1)

    def to_pixels(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols = np.rint((xy[:, 0] - self.origin[0]) * self.scale).astype(int)
        rows = np.rint(self.height - 1 - (xy[:, 1] - self.origin[1]) * self.scale).astype(int)
        return rows, cols

    def _polyline(self, image, points, colour, step: float = 0.5):
        segments = np.diff(points, axis=0)
        count = np.maximum(1, np.ceil(np.linalg.norm(segments, axis=1) * self.scale / step)).astype(int)
        t = np.concatenate([np.arange(c) / c for c in count])
        start = np.repeat(np.arange(len(segments)), count)
        dense = points[start] + t[:, None] * segments[start]
        self._dots(image, dense, colour, radius=0)

    def _dots(self, image, xy, colour, radius: int):
        rows, cols = self.to_pixels(xy)
        for dr in range(-radius, radius + 1):
            for dc in range(-radius, radius + 1):
                if dr * dr + dc * dc <= radius * radius:
                    r, c = rows + dr, cols + dc
                    ok = (r >= 0) & (r < self.height) & (c >= 0) & (c < self.width)
                    image[r[ok], c[ok]] = colour

    def draw(self, x: np.ndarray, y: np.ndarray, heading: np.ndarray) -> np.ndarray:
        image = self.base.copy()
        centre = np.stack([x, y], axis=1)
        self._dots(image, centre, self.CAR, radius=max(3, int(round(CAR_RADIUS * 1.6 * self.scale))))
        nose = centre + 1.2 * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        for t in np.linspace(0.0, 1.0, 6):
            self._dots(image, centre + t * (nose - centre), self.NOSE, radius=1)
        return image


class CarNavEnv(gym.Env):
    """Drive laps without touching the walls.

    Observation: 5 ray distances (-45, -20, 0, 20, 45 degrees) / 10 m, and speed / top speed, in [0, 1].
    Action: steering and a speed command, shape (2,), in [-1, 1] (clipped; a NaN or a wrong shape is a
    ValueError). Reward: 100 x signed progress / lap length per step, -5 on a crash.
    `terminated` on a crash; `truncated` on a stall (best progress has not grown 5 m in 60 steps). The time
    limit (1000 steps) is the registration's `max_episode_steps` (a TimeLimit wrapper), so
    `gym.make(ENV_ID, max_episode_steps=2000)` allows 2000 steps; the env itself never cuts on steps.
    After the episode ends, `step` raises until `reset`.
    `info`: laps (signed progress in laps), laps_completed (whole laps of the best progress so far),
    lap_completed (a new lap was completed on this step), crashed, stalled.
    `track`: a built-in name, "random:<seed>", {"generator": {...}}, {"points", "width"} (points may be a
    numpy array) or a Track.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(round(1 / DT))}

    def __init__(self, track="oval", render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.track = parse_track(track)
        self.world = World([self.track])
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, (OBSERVATION_SIZE,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_SIZE,), np.float32)
        self.cars: Cars | None = None
        self._ended: str | None = "not started"
        self._painter: TrackPainter | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.cars = Cars(self.world, random_starts(self.world, self.np_random, 1))
        self._ended = None
        return self.cars.obs[0].copy(), {"laps": 0.0, "laps_completed": 0}

    def step(self, action):
        if self._ended is not None:
            if self.cars is None:
                raise RuntimeError("call reset() before step()")
            raise RuntimeError(f"the episode has ended ({self._ended}): call reset() before step() again")
        actions = check_actions(action, None)
        before = int(self.cars.best[0] // self.cars.lap[0])
        reward, crashed, stalled, _ = self.cars.step(actions)  # the simulator's own step limit is not used
        crashed, stalled = bool(crashed[0]), bool(stalled[0])
        laps = float(self.cars.progress[0] / self.cars.lap[0])
        completed = int(self.cars.best[0] // self.cars.lap[0])  # best progress: driving back and forth counts once
        if crashed or stalled:
            self._ended = "crashed" if crashed else "stalled"
        info = {"laps": laps, "laps_completed": completed, "lap_completed": completed > before,
                "crashed": crashed, "stalled": stalled}
        return self.cars.obs[0].copy(), float(reward[0]), crashed, stalled, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None  # Gymnasium's convention for render_mode=None
        if self._painter is None:
            self._painter = TrackPainter(self.track)
        if self.cars is None:
            return self._painter.base.copy()
        return self._painter.draw(self.cars.x, self.cars.y, self.cars.heading)


def _registered() -> None:
    if ENV_ID not in gym.registry:
        gym.register(
            ENV_ID,
            entry_point="arena.tasks.car.env:CarNavEnv",
            vector_entry_point="arena.tasks.car.vector_env:CarNavVectorEnv",
            kwargs={"track": "oval"},
            max_episode_steps=MAX_EPISODE_STEPS,
        )


_registered()
