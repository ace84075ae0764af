"""The car task: simulator physics and invariants, tracks, the Gymnasium env, and both methods learning."""

from __future__ import annotations

import subprocess
import sys

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from arena.errors import ArenaError
from arena.models.network import PopulationForward, initial_vectors
from arena.runspec import resolve
from arena.tasks import make_task, task_info
import arena.tasks.car.env  # noqa: F401  registers arena/CarNav-v0
from arena.tasks.car import ENV_ID, CarBatchEnv, CarNavEnv, Cars, World, builtin_track, parse_track, random_starts
from arena.tasks.car.sim import MAX_STEPS, RAY_ANGLES, RAY_RANGE, STALL_STEPS, TOP_SPEED, Starts
from arena.tasks import check_task_options
from arena.tasks.car.catalog import CAR_TASKS
from arena.runner import execute


def steer_to_space(obs: np.ndarray) -> np.ndarray:
    """A hand-written driver: steer towards the side with more room, slow down when the way ahead closes."""
    steer = np.clip(3 * (obs[:, 4] - obs[:, 0]) + (obs[:, 3] - obs[:, 1]), -1, 1)
    speed = np.clip(1.5 * obs[:, 2] - 0.5, -1, 1)
    return np.stack([steer, speed], axis=1).astype(np.float32)


def drive(cars: Cars, policy, steps: int):
    """Step `cars` with `policy`; returns positions (steps + 1, n, 2) and whether each car has ended."""
    positions = [np.stack([cars.x, cars.y], axis=1)]
    ended = np.zeros(len(cars), dtype=bool)
    for _ in range(steps):
        _, crashed, stalled, timed_out = cars.step(policy(cars.obs))
        ended |= crashed | stalled | timed_out
        positions.append(np.stack([cars.x, cars.y], axis=1))
    return np.array(positions), ended


# --- the Gymnasium env ----------------------------------------------------------------------------------


def test_gymnasium_env_passes_the_checker():
    check_env(CarNavEnv("oval"), skip_render_check=True)
    env = gymnasium.make(ENV_ID, track="scurve")
    obs, _ = env.reset(seed=1)
    assert obs.shape == (6,) and obs.dtype == np.float32 and env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(reward, float) and "laps" in info


def test_same_seed_same_episode():
    def episode(seed):
        env = CarNavEnv("hard")
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for _ in range(200):
            obs, reward, terminated, truncated, _ = env.step(steer_to_space(obs[None])[0])
            trace.append(np.append(obs, reward))
            if terminated or truncated:
                break
        return trace

    a, b, c = episode(7), episode(7), episode(8)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])

    task = make_task("car-oval")
    population = initial_vectors(task.info.default_architecture, 8)
    forward = PopulationForward(task.info.default_architecture).numpy(population.numpy())
    first, steps = task.fitness(forward, episode_seed=3)
    again, steps_again = task.fitness(forward, episode_seed=3)
    assert np.array_equal(first, again) and steps == steps_again
    assert not np.array_equal(first, task.fitness(forward, episode_seed=4)[0])


# --- batching ---------------------------------------------------------------------------------------


def test_a_cars_trajectory_does_not_depend_on_the_batch():
    world = World([builtin_track("scurve")])
    starts = random_starts(world, np.random.default_rng(0), 257)
    alone, _ = drive(Cars(world, starts.take(np.array([5]))), steer_to_space, 300)
    crowd, _ = drive(Cars(world, starts), steer_to_space, 300)
    assert np.array_equal(alone[:, 0], crowd[:, 5])


def test_population_evaluated_together_equals_each_alone():
    task = make_task("car-oval")
    arch = task.info.default_architecture
    torch.manual_seed(0)
    population = initial_vectors(arch, 6).numpy()
    forward = PopulationForward(arch)
    together, steps_together = task.fitness(forward.numpy(population), episode_seed=11)
    alone = [task.fitness(forward.numpy(population[i : i + 1]), episode_seed=11) for i in range(len(population))]
    assert np.allclose(together, [f[0] for f, _ in alone], rtol=0, atol=1e-9)
    assert steps_together == sum(s for _, s in alone)


