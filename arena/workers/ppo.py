"""PPO (clipped surrogate, GAE) on a control task: the gradient method's side of the car comparison.

CleanRL's single-file `ppo_continuous_action.py`, trimmed to what Arena needs and run on the task's
batched environment (`task.batch_env(n)`: n episodes stepped together, restarting when they end)
instead of a Gymnasium vector env:

- the policy is the shared architecture (`build_module`) producing the action mean, plus a learned,
  state-independent log-std; a separate value network estimates returns. The log-std and the value
  net are extra parameters the GA does not have; they are reported in `extra_parameters`;
- the scored policy is the shared architecture alone acting deterministically (the mean), scored by
  `task.evaluate` like the GA's champion; the run returns the best-scoring one.

Counting (the budget unit): one evaluation per agent-step, i.e. per policy forward pass that chose an
action in a rollout, the same unit as the GA's fitness episodes. The update passes (update_epochs x
samples, each a forward and backward pass of policy and value net) are not charged to the budget: the
car task budgets environment experience, as the GA's budget does. They are real compute, so they show
in `seconds` and are reported in `metrics["update_samples"]` (forward+backward passes); by design.md's
rule (a backward pass counts as two) they would cost 3 x update_samples evaluations. Solve checks on
the evaluation episodes are not charged either, for either method.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from arena.contract import Budget, ProgressCallback, RunClock, RunResult
from arena.methods import PPOConfig
from arena.models.architecture import Architecture
from arena.models.network import PopulationForward, build_module, initial_vectors, module_to_vector, vector_to_module


class Agent(nn.Module):
    def __init__(self, architecture: Architecture, config: PPOConfig):
        super().__init__()
        self.policy = build_module(architecture)  # the shared architecture: observation -> action mean
        vector_to_module(initial_vectors(architecture, 1, config.init, config.init_scale)[0], self.policy)
        self.log_std = nn.Parameter(torch.full((architecture.output_size,), float(config.init_log_std)))
        hidden = config.value_hidden
        self.value = nn.Sequential(
            nn.Linear(architecture.input_size, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def extra_parameters(self) -> int:
        return self.log_std.numel() + sum(p.numel() for p in self.value.parameters())

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.policy(obs), self.log_std.exp())


def train(
    task,
    architecture: Architecture,
    config: PPOConfig,
    budget: Budget,
    seed: int,
    progress: ProgressCallback | None = None,
) -> RunResult:
    torch.manual_seed(seed)
    agent = Agent(architecture, config)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=1e-5)
    env = task.batch_env(config.num_envs)  # reset(seed) -> obs; step(actions) -> obs, reward, done, info
    clock = RunClock(budget, task.info.higher_is_better, progress)
    scorer = PopulationForward(architecture)

    def evaluate_policy():
        weights = module_to_vector(agent.policy).numpy()
        return (*task.evaluate(scorer.single(weights)), weights)

    n_envs, n_steps = config.num_envs, config.num_steps
    batch_size = n_envs * n_steps
    minibatch_size = max(1, batch_size // config.num_minibatches)
    obs_buf = torch.zeros(n_steps, n_envs, architecture.input_size)
    act_buf = torch.zeros(n_steps, n_envs, architecture.output_size)
    logp_buf = torch.zeros(n_steps, n_envs)
    rew_buf = torch.zeros(n_steps, n_envs)
    done_buf = torch.zeros(n_steps, n_envs)
    val_buf = torch.zeros(n_steps, n_envs)

    next_obs = torch.from_numpy(env.reset(seed=seed))
    next_done = torch.zeros(n_envs)
    best_weights = module_to_vector(agent.policy).numpy()
    update_samples = 0
    update = 0
    while True:
        update += 1
        # --- rollout: n_steps x n_envs agent-steps, each one policy forward (the budget unit) -------------
        for step in range(n_steps):
            obs_buf[step], done_buf[step] = next_obs, next_done
            with torch.no_grad():
                dist = agent.distribution(next_obs)
                action = dist.sample()
                logp_buf[step] = dist.log_prob(action).sum(-1)
                val_buf[step] = agent.value(next_obs).squeeze(-1)
            act_buf[step] = action
            # The simulator clips actions to [-1, 1]; the log-probability is of the unclipped sample.
            obs, reward, done, _ = env.step(action.numpy())
            rew_buf[step] = torch.from_numpy(reward.astype(np.float32))
            next_obs, next_done = torch.from_numpy(obs), torch.from_numpy(done.astype(np.float32))
        clock.evaluations += batch_size

        # --- generalised advantage estimation (an ended episode, whatever the reason, is not bootstrapped)
        with torch.no_grad():
            next_value = agent.value(next_obs).squeeze(-1)
            advantages = torch.zeros_like(rew_buf)
            last_gae = torch.zeros(n_envs)
            for t in reversed(range(n_steps)):
                not_done = 1.0 - (next_done if t == n_steps - 1 else done_buf[t + 1])
                following = next_value if t == n_steps - 1 else val_buf[t + 1]
                delta = rew_buf[t] + config.gamma * following * not_done - val_buf[t]
                last_gae = delta + config.gamma * config.gae_lambda * not_done * last_gae
                advantages[t] = last_gae
            returns = advantages + val_buf

        # --- clipped-surrogate updates -----------------------------------------------------------------
        b_obs = obs_buf.reshape(batch_size, -1)
        b_act = act_buf.reshape(batch_size, -1)
        b_logp, b_adv, b_ret = logp_buf.reshape(-1), advantages.reshape(-1), returns.reshape(-1)
        for _ in range(config.update_epochs):
            order = torch.randperm(batch_size)
            for start in range(0, batch_size, minibatch_size):
                mb = order[start : start + minibatch_size]
                dist = agent.distribution(b_obs[mb])
                ratio = (dist.log_prob(b_act[mb]).sum(-1) - b_logp[mb]).exp()
                adv = b_adv[mb]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - config.clip_coef, 1 + config.clip_coef)).mean()
                value_loss = 0.5 * ((agent.value(b_obs[mb]).squeeze(-1) - b_ret[mb]) ** 2).mean()
                entropy = dist.entropy().sum(-1).mean()
                loss = policy_loss - config.ent_coef * entropy + config.vf_coef * value_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
                optimizer.step()
                update_samples += len(mb)

        # --- solve check every eval_interval updates, the first included (None: no check this update) ----
        score = solved = None
        if clock.step % task.info.eval_interval == 0:
            score, solved, _, weights = evaluate_policy()
        if clock.record(score, bool(solved)):
            best_weights = weights
        if clock.should_stop():
            break

    score, solved, metrics = task.evaluate(scorer.single(best_weights))
    metrics = {**metrics, "updates": update, "update_samples": update_samples, "final_log_std": agent.log_std.detach().tolist()}
    return clock.finish(best_weights, score, solved, metrics, extra_parameters=agent.extra_parameters())
