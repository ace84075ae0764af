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

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from arena.contract import Budget, ProgressCallback, RunClock, RunResult
from arena.models.architecture import INIT_SCHEMES, Architecture
from arena.validation import Model, is_complete

NAME = "ppo"


class PPOSettings(Model):
    """Proximal policy optimisation with clipping and GAE (the gradient method on control tasks)."""

    learning_rate: float = Field(3e-3, ge=1e-6, le=1.0, description="Adam step size")
    num_envs: int = Field(64, ge=1, le=4096, description="episodes stepped together")
    num_steps: int = Field(128, ge=1, le=10_000, description="steps per environment per rollout")
    gamma: float = Field(0.99, ge=0.0, le=1.0, description="discount")
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0, description="GAE lambda")
    update_epochs: int = Field(4, ge=1, le=100, description="passes over each rollout")
    num_minibatches: int = Field(4, ge=1, le=1024, description="minibatches per pass")
    clip_coef: float = Field(0.2, ge=0.0, le=10.0, description="PPO clip range")
    ent_coef: float = Field(0.0, ge=0.0, le=10.0, description="entropy bonus")
    vf_coef: float = Field(0.5, ge=0.0, le=100.0, description="value loss weight")
    max_grad_norm: float = Field(0.5, ge=1e-6, le=1000.0, description="gradient clipping")
    init_log_std: float = Field(-0.5, ge=-5.0, le=2.0, description="initial log standard deviation of the Gaussian action head")
    value_hidden: int = Field(64, ge=1, le=1024, description="hidden units of the value network (two layers)")
    init: Literal[INIT_SCHEMES] = Field("default", description="initial policy weights, the same schemes as the other methods")
    init_scale: float = Field(1.0, ge=1e-6, le=100.0, description="scale of the normal or uniform initialisation")

    @field_validator("num_minibatches")
    @classmethod
    def _minibatches_of_two(cls, value: int, info: ValidationInfo) -> int:
        # Advantages are normalised per minibatch: a one-sample minibatch has no standard deviation (NaN).
        if not is_complete(info):  # the task's defaults are not merged in yet (see arena.validation.check)
            return value
        samples = info.data.get("num_envs", 0) * info.data.get("num_steps", 0)
        if samples and samples < 2 * value:
            raise ValueError(f"num_envs x num_steps ({samples}) must give each of the {value} minibatches at least 2 samples")
        return value


Settings = PPOSettings


def make_agent(architecture: Architecture, settings: PPOSettings):
    """The shared architecture as the policy (observation -> action mean), a learned state-independent
    log-std, and a separate value network. The log-std and value net are extra parameters."""
    import torch
    from torch import nn

    from arena.models.network import build_module, initial_vectors, vector_to_module

    agent = nn.Module()
    agent.policy = build_module(architecture)
    vector_to_module(initial_vectors(architecture, 1, settings.init, settings.init_scale)[0], agent.policy)
    agent.log_std = nn.Parameter(torch.full((architecture.output_size,), float(settings.init_log_std)))
    hidden = settings.value_hidden
    agent.value = nn.Sequential(
        nn.Linear(architecture.input_size, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
    )
    return agent


def train(
    task,
    architecture: Architecture,
    settings: PPOSettings,
    budget: Budget,
    seed: int,
    progress: ProgressCallback | None = None,
) -> RunResult:
    import numpy as np
    import torch
    from torch import nn

    from arena.models.network import PopulationForward, module_to_vector

    torch.manual_seed(seed)
    agent = make_agent(architecture, settings)
    optimizer = torch.optim.Adam(agent.parameters(), lr=settings.learning_rate, eps=1e-5)
    env = task.batch_env(settings.num_envs)  # reset(seed) -> obs; step(actions) -> obs, reward, done, info
    clock = RunClock(budget, task.info.higher_is_better, progress)
    scorer = PopulationForward(architecture)

    def distribution(agent, obs):
        return torch.distributions.Normal(agent.policy(obs), agent.log_std.exp())

    def evaluate_policy():
        weights = module_to_vector(agent.policy).numpy()
        return (*task.evaluate(scorer.single(weights)), weights)

    n_envs, n_steps = settings.num_envs, settings.num_steps
    batch_size = n_envs * n_steps
    minibatch_size = max(1, batch_size // settings.num_minibatches)
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
                dist = distribution(agent, next_obs)
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
                delta = rew_buf[t] + settings.gamma * following * not_done - val_buf[t]
                last_gae = delta + settings.gamma * settings.gae_lambda * not_done * last_gae
                advantages[t] = last_gae
            returns = advantages + val_buf

        # --- clipped-surrogate updates -----------------------------------------------------------------
        b_obs = obs_buf.reshape(batch_size, -1)
        b_act = act_buf.reshape(batch_size, -1)
        b_logp, b_adv, b_ret = logp_buf.reshape(-1), advantages.reshape(-1), returns.reshape(-1)
        for _ in range(settings.update_epochs):
            order = torch.randperm(batch_size)
            for start in range(0, batch_size, minibatch_size):
                mb = order[start : start + minibatch_size]
                dist = distribution(agent, b_obs[mb])
                ratio = (dist.log_prob(b_act[mb]).sum(-1) - b_logp[mb]).exp()
                adv = b_adv[mb]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - settings.clip_coef, 1 + settings.clip_coef)).mean()
                value_loss = 0.5 * ((agent.value(b_obs[mb]).squeeze(-1) - b_ret[mb]) ** 2).mean()
                entropy = dist.entropy().sum(-1).mean()
                loss = policy_loss - settings.ent_coef * entropy + settings.vf_coef * value_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), settings.max_grad_norm)
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
    return clock.finish(best_weights, score, solved, metrics, extra_parameters=agent.log_std.numel() + sum(p.numel() for p in agent.value.parameters()))