# --- physics ----------------------------------------------------------------------------------------


def _crosses(p, q, a, b):
    """Whether segments p-q (n, 2) cross any of the segments a-b (m, 2)."""
    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    r, s = (q - p)[:, None], (b - a)[None]
    w = a[None] - p[:, None]
    denom = cross(r, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        t, u = cross(w, s) / denom, cross(w, r) / denom
    return ((denom != 0) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)).any(axis=1)


@pytest.mark.parametrize("track", ["oval", "hard"])
def test_no_car_passes_through_a_wall_at_top_speed_and_full_steering(track):
    world = World([builtin_track(track)])
    t = world.tracks[0]
    n = 300
    cars = Cars(world, random_starts(world, np.random.default_rng(1), n))
    cars.speed[:] = TOP_SPEED
    steer = np.random.default_rng(2).choice([-1.0, 0.0, 1.0], n)
    actions = np.stack([steer, np.ones(n)], axis=1).astype(np.float32)
    alive = np.ones(n, dtype=bool)
    for _ in range(200):
        before = np.stack([cars.x, cars.y], axis=1)
        _, crashed, stalled, timed_out = cars.step(actions)
        after = np.stack([cars.x, cars.y], axis=1)
        moved_through = _crosses(before, after, t.walls_a, t.walls_b)
        # A car that did not crash this step never crossed a wall line; one that crashed is stopped here.
        assert not (moved_through & alive & ~crashed).any()
        alive &= ~(crashed | stalled | timed_out)
    assert not alive.any(), "at top speed every car must eventually hit a wall"


def test_rays_against_nearby_walls_equal_rays_against_all_walls():
    for name in ("oval", "scurve", "hard"):
        world = World([builtin_track(name)])
        t = world.tracks[0]
        cars = Cars(world, random_starts(world, np.random.default_rng(3), 200))
        drive(cars, lambda obs: np.tile(np.float32([0.3, 0.2]), (len(obs), 1)), 15)
        for k in range(len(cars)):
            origin = np.array([cars.x[k], cars.y[k]])
            for j, angle in enumerate(cars.heading[k] + RAY_ANGLES):
                d = np.array([np.cos(angle), np.sin(angle)])
                e = t.walls_b - t.walls_a
                q = t.walls_a - origin
                denom = d[0] * e[:, 1] - d[1] * e[:, 0]
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = (q[:, 0] * e[:, 1] - q[:, 1] * e[:, 0]) / denom
                    u = (q[:, 0] * d[1] - q[:, 1] * d[0]) / denom
                hits = r[(r >= 0) & (u >= 0) & (u <= 1)]
                expected = min(hits.min() if len(hits) else RAY_RANGE, RAY_RANGE) / RAY_RANGE
                assert abs(cars.obs[k, j] - expected) < 1e-4, (name, k, j)


def _wide_ring(radius=40.0, width=20.0):
    angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    return {"points": np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1).tolist(), "width": width}


def test_standing_still_or_circling_ends_in_a_stall():
    world = World([parse_track(_wide_ring())])
    starts = Starts(np.zeros(2, dtype=np.int64), np.array([10.0, 100.0]), np.zeros(2), np.zeros(2))
    cars = Cars(world, starts)
    # Car 0 stands still (speed command -1); car 1 circles slowly at full steering (radius ~3.7 m).
    actions = np.array([[0.0, -1.0], [1.0, -0.6]], dtype=np.float32)
    ended_at = {}
    for step in range(1, MAX_STEPS + 1):
        _, crashed, stalled, _ = cars.step(actions)
        assert not crashed.any()
        for k in np.nonzero(stalled)[0]:
            ended_at.setdefault(int(k), step)
        if len(ended_at) == 2:
            break
    assert ended_at[0] == STALL_STEPS
    assert ended_at[1] < 4 * STALL_STEPS


