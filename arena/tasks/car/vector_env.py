"""The batched simulator as a Gymnasium VectorEnv:
`gymnasium.make_vec("arena/CarNav-v0", num_envs=64, vectorization_mode="vector_entry_point")`.

One simulator call steps every car (about 10x faster than a sync vector env of single-car envs at 64
cars). It follows Gymnasium 1.x's default autoreset mode, NEXT_STEP (`metadata["autoreset_mode"]`): when
car i's episode ends at step t (terminated or truncated), step t returns its last observation, and at
step t + 1 car i is reset instead of stepped: its action is ignored, its reward is 0, terminated and
truncated are False, and the observation is the first of its new episode.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from arena.tasks.car.env import MAX_EPISODE_STEPS, TrackPainter, check_actions
from arena.tasks.car.sim import ACTION_SIZE, DT, OBSERVATION_SIZE, Cars, Starts, World, random_starts
from arena.tasks.car.sources import parse_track
from arena.tasks.car.tracks import Track

_INFO_KEYS = ("laps", "laps_completed", "lap_completed", "crashed", "stalled")


class CarNavVectorEnv(VectorEnv):
    """`num_envs` cars, each in its own episode; car i drives on track i % len(tracks).

    `track`: one track source (as for CarNavEnv) or a list of them. `max_episode_steps`: the time limit
    (truncation), None for none. reset(seed=int) draws every start from that seed; seed=[s0, s1, ...]
    gives each car its own first start. options={"reset_mask": mask} resets only the cars in the mask.
    info holds, for every car, laps, laps_completed, lap_completed, crashed and stalled (with the "_key"
    masks Gymnasium's vector infos use).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(round(1 / DT)), "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, track="oval", max_episode_steps: int | None = MAX_EPISODE_STEPS,
                 render_mode: str | None = None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if max_episode_steps is not None and (not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps must be a positive integer or None, got {max_episode_steps!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        sources = list(track) if isinstance(track, (list, tuple)) else [track]
        if not sources:
            raise ValueError("track: give at least one track")
        self.tracks: list[Track] = [parse_track(t) for t in sources]
        self.world = World(self.tracks)
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.single_observation_space = spaces.Box(0.0, 1.0, (OBSERVATION_SIZE,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (ACTION_SIZE,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.tracks_of_cars = np.arange(self.num_envs) % len(self.tracks)
        self.cars: Cars | None = None
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._painters: dict[int, TrackPainter] = {}

    def reset(self, *, seed=None, options: dict | None = None):
        mask = None if options is None else options.get("reset_mask")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != bool:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
            if self.cars is None:
                raise RuntimeError("a partial reset (reset_mask) needs a full reset() first")
        if seed is not None and np.ndim(seed) == 1:
            seeds = [int(s) for s in seed]
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset needs one seed per car ({self.num_envs}), got {len(seeds)}")
            super().reset()
            self._np_random = np.random.default_rng(seeds)  # later restarts draw from a generator seeded by all of them
            self._np_random_seed = seeds[0]
            firsts = [random_starts(self.world, np.random.default_rng(s), 1, self.tracks_of_cars[i : i + 1]) for i, s in enumerate(seeds)]
            starts = Starts(*(np.concatenate([getattr(f, k) for f in firsts]) for k in ("track", "s", "lateral", "heading")))
        else:
            super().reset(seed=seed)
            starts = random_starts(self.world, self.np_random, self.num_envs, self.tracks_of_cars)
        if mask is None:
            self.cars = Cars(self.world, starts)
            self._autoreset[:] = False
        else:
            index = np.nonzero(mask)[0]
            self.cars.reset(index, starts.take(index))
            self._autoreset[index] = False
        info = {"laps": np.zeros(self.num_envs), "_laps": np.ones(self.num_envs, dtype=bool)}
        return self.cars.obs.copy(), info

    def step(self, actions):
        if self.cars is None:
            raise RuntimeError("call reset() before step()")
        actions = check_actions(actions, self.num_envs)
        before = self.cars.best // self.cars.lap
        reward, crashed, stalled, _ = self.cars.step(actions)  # the simulator's own step limit is not used
        timed_out = np.zeros(self.num_envs, dtype=bool) if self.max_episode_steps is None else self.cars.steps >= self.max_episode_steps
        terminated = crashed.copy()
        truncated = (stalled | timed_out) & ~crashed
        completed = self.cars.best // self.cars.lap
        info = {
            "laps": self.cars.progress / self.cars.lap,
            "laps_completed": completed.astype(np.int64),
            "lap_completed": completed > before,
            "crashed": crashed.copy(),
            "stalled": stalled.copy(),
        }
        # NEXT_STEP autoreset: the cars whose episode ended on the previous step start afresh instead.
        again = np.nonzero(self._autoreset)[0]
        if len(again):
            self.cars.reset(again, random_starts(self.world, self.np_random, len(again), self.tracks_of_cars[again]))
            reward[again] = 0.0
            terminated[again] = truncated[again] = False
            for key in _INFO_KEYS:
                info[key][again] = 0
        for key in _INFO_KEYS:
            info["_" + key] = np.ones(self.num_envs, dtype=bool)
        self._autoreset = terminated | truncated
        return self.cars.obs.copy(), reward.astype(np.float64), terminated, truncated, info

    def render(self):
        """One top-down frame per car (a tuple), for render_mode="rgb_array"; None otherwise."""
        if self.render_mode != "rgb_array" or self.cars is None:
            return None
        frames = []
        for i in range(self.num_envs):
            k = int(self.tracks_of_cars[i])
            if k not in self._painters:
                self._painters[k] = TrackPainter(self.tracks[k])
            frames.append(self._painters[k].draw(self.cars.x[i : i + 1], self.cars.y[i : i + 1], self.cars.heading[i : i + 1]))
        return tuple(frames)
