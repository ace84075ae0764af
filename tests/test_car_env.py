"""The car's Gymnasium envs as users plug them in: gym.make, gym.make_vec, checkers, render, limits, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import arena.tasks.car.env  # noqa: F401  registers arena/CarNav-v0
from arena.tasks.car.env import ENV_ID, CarNavEnv
from arena.tasks.car.vector_env import CarNavVectorEnv


def driver(obs: np.ndarray) -> np.ndarray:
    """A hand-written driver (one observation or a batch): steer towards room, slow down when it closes."""
    obs = np.atleast_2d(obs)
    steer = np.clip(3 * (obs[:, 4] - obs[:, 0]) + (obs[:, 3] - obs[:, 1]), -1, 1)
    speed = np.clip(1.5 * obs[:, 2] - 0.5, -1, 1)
    return np.stack([steer, speed], axis=1).astype(np.float32)


def crash_into_wall(env) -> dict:
    """Full lock at full speed until the car hits a wall; returns the last info."""
    env.reset(seed=0)
    for _ in range(500):
        _, reward, terminated, truncated, info = env.step(np.float32([1.0, 1.0]))
        if terminated or truncated:
            assert terminated and info["crashed"] and reward < 0
            return info
    raise AssertionError("full lock at full speed never crashed")


# --- the single-car env --------------------------------------------------------------------------------


@pytest.mark.parametrize("track", ["oval", "hard", "random:4"])
def test_env_passes_gymnasiums_and_stable_baselines_checkers(track):
    env = gym.make(ENV_ID, track=track, render_mode="rgb_array")
    check_env(env.unwrapped)  # render check included
    with pytest.warns(UserWarning, match="not having a spec"):  # made directly: no registration to read
        check_env(CarNavEnv(track))
    sb3_check_env(CarNavEnv(track), warn=True)
    sb3_check_env(gym.make(ENV_ID, track=track), warn=True)


def test_step_after_the_episode_ended_is_refused():
    env = CarNavEnv("oval")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, np.float32))
    crash_into_wall(env)
    with pytest.raises(RuntimeError, match="ended \\(crashed\\).*reset"):
        env.step(np.zeros(2, np.float32))
    obs, info = env.reset(seed=1)  # reset starts a new episode that can be stepped
    assert info["laps"] == 0.0 and env.step(np.zeros(2, np.float32))[2] is False


def test_time_limit_is_the_registrations_and_can_be_changed():
    assert gym.spec(ENV_ID).max_episode_steps == 1000
    for limit in (1000, 2000):
        env = gym.make(ENV_ID, track="oval", max_episode_steps=limit) if limit != 1000 else gym.make(ENV_ID, track="oval")
        obs, _ = env.reset(seed=2)
        for step in range(1, limit + 1):
            obs, _, terminated, truncated, info = env.step(driver(obs)[0])
            assert not terminated, "the driver crashed"
            if truncated:
                break
        assert step == limit and truncated and not info["stalled"]
        assert info["laps_completed"] >= limit // 500  # it drove laps all along (a 174 m lap takes < 500 steps here)


def test_a_completed_lap_shows_in_info():
    env = gym.make(ENV_ID, track="oval")
    obs, info = env.reset(seed=3)
    assert info["laps_completed"] == 0
    flags = []
    for _ in range(400):
        obs, _, terminated, truncated, info = env.step(driver(obs)[0])
        flags.append(info["lap_completed"])
        assert not (terminated or truncated)
    assert info["laps_completed"] == sum(flags) >= 1 and info["laps"] >= info["laps_completed"]
    assert flags.index(True) > 10  # not on the first steps: a lap is 174 m


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(3, np.float32), "shape \\(2,\\)"),
        (np.zeros((1, 2), np.float32), "shape \\(2,\\)"),
        (0.5, "shape \\(2,\\)"),
        (np.float32([np.nan, 0.0]), "NaN"),
        (["left", "fast"], "numbers"),
    ],
)
def test_bad_actions_are_refused_with_a_clear_error(action, message):
    env = CarNavEnv("oval")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)
    env.step([0.0, 0.5])  # a list is fine; the episode goes on after a refused action
    env.step(np.float64([2.0, -3.0]))  # out of range: clipped like any Box action


def test_numpy_track_points_and_generated_tracks_are_accepted():
    angles = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    ring = np.stack([30 * np.cos(angles), 30 * np.sin(angles)], axis=1)
    env = gym.make(ENV_ID, track={"points": ring, "width": np.float64(8)})
    assert env.unwrapped.track.width == 8 and abs(env.unwrapped.track.length - 188) < 1
    assert gym.make(ENV_ID, track={"generator": {"seed": 9, "width": 5}}).unwrapped.track.name == "random:9(width=5)"
    assert gym.make(ENV_ID, track="random:9").unwrapped.track.name == "random:9"


def test_render_rgb_array_is_a_top_down_picture():
    env = gym.make(ENV_ID, track="hard", render_mode="rgb_array")
    env.reset(seed=5)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and max(frame.shape[:2]) == 480
    car = (frame == [220, 30, 30]).all(axis=2)
    assert 5 < car.sum() < 500  # the car is drawn, and small
    for _ in range(20):
        env.step(np.float32([0.0, 1.0]))
    moved = (env.render() == [220, 30, 30]).all(axis=2)
    assert not np.array_equal(car, moved)
    assert gym.make(ENV_ID).unwrapped.render() is None
    with pytest.raises(ValueError, match="render_mode"):
        CarNavEnv("oval", render_mode="human")


# --- the vector env -------------------------------------------------------------------------------------


def test_make_vec_gives_the_batched_simulator():
    envs = gym.make_vec(ENV_ID, num_envs=8, vectorization_mode="vector_entry_point", track="scurve")
    assert isinstance(envs.unwrapped, CarNavVectorEnv) and envs.num_envs == 8
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.unwrapped.max_episode_steps == 1000
    obs, info = envs.reset(seed=1)
    assert obs.shape == (8, 6) and obs.dtype == np.float32 and envs.observation_space.contains(obs)
    assert envs.single_action_space.shape == (2,) and envs.action_space.shape == (8, 2)
    envs.action_space.seed(0)
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    assert envs.observation_space.contains(obs)
    assert reward.shape == terminated.shape == truncated.shape == (8,) and terminated.dtype == bool
    assert info["laps"].shape == (8,) and info["_laps"].all()
    again = gym.make_vec(ENV_ID, num_envs=8, vectorization_mode="vector_entry_point", track="scurve")
    assert np.array_equal(again.reset(seed=1)[0], envs.reset(seed=1)[0])  # seeded
    with pytest.raises(ValueError, match="shape \\(8, 2\\)"):
        envs.step(np.zeros((7, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        envs.step(np.full((8, 2), np.nan, np.float32))
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync")  # the single-car env vectorised also works
    assert sync.reset(seed=0)[0].shape == (2, 6)


def test_vector_env_follows_next_step_autoreset():
    envs = CarNavVectorEnv(num_envs=16, track="oval")
    envs.reset(seed=0)
    lock = np.tile(np.float32([1.0, 1.0]), (16, 1))  # full lock at full speed: every car crashes
    ended = np.zeros(16, dtype=bool)
    for _ in range(300):
        previous = ended
        obs, reward, terminated, truncated, info = envs.step(lock)
        ended = terminated | truncated
        # A car whose episode ended on the previous step was reset instead: reward 0, not done, standing still.
        assert (reward[previous] == 0).all() and not ended[previous].any()
        assert (obs[previous, -1] == 0).all()
        assert (reward[terminated] < 0).all() and info["crashed"][terminated].all()
        if previous.any():
            break
    else:
        raise AssertionError("no car crashed")


def test_a_vector_car_drives_exactly_as_the_single_env_with_its_seed():
    envs = CarNavVectorEnv(num_envs=3, track="hard")
    single = CarNavEnv("hard")
    obs_v, _ = envs.reset(seed=[11, 12, 13])
    obs_s, _ = single.reset(seed=12)
    assert np.array_equal(obs_v[1], obs_s)
    for _ in range(150):
        obs_v, reward_v, *_ = envs.step(driver(obs_v))
        obs_s, reward_s, terminated, truncated, _ = single.step(driver(obs_s)[0])
        assert np.array_equal(obs_v[1], obs_s) and reward_v[1] == reward_s
        if terminated or truncated:
            break


def test_vector_time_limit_and_several_tracks():
    envs = gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="vector_entry_point", max_episode_steps=50,
                        track=["oval", "random:1"])
    assert [t.name for t in envs.unwrapped.tracks] == ["oval", "random:1"]
    obs, _ = envs.reset(seed=4)
    for step in range(1, 51):
        obs, _, terminated, truncated, _ = envs.step(driver(obs))
        assert not terminated.any()
        assert truncated.all() == (step == 50)
    obs, reward, terminated, truncated, _ = envs.step(driver(obs))  # the autoreset step
    assert (reward == 0).all() and not (terminated | truncated).any()


def test_vector_env_works_with_gymnasium_vector_wrappers_and_renders():
    envs = gym.wrappers.vector.RecordEpisodeStatistics(
        gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="vector_entry_point", render_mode="rgb_array")
    )
    envs.reset(seed=0)
    frames = envs.render()
    assert len(frames) == 4 and all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)
    done = False
    for _ in range(200):
        _, _, terminated, truncated, info = envs.step(np.tile(np.float32([1.0, 1.0]), (4, 1)))
        if (terminated | truncated).any():
            done = True
            break
    assert done and "episode" in info and info["_episode"].any()
