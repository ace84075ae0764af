"""Generalisation tasks (a stream of generated training tracks, held-out scoring tracks), PPO's bootstrap on
truncation, and the compute reported beside agent-steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arena.methods.ppo import compute_gae
from arena.runner import execute
from arena.runspec import resolve
from arena.tasks import make_task
from arena.tasks.base import episode_seed
from arena.tasks.car.catalog import GENERALIZATION, HELD_OUT_SEED_BASE, TRAINING_SEEDS
from arena.tasks.car.tracks import builtin_track


def steer_to_space(obs: np.ndarray) -> np.ndarray:
    steer = np.clip(3 * (obs[:, 4] - obs[:, 0]) + (obs[:, 3] - obs[:, 1]), -1, 1)
    speed = np.clip(1.5 * obs[:, 2] - 0.5, -1, 1)
    return np.stack([steer, speed], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def task():
    return make_task("car-generalize")


def _seed_of(track) -> int:
    return int(track.name.split(":")[1].split("(")[0])


def test_training_tracks_differ_per_generation_and_never_equal_held_out(task):
    held_out = {t.name for t in task.eval_tracks}
    draws = [[t.name for t in task.training_world(episode_seed(0, g)).tracks] for g in range(6)]
    draws += [[t.name for t in task.training_world(episode_seed(1, g)).tracks] for g in range(3)]
    names = [n for d in draws for n in d]
    assert len(set(names)) == len(names)  # every generation (and every run seed) draws fresh tracks
    assert not held_out & set(names)
    assert all(_seed_of(task.training_world(episode_seed(0, g)).tracks[0]) < TRAINING_SEEDS for g in range(6))
    # the same episode seed gives the same tracks (GA survivors are re-scored on the same episodes)
    assert [t.name for t in task.training_world(episode_seed(0, 2)).tracks] == draws[2]
    assert len(draws[0]) == GENERALIZATION["car-generalize"]["tracks_per_draw"]


def test_training_parameters_cover_the_hard_tracks_hairpin():
    ranges = GENERALIZATION["car-generalize"]["train"]
    hard = builtin_track("hard")
    assert ranges["width"][0] <= hard.width <= ranges["width"][1]
    assert ranges["min_radius"][0] <= 5.0 and ranges["roughness"][1] >= 2.0


def test_the_scoring_set_is_fixed_held_out_and_spread_over_its_tracks(task):
    again = make_task("car-generalize")
    assert [t.name for t in task.eval_tracks] == [t.name for t in again.eval_tracks]
    for key in ("track", "s", "lateral", "heading"):
        assert np.array_equal(getattr(task.eval_starts, key), getattr(again.eval_starts, key))
    names = [t.name for t in task.eval_tracks]
    assert names[0] == "hard" and len(names) == 1 + GENERALIZATION["car-generalize"]["held_out_generated"]
    assert all(_seed_of(t) >= HELD_OUT_SEED_BASE for t in task.eval_tracks[1:])
    counts = np.bincount(task.eval_starts.track, minlength=len(names))
    assert len(task.eval_starts) == 32 and counts.max() - counts.min() <= 1
    score, solved, metrics = task.evaluate(steer_to_space)  # a hand-written driver laps every held-out track
    assert solved and set(metrics["finish_rate_by_track"]) == set(names)


def test_the_batched_env_redraws_its_tracks_every_rollout_and_truncates_there(task):
    env = task.batch_env(8, rollout_steps=5)
    env.reset(seed=3)
    first = [t.name for t in env.world.tracks]
    for step in range(5):
        obs, reward, done, info = env.step(steer_to_space(env.cars.obs))
    assert info["redrawn"] and done.all() and (info["truncated"] | info["terminated"]).all()
    second = [t.name for t in env.world.tracks]
    assert set(first).isdisjoint(second) and not set(second) & {t.name for t in task.eval_tracks}
    env2 = task.batch_env(8, rollout_steps=5)
    env2.reset(seed=3)
    assert [t.name for t in env2.world.tracks] == first  # seeded from the run seed and the rollout index
    env3 = task.batch_env(8, rollout_steps=5)
    env3.reset(seed=4)
    assert [t.name for t in env3.world.tracks] != first


def test_single_track_tasks_are_unchanged():
    for name, track in (("car-oval", "oval"), ("car-scurve", "scurve"), ("car-hard", "hard")):
        t = make_task(name)
        assert [x.name for x in t.train_tracks] == [track] and [x.name for x in t.eval_tracks] == [track]
        assert t.training_world(episode_seed(0, 5)) is t.train_world
    env = make_task("car-oval").batch_env(4, rollout_steps=3)
    env.reset(seed=0)
    for _ in range(3):
        _, _, done, info = env.step(steer_to_space(env.cars.obs))
    assert not info["redrawn"] and not done.any()


# --- PPO: bootstrap on truncation ----------------------------------------------------------------------------


def test_gae_bootstraps_truncated_episodes_and_not_terminated_ones():
    gamma, lam = 0.9, 0.5
    rewards = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    values = torch.tensor([[0.5, 0.5], [0.7, 0.7], [0.2, 0.2]])
    # env 0: its episode is truncated on step 1 (final observation worth 10); env 1: terminated on step 1.
    terminated = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    truncated = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    final_values = torch.tensor([[0.0, 0.0], [10.0, 99.0], [0.0, 0.0]])
    next_value = torch.tensor([4.0, 4.0])
    adv, ret = compute_gae(rewards, values, terminated, truncated, final_values, next_value, gamma, lam)
    # step 2 (a new episode, to the end of the rollout): bootstrapped from next_value
    assert adv[2, 0] == pytest.approx(3 + gamma * 4 - 0.2)
    # step 1: truncated -> reward + gamma V(final obs); terminated -> reward only (the 99 is ignored)
    assert adv[1, 0] == pytest.approx(2 + gamma * 10 - 0.7)
    assert adv[1, 1] == pytest.approx(2 - 0.7)
    # step 0: the recursion goes on inside the episode, not across its end
    for env in (0, 1):
        delta0 = 1 + gamma * 0.7 - 0.5
        assert adv[0, env] == pytest.approx(delta0 + gamma * lam * adv[1, env])
    assert torch.allclose(ret, adv + values)


def test_the_batched_env_reports_crashes_as_terminations_and_stalls_as_truncations():
    env = make_task("car-oval").batch_env(4)
    env.reset(seed=0)
    seen_term = seen_trunc = False
    for _ in range(120):
        before = env.cars.obs.copy()
        obs, reward, done, info = env.step(np.tile(np.float32([0.0, -1.0]), (4, 1)))  # standing still: stalls
        if info["truncated"].any():
            seen_trunc = True
            assert np.array_equal(info["final_obs"][info["truncated"]][:, :5], before[info["truncated"]][:, :5])
        seen_term |= info["terminated"].any()
        assert not (info["terminated"] & info["truncated"]).any()
    assert seen_trunc and not seen_term
    for _ in range(100):
        obs, reward, done, info = env.step(np.tile(np.float32([1.0, 1.0]), (4, 1)))  # full lock: crashes
        seen_term |= info["terminated"].any()
    assert seen_term


# --- compute beside experience ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ga", "cmaes"])
def test_population_methods_report_the_forwards_that_really_ran(method):
    result = execute(resolve("car-oval", method, budget={"evaluations": 60_000, "stop_on_solve": False}), seed=0)
    compute = result.metrics["compute"]
    assert compute["agent_steps"] == result.evaluations
    # the batched forward runs every member's row on every step, ended episodes included: more than charged
    assert compute["policy_forwards"] > result.evaluations and compute["backward_passes"] == 0
    assert compute["multiply_adds"] == compute["policy_forwards"] * compute["multiply_adds_per_forward"] == compute["policy_forwards"] * (6 * 8 + 8 * 2)
    assert compute["check_forwards"] > 0
    again = execute(resolve("car-oval", method, budget={"evaluations": 60_000, "stop_on_solve": False}), seed=0)
    assert again.metrics["compute"] == compute  # counted per run, not accumulated


@pytest.mark.parametrize("method", ["ga", "cmaes"])
def test_compute_counts_the_runs_own_network(method):
    # Not the task's default 6-8-2: the multiply-adds are those of the network the run trains.
    spec = resolve("car-oval", method, budget={"evaluations": 20_000, "stop_on_solve": False}, architecture={"input_size": 6, "hidden_sizes": [5, 3], "output_size": 2})
    compute = execute(spec, seed=1).metrics["compute"]
    assert compute["multiply_adds_per_forward"] == 6 * 5 + 5 * 3 + 3 * 2
    assert compute["multiply_adds"] == compute["policy_forwards"] * (6 * 5 + 5 * 3 + 3 * 2)


def test_ppo_reports_forward_and_backward_passes():
    spec = resolve("car-oval", "backprop", budget={"evaluations": 4096, "stop_on_solve": False}, settings={"update_epochs": 2, "num_minibatches": 4})
    result = execute(spec, seed=0)
    compute, m = result.metrics["compute"], result.metrics
    assert compute["agent_steps"] == result.evaluations == 4096
    assert compute["backward_passes"] == m["update_samples"] == 2 * 4096
    assert compute["policy_forwards"] == 4096 + m["update_samples"]
    policy, value = 6 * 8 + 8 * 2, 6 * 64 + 64 * 64 + 64
    expected = compute["policy_forwards"] * policy + compute["value_forwards"] * value + 2 * m["update_samples"] * (policy + value)
    assert compute["multiply_adds"] == expected and compute["check_forwards"] > 0


@pytest.mark.parametrize("method, settings", [("backprop", {"num_envs": 4, "num_steps": 128, "update_epochs": 2, "num_minibatches": 4}), ("ga", {"population_size": 4, "num_parents_mating": 2})])
def test_car_solve_checks_run_at_most_once_every_2048_agent_steps_for_every_method(method, settings, monkeypatch):
    from arena.methods.loop import check_every, seed_everything
    from arena.methods import ALGORITHMS
    from arena.tasks import make_task

    spec = resolve("car-oval", method, budget={"evaluations": 8192, "stop_on_solve": False}, settings=settings)
    task = make_task("car-oval")
    assert check_every(task) == 2048
    checks = []
    evaluate = task.evaluate
    monkeypatch.setattr(task, "evaluate", lambda forward: checks.append(1) or evaluate(forward))
    seed_everything(0)
    result = ALGORITHMS[spec.algorithm].train(task, spec.architecture, spec.settings, spec.budget, 0)
    # PPO: 16 updates of 512 agent-steps; without the cadence it would check after each (17 with the final verdict).
    assert 2 <= len(checks) <= result.evaluations // 2048 + 2
