"""The car task as both methods see it: population fitness, the evaluation verdict, and a batched env.

- `CarTask.fitness` steps a whole GA population at once: every member drives the same episodes
  (drawn from `episode_seed`), all members x episodes are one batch of cars.
- `CarTask.evaluate` scores one network on a fixed, seeded set of evaluation episodes with
  deterministic actions; both methods are scored by this code.
- `CarBatchEnv` is what PPO collects rollouts from: n cars that restart when their episode ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena.tasks.base import Forward, TaskInfo
from arena.tasks.car.sim import MAX_STEPS, OBSERVATION_SIZE, Cars, Starts, World, random_starts
from arena.tasks.car.tracks import Track

EVALUATION_SEED = 20_240_601  # the evaluation episodes never change: every run, every method
SOLVED_FRACTION = 0.9  # solved: at least this fraction of evaluation episodes complete a lap without a crash


@dataclass(frozen=True)
class CarSettings:
    """Episode counts: a task-level choice, not a method setting (both methods see the same task)."""

    train_episodes: int = 4  # per GA member per generation (the fitness is their mean return)
    evaluation_episodes: int = 32


class CarTask:
    def __init__(self, info: TaskInfo, train_tracks: list[Track], eval_track: Track, settings: CarSettings = CarSettings()):
        self.info = info
        self.settings = settings
        self.train_world = World(train_tracks)
        self.eval_world = World([eval_track])
        self.eval_starts = random_starts(self.eval_world, np.random.default_rng(EVALUATION_SEED), settings.evaluation_episodes)

    @property
    def train_tracks(self) -> list[Track]:
        return self.train_world.tracks

    @property
    def eval_track(self) -> Track:
        return self.eval_world.tracks[0]

    def episode_starts(self, episode_seed: int, count: int | None = None) -> Starts:
        """The training episodes drawn from `episode_seed` (cycling through the training tracks)."""
        return random_starts(self.train_world, np.random.default_rng(episode_seed), count or self.settings.train_episodes)

    def batch_env(self, num_envs: int) -> "CarBatchEnv":
        """What a reinforcement-learning method collects rollouts from (the training tracks)."""
        return CarBatchEnv(self.train_world, num_envs)

    # --- the GA's view --------------------------------------------------------------------------

    def fitness(self, population_forward: Forward, episode_seed: int = 0) -> tuple[np.ndarray, int]:
        """Mean return of every member over the same episodes; the whole population drives at once."""
        # The interface does not say how many members there are: one forward on a dummy input does (it
        # drives no car, so it is not counted).
        members = population_forward(np.zeros((1, OBSERVATION_SIZE), np.float32)).shape[0]
        starts = self.episode_starts(episode_seed)
        episodes = len(starts)
        everyone = Starts(*(np.tile(a, members) for a in (starts.track, starts.s, starts.lateral, starts.heading)))
        def forward(obs: np.ndarray) -> np.ndarray:  # car k = member k // episodes on episode k % episodes
            return population_forward(obs.reshape(members, episodes, -1)).reshape(members * episodes, -1)

        result = run_episodes(self.train_world, everyone, forward)
        returns = result.returns.reshape(members, episodes).mean(axis=1)
        return returns, int(result.agent_steps)

    # --- the verdict, the same for every method -----------------------------------------------------

    def evaluate(self, forward: Forward) -> tuple[float, bool, dict]:
        """Score = mean fraction of a lap completed (capped at 1) over the evaluation episodes.

        Each evaluation episode ends at the first completed lap, a crash, a stall or the time limit;
        solved when at least 90% of them complete the lap (completing it means no crash before it).
        """
        result = run_episodes(self.eval_world, self.eval_starts, forward, stop_after_lap=True)
        laps = result.progress / result.lap_length
        lap_fraction = np.clip(laps, 0.0, 1.0)
        finished = laps >= 1.0
        n = len(laps)
        score = float(lap_fraction.mean())
        metrics = {
            "track": self.eval_track.name,
            "episodes": n,
            "lap_fraction": score,
            "laps_completed": int(finished.sum()),
            "finish_rate": float(finished.mean()),
            "crash_rate": float(result.crashed.mean()),
            "stall_rate": float(result.stalled.mean()),
            "timeout_rate": float(result.timed_out.mean()),
            "mean_steps": float(result.steps.mean()),
        }
        return score, bool(finished.mean() >= SOLVED_FRACTION), metrics


@dataclass
class EpisodeResult:
    returns: np.ndarray
    progress: np.ndarray  # m along the centre line when the episode ended
    lap_length: np.ndarray
    crashed: np.ndarray
    stalled: np.ndarray
    timed_out: np.ndarray
    steps: np.ndarray
    agent_steps: int  # policy forward passes that drove a car (finished cars are not counted)
    trajectories: list | None = None  # per car: (steps + 1, 2) positions, when asked for


def run_episodes(world: World, starts: Starts, forward, stop_after_lap: bool = False, record: bool = False) -> EpisodeResult:
    """Drive one car per start until every episode has ended; `forward` maps (n, 6) -> (n, 2) actions.

    Finished cars leave the batch (so late steps cost only what is still driving), but `forward`
    always receives every car's latest observation in the original order, so a population forward
    can reshape it to (members, episodes, 6).
    """
    n = len(starts)
    cars = Cars(world, starts)
    ids = np.arange(n)  # the original index of each car still driving
    obs_all = cars.obs.copy()
    returns = np.zeros(n)
    out = {name: np.zeros(n, dtype=bool) for name in ("crashed", "stalled", "timed_out")}
    progress, steps = np.zeros(n), np.zeros(n, dtype=np.int64)
    lap_length = world.seg_lap[cars.seg].copy()
    paths = [[(x, y)] for x, y in zip(cars.x, cars.y)] if record else None
    agent_steps = 0
    for _ in range(MAX_STEPS):
        actions = np.asarray(forward(obs_all), dtype=np.float32)[ids]
        reward, crashed, stalled, timed_out = cars.step(actions)
        agent_steps += len(ids)
        returns[ids] += reward
        obs_all[ids] = cars.obs
        if record:
            for k, i in enumerate(ids):
                paths[i].append((cars.x[k], cars.y[k]))
        done = crashed | stalled | timed_out
        if stop_after_lap:
            done |= cars.progress >= cars.lap
        if done.any():
            ended = ids[done]
            out["crashed"][ended], out["stalled"][ended], out["timed_out"][ended] = crashed[done], stalled[done], timed_out[done]
            progress[ended], steps[ended] = cars.progress[done], cars.steps[done]
            keep = ~done
            ids = ids[keep]
            if not len(ids):
                break
            cars = cars.subset(keep)
    trajectories = [np.array(p) for p in paths] if record else None
    return EpisodeResult(returns, progress, lap_length, out["crashed"], out["stalled"], out["timed_out"], steps, agent_steps, trajectories)


class CarBatchEnv:
    """n cars on the training tracks; a car whose episode ended restarts at a new random start.

    `reset(seed)` -> obs (n, 6). `step(actions (n, 2))` -> obs, reward, done, info: for cars whose episode
    ended, obs is already the first observation of their next episode (as Gymnasium's vector envs do
    with same-step autoreset), and info holds why each ended and the finished episodes' returns.
    Car i always drives on training track i % number of tracks.
    """

    def __init__(self, tracks: list[Track] | World, num_envs: int):
        self.world = tracks if isinstance(tracks, World) else World(tracks)
        self.num_envs = num_envs
        self.rng = np.random.default_rng(0)
        self.cars: Cars | None = None
        self.tracks_of_cars = np.arange(num_envs) % len(self.world.tracks)
        self.episode_returns = np.zeros(num_envs)

    def reset(self, seed=None) -> np.ndarray:
        """Start every car afresh. `seed`: an int, or one int per car (each first start then depends only
        on its own seed); later restarts draw from a generator seeded by all of them."""
        if seed is not None and np.ndim(seed) == 1:
            seeds = [int(s) for s in seed]
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset needs one seed per car ({self.num_envs}), got {len(seeds)}")
            firsts = [random_starts(self.world, np.random.default_rng(s), 1, self.tracks_of_cars[i : i + 1]) for i, s in enumerate(seeds)]
            starts = Starts(*(np.concatenate([getattr(f, k) for f in firsts]) for k in ("track", "s", "lateral", "heading")))
            self.rng = np.random.default_rng(seeds)
        else:
            if seed is not None:
                self.rng = np.random.default_rng(seed)
            starts = random_starts(self.world, self.rng, self.num_envs, self.tracks_of_cars)
        self.cars = Cars(self.world, starts)
        self.episode_returns[:] = 0.0
        return self.cars.obs.copy()

    def step(self, actions: np.ndarray):
        reward, crashed, stalled, timed_out = self.cars.step(np.asarray(actions))
        self.episode_returns += reward
        done = crashed | stalled | timed_out
        info = {"crashed": crashed, "stalled": stalled, "timed_out": timed_out, "episode_returns": self.episode_returns[done].copy(),
                "episode_progress": self.cars.progress[done] / self.cars.lap[done]}
        if done.any():
            ended = np.nonzero(done)[0]
            self.cars.reset(ended, random_starts(self.world, self.rng, len(ended), self.tracks_of_cars[ended]))
            self.episode_returns[ended] = 0.0
        return self.cars.obs.copy(), reward, done, info


def build_car_task(info: TaskInfo, options: dict) -> CarTask:
    """Build a car task from validated options; `track` (a user track or built-in name) replaces the
    scored track. On single-track tasks it replaces the one track (trained and scored on it); on
    `car-generalize` it replaces only the track the policy is scored on, never trained on."""
    from arena.tasks.car.catalog import TRACKS_OF_TASK
    from arena.tasks.car.tracks import builtin_track, parse_track

    train_names, eval_name = TRACKS_OF_TASK[info.name]
    train = [builtin_track(name) for name in train_names]
    scored = builtin_track(eval_name)
    if options.get("track") is not None:
        scored = parse_track(options["track"])
        if eval_name in train_names:  # a single-track task: train where it is scored
            train = [scored]
    return CarTask(info, train, scored)
