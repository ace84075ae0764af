"""Arena's PPO beside Stable-Baselines3's PPO on car-oval: agent-steps to a lapping policy.

    .venv/bin/python benchmarks/bench_ppo_sb3.py --seeds 5                     # all three rows
    .venv/bin/python benchmarks/bench_ppo_sb3.py --seeds 5 --only arena
    .venv/bin/python benchmarks/bench_ppo_sb3.py --table benchmarks/out/ppo_sb3.jsonl

Stable-Baselines3 is a benchmark/test extra (`pip install stable-baselines3`), not a runtime dependency.

- Arena: `execute(resolve("car-oval", "backprop"))` with the task's PPO defaults (8 envs x 256 steps,
  10 epochs x 32 minibatches, lr 3e-4, truncations bootstrapped); its solve check runs after every
  rollout (2,048 agent-steps), on the task's 32 evaluation episodes with the deterministic policy.
- SB3: `PPO("MlpPolicy", env)` with SB3's defaults (n_steps 2048, batch 64, 10 epochs, lr 3e-4) on the
  single-car Gymnasium env `arena/CarNav-v0` (track "oval", 1,000-step limit), with
  (a) the 6-8-2 tanh policy net and a 64-64 value net: `net_arch=dict(pi=[8], vf=[64, 64])`,
  `activation_fn=nn.Tanh` (SB3's action mean is linear, Arena's is tanh), and (b) SB3's default [64, 64].
  After every rollout (2,048 agent-steps) a callback scores SB3's deterministic policy with the same
  `task.evaluate` (the same 32 episodes, the same solved rule: >= 90% lap without a crash).

Agent-steps to solve = experience collected when the first check passes (both sides check at the same
2,048-step cadence). Runs stop at the solve or after --budget agent-steps (then counted unsolved).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "ppo_sb3.jsonl"
CONFIGS = {  # implementation, networks
    "arena": ("Arena PPO, car defaults", "6-8-2 tanh policy, 64-64 tanh value"),
    "sb3-8": ("SB3 PPO, defaults", "pi=[8] vf=[64,64] tanh (the 6-8-2 policy)"),
    "sb3-64": ("SB3 PPO, defaults", "default [64,64] tanh"),
}


def run_arena(seed: int, budget: int) -> dict:
    import torch

    from arena.contract import Budget
    from arena.runner import execute
    from arena.runspec import resolve

    torch.set_num_threads(1)
    result = execute(resolve("car-oval", "backprop", budget=Budget(evaluations=budget, stop_on_solve=True)), seed)
    return {"solved": result.solved, "steps_to_solve": result.evaluations_to_solve, "steps": result.evaluations,
            "score": result.score, "compute": result.metrics.get("compute")}


def run_sb3(seed: int, budget: int, small: bool) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from torch import nn

    import arena.tasks.car.env  # noqa: F401  registers arena/CarNav-v0
    import gymnasium as gym
    from arena.tasks import make_task

    torch.set_num_threads(1)
    task = make_task("car-oval")
    env = gym.make("arena/CarNav-v0", track="oval")
    kwargs = {"policy_kwargs": dict(net_arch=dict(pi=[8], vf=[64, 64]), activation_fn=nn.Tanh)} if small else {}
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    state = {"solved_at": None, "score": None}

    def policy(obs):
        action, _ = model.predict(obs, deterministic=True)
        return action

    class SolveCheck(BaseCallback):
        """Checks the policy after every update (at the next rollout's start), as Arena checks after each
        update; the steps counted are those collected so far."""

        def _on_rollout_start(self) -> None:
            if self.num_timesteps == 0:
                return
            score, solved, _ = task.evaluate(policy)
            state["score"] = score
            if solved and state["solved_at"] is None:
                state["solved_at"] = self.num_timesteps
                self.model._arena_stop = True

        def _on_step(self) -> bool:
            return not getattr(self.model, "_arena_stop", False)

    model.learn(total_timesteps=budget, callback=SolveCheck())
    if state["solved_at"] is None:  # the last update was never checked
        score, solved, _ = task.evaluate(policy)
        state["score"] = score
        if solved:
            state["solved_at"] = model.num_timesteps
    return {"solved": state["solved_at"] is not None, "steps_to_solve": state["solved_at"], "steps": model.num_timesteps, "score": state["score"]}


def table(rows: list[dict]) -> str:
    out = ["| implementation | policy net | seeds solved | median agent-steps to solve | agent-steps to solve per seed |", "| --- | --- | ---: | ---: | --- |"]
    medians = {}
    for config in CONFIGS:
        mine = sorted((r for r in rows if r["config"] == config), key=lambda r: r["seed"])
        if not mine:
            continue
        # An unsolved seed counts as the budget (a lower bound) in the median.
        steps = [r["steps_to_solve"] if r["solved"] else r["budget"] for r in mine]
        medians[config] = statistics.median(steps)
        per = ", ".join(f"{r['steps_to_solve']:,}" if r["solved"] else f">{r['budget']:,}" for r in mine)
        name, net = CONFIGS[config]
        out.append(f"| {name} | {net} | {sum(r['solved'] for r in mine)}/{len(mine)} | {medians[config]:,.0f} | {per} |")
    if "arena" in medians:
        for config in ("sb3-8", "sb3-64"):
            if config in medians:
                out.append(f"\nArena median / {config} median = {medians['arena'] / medians[config]:.2f}x")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=100_000, help="agent-steps per run")
    parser.add_argument("--only", default=",".join(CONFIGS), help="comma-separated: arena, sb3-8, sb3-64")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--table", default=None)
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]))
        return
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(args.seeds):
        for config in args.only.split(","):
            started = time.perf_counter()
            result = run_arena(seed, args.budget) if config == "arena" else run_sb3(seed, args.budget, small=config == "sb3-8")
            row = {"config": config, "seed": seed, "budget": args.budget, **result, "seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{config} seed {seed}: solved={row['solved']} at {row['steps_to_solve']} ({row['seconds']} s)", file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
