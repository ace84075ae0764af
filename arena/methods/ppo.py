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
the evaluation episodes are not charged either, for either method. `metrics["compute"]` reports the
compute beside the experience: policy and value forward passes (rollout and update), backward passes
(update samples x epochs, each through policy and value net) and their multiply-adds (a backward pass
counted as twice its forward), plus the solve checks' forwards.

Episode ends (the env's `info`): a crash is a termination (no value after it); a stall, the time limit
or a cut at a rollout boundary (a generalisation task re-draws its tracks there) is a truncation: the
value of the episode's final observation is bootstrapped (`compute_gae`), as Stable-Baselines3 does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from arena.contract import Budget, ProgressCallback, RunResult
from arena.methods.loop import RunClock, check_every
from arena.models.architecture import INIT_SCHEMES, Architecture, dense_multiply_adds
from arena.validation import Model, is_complete

NAME = "ppo"
LABEL = "PPO"
LIBRARIES = ("torch", "gymnasium")
WARM_IMPORTS = ("torch._dynamo",)


def memory_floats(architecture, settings) -> tuple[int, str | None, str]:
    """The floats a run holds at once, for the cost caps: `num_envs` environments stepped at once and
    the rollout (num_envs x num_steps x (inputs + outputs + 4))."""
    n = architecture.num_parameters
    rollout = settings.num_envs * settings.num_steps * (architecture.input_size + architecture.output_size + 4)
    words = f"{n:,} parameters x num_envs {settings.num_envs} + a rollout of {settings.num_envs} x {settings.num_steps} steps"
    return n * settings.num_envs + rollout, "num_envs", words


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


def compute_gae(rewards, values, terminated, truncated, final_values, next_value, gamma: float, gae_lambda: float):
    """Generalised advantage estimates and returns for a (T, N) rollout, with bootstrapping on truncation.

    Step t's action earned `rewards[t]`; `terminated[t]`/`truncated[t]` say the episode ended on that
    step (a true end, or a cut); `final_values[t]` is the value of the episode's last observation where
    truncated. `next_value` (N,) is the value of the observation after the rollout's last step.
    A terminated step's target is its reward alone; a truncated one's is reward + gamma V(final obs);
    the advantage recursion never crosses an episode end. Returns (advantages, returns).
    """
    import torch

    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        ended = torch.maximum(terminated[t], truncated[t])
        following = next_value if t == steps - 1 else values[t + 1]
        bootstrap = torch.where(truncated[t] > 0, final_values[t], following * (1.0 - ended))
        delta = rewards[t] + gamma * bootstrap - values[t]
        last_gae = delta + gamma * gae_lambda * (1.0 - ended) * last_gae
        advantages[t] = last_gae
    return advantages, advantages + values


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
    # reset(seed) -> obs; step(actions) -> obs, reward, done, info. The rollout length lets a task with a
    # stream of tracks re-draw them between rollouts (the task decides; PPO knows nothing of tracks).
    try:
        env = task.batch_env(settings.num_envs, rollout_steps=settings.num_steps)
    except TypeError:  # a task whose batch_env takes only the number of envs
        env = task.batch_env(settings.num_envs)
    if hasattr(task, "reset_compute"):
        task.reset_compute()
    clock = RunClock(budget, task.info.higher_is_better, progress, check_every(task))
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
    term_buf = torch.zeros(n_steps, n_envs)
    trunc_buf = torch.zeros(n_steps, n_envs)
    final_val_buf = torch.zeros(n_steps, n_envs)
    val_buf = torch.zeros(n_steps, n_envs)

    next_obs = torch.from_numpy(env.reset(seed=seed))
    best_weights = module_to_vector(agent.policy).numpy()
    update_samples = 0
    bootstrap_forwards = 0
    update = 0
    while True:
        update += 1
        # --- rollout: n_steps x n_envs agent-steps, each one policy forward (the budget unit) -------------
        for step in range(n_steps):
            obs_buf[step] = next_obs
            with torch.no_grad():
                dist = distribution(agent, next_obs)
                action = dist.sample()
                logp_buf[step] = dist.log_prob(action).sum(-1)
                val_buf[step] = agent.value(next_obs).squeeze(-1)
            act_buf[step] = action
            # The simulator clips actions to [-1, 1]; the log-probability is of the unclipped sample.
            obs, reward, done, info = env.step(action.numpy())
            rew_buf[step] = torch.from_numpy(reward.astype(np.float32))
            terminated = np.asarray(info.get("terminated", done), dtype=bool)
            truncated = np.asarray(info.get("truncated", np.zeros_like(done)), dtype=bool) & ~terminated
            term_buf[step] = torch.from_numpy(terminated.astype(np.float32))
            trunc_buf[step] = torch.from_numpy(truncated.astype(np.float32))
            final_val_buf[step] = 0.0
            if truncated.any():  # bootstrap: the value of each cut episode's last observation
                final = torch.from_numpy(np.asarray(info["final_obs"], dtype=np.float32)[truncated])
                with torch.no_grad():
                    final_val_buf[step, torch.from_numpy(truncated)] = agent.value(final).squeeze(-1)
                bootstrap_forwards += len(final)
            next_obs = torch.from_numpy(obs)
        clock.evaluations += batch_size

        # --- generalised advantage estimation: crashes end the return, truncations are bootstrapped -----
        with torch.no_grad():
            next_value = agent.value(next_obs).squeeze(-1)
            advantages, returns = compute_gae(rew_buf, val_buf, term_buf, trunc_buf, final_val_buf, next_value, settings.gamma, settings.gae_lambda)

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

        # --- solve check at the task's cadence in agent-steps, the first included (None: none this update)
        score = solved = None
        if clock.due():
            score, solved, _, weights = evaluate_policy()
        if clock.record(score, bool(solved)):
            best_weights = weights
        if clock.should_stop():
            break

    score, solved, metrics = task.evaluate(scorer.single(best_weights))
    # Compute beside experience. Rollouts: a policy and a value forward per agent-step (+ value forwards
    # of the truncated episodes' final observations and of each rollout's next observation). Updates:
    # every sample of every epoch is a forward and a backward pass of both nets; a backward pass costs
    # about twice its forward in multiply-adds.
    policy_macs = architecture.multiply_adds
    value_macs = dense_multiply_adds((architecture.input_size, settings.value_hidden, settings.value_hidden, 1))
    rollout_steps = update * batch_size
    policy_forwards = rollout_steps + update_samples
    value_forwards = rollout_steps + update_samples + bootstrap_forwards + update * n_envs
    checks = metrics.get("compute", {})
    compute = {
        "policy_forwards": policy_forwards,
        "value_forwards": value_forwards,
        "backward_passes": update_samples,
        "multiply_adds": policy_forwards * policy_macs + value_forwards * value_macs + 2 * update_samples * (policy_macs + value_macs),
        "agent_steps": rollout_steps,
        "check_forwards": checks.get("check_forwards", 0),
        "check_multiply_adds": checks.get("check_forwards", 0) * policy_macs,
        "multiply_adds_per_forward": policy_macs,
        "value_multiply_adds_per_forward": value_macs,
    }
    metrics = {**metrics, "updates": update, "update_samples": update_samples, "final_log_std": agent.log_std.detach().tolist(), "compute": compute}
    return clock.finish(best_weights, score, solved, metrics, extra_parameters=agent.log_std.numel() + sum(p.numel() for p in agent.value.parameters()))