def test_driving_backwards_earns_negative_reward():
    world = World([builtin_track("oval")])
    starts = Starts(np.zeros(1, dtype=np.int64), np.array([20.0]), np.zeros(1), np.array([np.pi]))  # mid-straight, reversed
    cars = Cars(world, starts)
    total = 0.0
    for _ in range(40):
        reward, crashed, _, _ = cars.step(np.array([[0.0, 0.0]], dtype=np.float32))
        assert not crashed.any()
        total += reward[0]
    assert total < 0 and cars.progress[0] < -5


def test_crossing_the_start_line_counts_as_progress():
    track = builtin_track("oval")
    world = World([track])
    cars = Cars(world, Starts(np.zeros(1, dtype=np.int64), np.array([track.length - 3.0]), np.zeros(1), np.zeros(1)))
    total = sum(cars.step(np.array([[0.0, 0.0]], dtype=np.float32))[0][0] for _ in range(30))
    assert 0 < cars.progress[0] < 20 and np.isclose(total, 100 * cars.progress[0] / track.length)


# --- tracks -------------------------------------------------------------------------------------------


def test_builtin_tracks_match_the_specification():
    oval, scurve, hard = (builtin_track(n) for n in ("oval", "scurve", "hard"))
    assert abs(oval.length - 174) < 2 and oval.width == 6
    assert abs(scurve.length - 216) < 3
    assert 310 <= hard.length <= 330 and hard.width == 5


@pytest.mark.parametrize(
    "track, message",
    [
        ({"points": [[0, 0], [10, 0], [10, 10]], "width": 4}, "at least 4"),
        ({"points": [[0, 0], [40, 40], [40, 0], [0, 40]], "width": 4}, "crosses itself"),  # a bow tie
        ({"points": _wide_ring(40, 20)["points"], "width": 0.8}, "too small for the car"),
        ({"points": _wide_ring(5, 4)["points"], "width": 12}, "wall"),  # bends tighter than half the width
        ({"points": [[0, 0], [1, 0]], "width": 4}, "at least 4"),
        ({"points": "oval", "width": 4}, "points"),
        ({"points": [[0, 0], [50, 0], [50, 50], [0, 50]]}, "width"),
        ("monaco", "unknown track"),
    ],
)
def test_malformed_tracks_are_refused_with_a_clear_message(track, message):
    with pytest.raises(ArenaError, match=message) as caught:
        check_task_options(task_info("car-oval"), {"track": track})
    assert caught.value.field == "track"


def test_user_tracks_replace_the_scored_track():
    ring = _wide_ring(30, 8)
    options = check_task_options(task_info("car-oval"), {"track": ring})
    task = make_task("car-oval", options)
    assert task.eval_track.name == "user" and [t.name for t in task.train_tracks] == ["user"]
    general = make_task("car-generalize", options)  # trained on the generated stream, scored on the user track
    assert all(t.name.startswith("random:") for t in general.train_tracks) and [t.name for t in general.eval_tracks] == ["user"]
    spec = resolve("car-oval", "ga", task_options={"track": "hard"})
    assert spec.task_options == {"track": "hard"}
    with pytest.raises(ArenaError, match="unknown car task option"):
        resolve("car-oval", "ga", task_options={"laps": 3})


