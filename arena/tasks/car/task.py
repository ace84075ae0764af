"""The car task as both methods see it: population fitness, the evaluation verdict, and a batched env.

- `CarTask.fitness` steps a whole GA population at once: every member drives the same episodes
  (drawn from `episode_seed`), all members x episodes are one batch of cars.
- `CarTask.evaluate` scores one network on a fixed, seeded set of evaluation episodes with
  deterministic actions; both methods are scored by this code.
- `CarBatchEnv` is what PPO collects rollouts from: n cars that restart when their episode ends.

Generalisation tasks (`catalog.GENERALIZATION`) train on a stream of generated tracks: `fitness` draws
its tracks from the episode seed (a fresh draw every generation), the batched env re-draws them at every
rollout boundary; the scoring episodes drive held-out tracks no training draw can produce. Methods know
nothing of this: they pass episode seeds and step the env as on any other task.

Compute (`metrics["compute"]` of `evaluate`): the task counts the policy forward passes it really ran
for the population methods (`fitness`: every member's row on every step of the batched episode loop,
including the rows of cars whose episode already ended, which that loop still forwards) and those of
the solve checks, and their multiply-adds. PPO reports its own (rollout and update passes).
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


class TrackStream:
    """Generated tracks drawn from a seed, with parameters drawn from ranges (a generalisation task's side).

    `draw(seed)` -> `tracks_per_draw` tracks whose generator seeds lie in [seed_low, seed_high); the same
    seed always gives the same tracks. A parameter draw the generator cannot meet is replaced by the next.
    """

    def __init__(self, ranges: dict, tracks_per_draw: int, seed_low: int, seed_high: int):
        self.ranges, self.tracks_per_draw, self.seed_low, self.seed_high = dict(ranges), tracks_per_draw, seed_low, seed_high

    def params(self, rng: np.random.Generator) -> dict:
        out = {"seed": int(rng.integers(self.seed_low, self.seed_high))}
        for key, (low, high) in self.ranges.items():
            if key == "harmonics":
                out[key] = int(rng.integers(low, high + 1))
            elif key == "length":
                out[key] = float(round(rng.uniform(low, high) / 10) * 10)
            else:  # 0.1 steps: readable names, and the cache holds the few thousand combinations
                out[key] = float(np.clip(round(rng.uniform(low, high), 1), low, high))
        return out

    def draw(self, seed: int, count: int | None = None) -> list[Track]:
        from arena.errors import ArenaError
        from arena.tasks.car.generator import generated_track

        rng = np.random.default_rng([int(seed), 29])
        tracks = []
        while len(tracks) < (count or self.tracks_per_draw):
            try:
                tracks.append(generated_track(**self.params(rng)))
            except ArenaError:  # no drivable track for these parameters: the next draw
                continue
        return tracks


class CarTask:
    def __init__(self, info: TaskInfo, train_tracks: list[Track], eval_track: Track | list[Track], settings: CarSettings = CarSettings(),
                 stream: TrackStream | None = None):
        self.info = info
        self.settings = settings
        self.stream = stream
        self.train_world = World(stream.draw(0) if stream is not None else train_tracks)
        self._worlds: dict[int, World] = {}  # the last draws of the stream, by episode seed
        eval_tracks = list(eval_track) if isinstance(eval_track, (list, tuple)) else [eval_track]
        self.eval_world = World(eval_tracks)
        n = settings.evaluation_episodes
        # The scoring episodes spread evenly over the scoring tracks (episode i on track i % tracks).
        self.eval_starts = random_starts(self.eval_world, np.random.default_rng(EVALUATION_SEED), n, np.arange(n) % len(eval_tracks))
        self.compute = _zero_compute()
        self._run_marker = None

    @property
    def train_tracks(self) -> list[Track]:
        """The training tracks (a stream task: its first draw, episode seed 0)."""
        return self.train_world.tracks

    @property
    def eval_track(self) -> Track:
        return self.eval_world.tracks[0]

    @property
    def eval_tracks(self) -> list[Track]:
        return self.eval_world.tracks

    def training_world(self, episode_seed: int) -> World:
        """The tracks episodes of `episode_seed` drive: fixed, or a fresh draw of the stream."""
        if self.stream is None:
            return self.train_world
        key = int(episode_seed)
        if key not in self._worlds:
            if len(self._worlds) >= 4:
                self._worlds.pop(next(iter(self._worlds)))
            self._worlds[key] = World(self.stream.draw(key))
        return self._worlds[key]

    def episode_starts(self, episode_seed: int, count: int | None = None) -> Starts:
        """The training episodes drawn from `episode_seed` (cycling through the training tracks)."""
        world = self.training_world(episode_seed)
        return random_starts(world, np.random.default_rng(episode_seed), count or self.settings.train_episodes)

    def batch_env(self, num_envs: int, rollout_steps: int | None = None) -> "CarBatchEnv":
        """What a reinforcement-learning method collects rollouts from (the training tracks).

        `rollout_steps`: the method's rollout length. On a stream task the env re-draws its tracks every
        that many steps (truncating the running episodes there); elsewhere it is ignored."""
        return CarBatchEnv(self.train_world, num_envs, stream=self.stream, rollout_steps=rollout_steps)

    # --- the GA's view --------------------------------------------------------------------------

    def fitness(self, population_forward: Forward, episode_seed: int = 0) -> tuple[np.ndarray, int]:
        """Mean return of every member over the same episodes; the whole population drives at once."""
        macs = self._start_or_continue_run(population_forward)
        # The interface does not say how many members there are: one forward on a dummy input does (it
        # drives no car, so it is not counted as an agent-step; its rows are counted as compute).
        members = population_forward(np.zeros((1, OBSERVATION_SIZE), np.float32)).shape[0]
        world = self.training_world(episode_seed)
        starts = self.episode_starts(episode_seed)
        episodes = len(starts)
        everyone = Starts(*(np.tile(a, members) for a in (starts.track, starts.s, starts.lateral, starts.heading)))
        rows = [members]

        def forward(obs: np.ndarray) -> np.ndarray:  # car k = member k // episodes on episode k % episodes
            rows[0] += len(obs)
            return population_forward(obs.reshape(members, episodes, -1)).reshape(members * episodes, -1)

        result = run_episodes(world, everyone, forward)
        self._count("policy_forwards", rows[0], macs)
        self.compute["agent_steps"] += int(result.agent_steps)
        returns = result.returns.reshape(members, episodes).mean(axis=1)
        return returns, int(result.agent_steps)

    def _start_or_continue_run(self, population_forward) -> int:
        """Multiply-adds per forward row of the network behind `population_forward`; a new run (a new
        `PopulationForward`, as ga.py and cmaes.py make one per run) resets the compute counts."""
        owner = getattr(population_forward, "network", None)  # set by PopulationForward.numpy
        if owner is not None and owner is not self._run_marker:
            self._run_marker = owner
            self.reset_compute()
        arch = owner.arch if owner is not None else self.info.default_architecture
        self.compute["multiply_adds_per_forward"] = arch.multiply_adds
        return self.compute["multiply_adds_per_forward"]

    def reset_compute(self) -> None:
        self.compute = _zero_compute()

    def _count(self, key: str, rows: int, macs: int) -> None:
        self.compute[key] += int(rows)
        self.compute["multiply_adds"] += int(rows) * int(macs)

    # --- the verdict, the same for every method -----------------------------------------------------

    def evaluate(self, forward: Forward) -> tuple[float, bool, dict]:
        """Score = mean fraction of a lap completed (capped at 1) over the evaluation episodes.

        Each evaluation episode ends at the first completed lap, a crash, a stall or the time limit;
        solved when at least 90% of them complete the lap (completing it means no crash before it).
        """
        rows = [0]

        def counted(obs):
            rows[0] += len(obs)
            return forward(obs)

        result = run_episodes(self.eval_world, self.eval_starts, counted, stop_after_lap=True)
        self.compute["check_forwards"] += rows[0]
        self.compute["check_multiply_adds"] += rows[0] * self.compute.get("multiply_adds_per_forward", 0)
        laps = result.progress / result.lap_length
        lap_fraction = np.clip(laps, 0.0, 1.0)
        finished = laps >= 1.0
        n = len(laps)
        score = float(lap_fraction.mean())
        metrics = {
            "track": self.eval_track.name if len(self.eval_tracks) == 1 else f"{len(self.eval_tracks)} held-out tracks",
            "episodes": n,
            "lap_fraction": score,
            "laps_completed": int(finished.sum()),
            "finish_rate": float(finished.mean()),
            "crash_rate": float(result.crashed.mean()),
            "stall_rate": float(result.stalled.mean()),
            "timeout_rate": float(result.timed_out.mean()),
            "mean_steps": float(result.steps.mean()),
            "compute": dict(self.compute),
        }
        if len(self.eval_tracks) > 1:
            metrics["finish_rate_by_track"] = {
                t.name: float(finished[self.eval_starts.track == k].mean()) for k, t in enumerate(self.eval_tracks)
            }
        return score, bool(finished.mean() >= SOLVED_FRACTION), metrics


def _zero_compute() -> dict:
    return {"policy_forwards": 0, "backward_passes": 0, "multiply_adds": 0, "agent_steps": 0, "check_forwards": 0, "check_multiply_adds": 0}


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
    with same-step autoreset), and info holds why each ended and the finished episodes' returns:
    `terminated` (a crash: the episode's true end), `truncated` (a stall, the time limit, or a re-draw of
    the tracks: the episode was cut, and its value should be bootstrapped from `final_obs`), and
    `final_obs` (n, 6): each ended car's last observation (the others' current one).
    Car i always drives on training track i % number of tracks.

    With a `stream` (a generalisation task) and `rollout_steps`, every `rollout_steps` steps the env
    draws new tracks (seeded from the reset seed and the rollout index), cuts every running episode
    (truncated) and restarts all cars on the new tracks.
    """

    def __init__(self, tracks: list[Track] | World, num_envs: int, stream: TrackStream | None = None, rollout_steps: int | None = None):
        self.world = tracks if isinstance(tracks, World) else World(tracks)
        self.num_envs = num_envs
        self.rng = np.random.default_rng(0)
        self.cars: Cars | None = None
        self.tracks_of_cars = np.arange(num_envs) % len(self.world.tracks)
        self.episode_returns = np.zeros(num_envs)
        self.stream = stream
        self.rollout_steps = rollout_steps if stream is not None else None
        self.stream_seed = 0
        self.steps = 0
        self.draws = 0

    def _draw_world(self) -> None:
        seed = int(np.random.SeedSequence([self.stream_seed, self.draws, 13]).generate_state(1)[0])
        self.world = World(self.stream.draw(seed))
        self.tracks_of_cars = np.arange(self.num_envs) % len(self.world.tracks)
        self.draws += 1

    def reset(self, seed=None) -> np.ndarray:
        """Start every car afresh. `seed`: an int, or one int per car (each first start then depends only
        on its own seed); later restarts draw from a generator seeded by all of them."""
        if self.stream is not None:
            self.stream_seed = int(np.random.SeedSequence(np.atleast_1d(seed).tolist() if seed is not None else []).generate_state(1)[0])
            self.draws = 0
            self._draw_world()
        self.steps = 0
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
        self.steps += 1
        self.episode_returns += reward
        cut = np.zeros(self.num_envs, dtype=bool)
        if self.rollout_steps and self.steps % self.rollout_steps == 0:
            cut[:] = True  # the tracks are re-drawn below: every running episode is cut here
        truncated = (stalled | timed_out | cut) & ~crashed
        done = crashed | truncated
        info = {"crashed": crashed, "stalled": stalled, "timed_out": timed_out, "terminated": crashed.copy(), "truncated": truncated,
                "redrawn": bool(cut.any()), "final_obs": self.cars.obs.copy(),
                "episode_returns": self.episode_returns[done].copy(), "episode_progress": self.cars.progress[done] / self.cars.lap[done]}
        if cut.any():
            self._draw_world()
            self.cars = Cars(self.world, random_starts(self.world, self.rng, self.num_envs, self.tracks_of_cars))
            self.episode_returns[:] = 0.0
        elif done.any():
            ended = np.nonzero(done)[0]
            self.cars.reset(ended, random_starts(self.world, self.rng, len(ended), self.tracks_of_cars[ended]))
            self.episode_returns[ended] = 0.0
        return self.cars.obs.copy(), reward, done, info


def build_car_task(info: TaskInfo, options: dict) -> CarTask:
    """Build a car task from validated options; `track` (a user track or built-in name) replaces the
    scored track. On single-track tasks it replaces the one track (trained and scored on it); on a
    generalisation task it replaces only the scoring tracks, never trained on (training stays the stream)."""
    from arena.tasks.car.catalog import GENERALIZATION, HELD_OUT_SEED_BASE, TRACKS_OF_TASK, TRAINING_SEEDS
    from arena.tasks.car.sources import parse_track
    from arena.tasks.car.tracks import builtin_track

    if info.name in GENERALIZATION:
        spec = GENERALIZATION[info.name]
        stream = TrackStream(spec["train"], spec["tracks_per_draw"], 0, TRAINING_SEEDS)
        held_out = TrackStream(spec["train"], spec["held_out_generated"], HELD_OUT_SEED_BASE, 2**62)
        scored = [builtin_track(name) for name in spec["held_out_builtin"]] + held_out.draw(EVALUATION_SEED)
        if options.get("track") is not None:
            scored = [parse_track(options["track"])]
        return CarTask(info, [], scored, stream=stream)

    train_names, eval_name = TRACKS_OF_TASK[info.name]
    train = [builtin_track(name) for name in train_names]
    scored = builtin_track(eval_name)
    if options.get("track") is not None:
        scored = parse_track(options["track"])
        if eval_name in train_names:  # a single-track task: train where it is scored
            train = [scored]
    return CarTask(info, train, scored)