def test_catalog_and_track_validation_import_no_torch_or_gymnasium():
    code = (
        "import sys; from arena.tasks import check_task_options; from arena.tasks.car.catalog import CAR_TASKS; "
        f"check_task_options(CAR_TASKS[0], {{'track': {_wide_ring(30, 8)!r}}}); "
        "import arena.tasks.car.tracks; "
        "assert 'torch' not in sys.modules and 'gymnasium' not in sys.modules, sorted(m for m in sys.modules if m in ('torch', 'gymnasium'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import sys; import arena.tasks.car; assert 'torch' not in sys.modules and 'gymnasium' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_catalog_describes_every_car_task():
    names = {info.name for info in CAR_TASKS}
    assert names == {"car-oval", "car-scurve", "car-hard", "car-generalize"}
    for info in CAR_TASKS:
        assert info.kind == "control" and info.input_size == 6 and info.output_size == 2 and info.noisy_fitness
        assert info.higher_is_better and {"ga", "ppo"} <= set(info.method_defaults) <= {"ga", "ppo", "cmaes"}


# --- the task's verdict and the batched env ---------------------------------------------------------------


def test_evaluation_scores_a_good_driver_as_solved_and_a_bad_one_not():
    task = make_task("car-hard")
    score, solved, metrics = task.evaluate(steer_to_space)
    assert solved and score == 1.0 and metrics["crash_rate"] == 0
    score, solved, metrics = task.evaluate(lambda obs: np.tile(np.float32([1.0, 1.0]), (len(obs), 1)))
    assert not solved and score < 0.2 and metrics["crash_rate"] == 1.0


def test_batched_env_restarts_finished_cars():
    env = CarBatchEnv([builtin_track("oval"), builtin_track("scurve")], 16)
    obs = env.reset(seed=0)
    assert obs.shape == (16, 6)
    ended = 0
    for _ in range(100):
        obs, reward, done, info = env.step(np.tile(np.float32([1.0, 1.0]), (16, 1)))  # full lock: crashes
        ended += int(done.sum())
        assert obs.shape == (16, 6) and reward.shape == (16,) and len(info["episode_returns"]) == done.sum()
    assert ended >= 16
    # One seed per car: a car's first episode depends on its own seed only.
    first = CarBatchEnv([builtin_track("oval")], 3).reset(seed=[5, 6, 7])
    again = CarBatchEnv([builtin_track("oval")], 2).reset(seed=[9, 6])
    assert np.array_equal(first[1], again[1]) and not np.array_equal(first[0], first[2])


# --- both methods learn ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ga", "backprop"])
def test_both_methods_improve_on_the_oval(method):
    spec = resolve("car-oval", method, budget={"evaluations": 150_000, "seconds": 20})
    result = execute(spec, seed=0)
    assert result.score > result.curve[0]["score"] or result.solved
    assert result.score > 0.5
    assert result.evaluations > 0 and len(result.weights) == spec.architecture.num_parameters
    if method == "backprop":
        assert result.extra_parameters > 0


def test_ppo_is_reproducible_per_seed():
    spec = resolve(
        "car-oval", "backprop", budget={"evaluations": 3000, "stop_on_solve": False}, settings={"num_envs": 16, "num_steps": 64}
    )
    first, second, other = execute(spec, seed=3), execute(spec, seed=3), execute(spec, seed=4)
    assert first.weights == second.weights and first.score == second.score and first.evaluations == 3072
    assert first.weights != other.weights


# --- drivable bends and generated tracks ----------------------------------------------------------------


def test_a_square_the_car_cannot_turn_in_is_refused_naming_the_bend():
    from arena.tasks.car.tracks import MIN_TURN_RADIUS

    assert abs(MIN_TURN_RADIUS - 2 / np.tan(0.5)) < 1e-12 and 3.6 < MIN_TURN_RADIUS < 3.7
    square = {"points": [[0, 0], [40, 0], [40, 40], [0, 40]], "width": 2}
    with pytest.raises(ArenaError, match=r"bend at \(.*\), 0\.0 m along the lap.*radius of 1\.41 m.*3\.66 m") as caught:
        check_task_options(task_info("car-oval"), {"track": square})
    assert caught.value.field == "track"
    # The rule r + w/2 - car radius >= R_min: stadiums with 20 m straights at width 2; 3.5 m ends give
    # 3.5 + 1 - 0.5 = 4 m (drivable), 2.5 m ends give 3 m (refused, though the walls neither fold nor cross).
    from arena.tasks.car.tracks import _turtle

    def stadium(radius):
        return {"points": _turtle([("S", 20.0), ("A", radius, 180.0), ("S", 20.0), ("A", radius, 180.0)]).tolist(), "width": 2}

    assert parse_track(stadium(3.5)).width == 2
    with pytest.raises(ArenaError, match="radius of 2.5.*cannot take it at width 2 m"):
        parse_track(stadium(2.5))


def test_every_builtin_and_generated_track_passes_the_bend_rule():
    from arena.tasks.car.tracks import CAR_RADIUS, MIN_TURN_RADIUS, bend_radii

    names = ["oval", "scurve", "hard"] + [f"random:{seed}" for seed in range(120)]
    for name in names:
        track = parse_track(name)
        assert (bend_radii(track.centre) + track.half_width - CAR_RADIUS >= MIN_TURN_RADIUS).all(), name
    for seed in range(0, 400, 37):  # other parameters, far apart
        track = parse_track({"generator": {"seed": seed, "width": 5, "min_radius": 4.5, "roughness": 2.0, "length": 400}})
        assert abs(track.length - 400) < 2 and bend_radii(track.centre).min() > 4.4


def test_generated_tracks_are_seeded_closed_and_named():
    a, b, c = parse_track("random:7"), parse_track({"generator": {"seed": 7}}), parse_track("random:8")
    assert a is b and a.name == "random:7" and abs(a.length - 250) < 2 and a.width == 6
    from arena.tasks.car import generator

    generator._CACHE.clear()
    again = parse_track("random:7")
    assert again is not a and np.array_equal(again.centre, a.centre)  # the same seed rebuilds the same track
    assert not np.allclose(a.centre[:50], c.centre[:50])
    assert np.linalg.norm(a.centre[0] - a.centre[-1]) < 1.5  # closed, resampled every ~1 m
    wide = parse_track({"generator": {"seed": 7, "width": 8}})
    assert wide.name == "random:7(width=8)" and wide.width == 8


@pytest.mark.parametrize(
    "track, message",
    [
        ("random:x", "random:<seed>"),
        ("random:-1", "random:<seed>"),
        ({"generator": {"width": 5}}, "seed \\(required\\)"),
        ({"generator": {"seed": 1, "laps": 2}}, "generator parameters"),
        ({"generator": {"seed": 1.5}}, "integer"),
        ({"generator": {"seed": 1, "width": 40}}, "width must be from"),
        ({"generator": {"seed": 1, "width": 2, "min_radius": 2.5}}, "tighter than the car can turn"),
        ({"generator": {"seed": 1, "width": 10, "min_radius": 4.5}}, "half the width"),
        ({"generator": {"seed": 1}, "width": 3}, "alone"),
    ],
)
def test_bad_generator_parameters_are_refused(track, message):
    with pytest.raises(ArenaError, match=message) as caught:
        check_task_options(task_info("car-oval"), {"track": track})
    assert caught.value.field == "track"


def test_generated_tracks_are_task_options_and_a_hand_written_driver_laps_them():
    options = check_task_options(task_info("car-oval"), {"track": {"generator": {"seed": 3, "width": 5}}})
    assert options == {"track": {"generator": {"seed": 3, "width": 5.0, "min_radius": 6.0, "length": 250.0, "harmonics": 6, "roughness": 1.0}}}
    assert make_task("car-oval", options).eval_track.name == "random:3(width=5)"
    assert check_task_options(task_info("car-hard"), {"track": "random:5"}) == {"track": "random:5"}
    for seed in (0, 1, 2):
        score, solved, metrics = make_task("car-oval", {"track": f"random:{seed}"}).evaluate(steer_to_space)
        assert solved and metrics["crash_rate"] == 0, (seed, metrics)


def test_numpy_points_are_accepted_as_a_user_track():
    ring = _wide_ring(30, 8)
    from_list = parse_track(ring)
    from_array = parse_track({"points": np.array(ring["points"]), "width": np.float32(8)})
    assert np.array_equal(from_list.centre, from_array.centre) and from_array.width == 8
    with pytest.raises(ArenaError, match="\\(n, 2\\) array"):
        parse_track({"points": np.zeros((10, 3)), "width": 8})
