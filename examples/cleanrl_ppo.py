"""PPO in one file, CleanRL style (ppo_continuous_action.py), on the batched LRControl-v1 as a Gymnasium vector env.

    python examples/cleanrl_ppo.py --num-envs 8 --total-timesteps 20000 \
        --env-kwargs '{"model": "mlp", "episode_steps": 30, "steps_per_action": 5}'

The env comes from `gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`: the N trainees train as
one batched model. Ported to Gymnasium 1.x, CleanRL's script must mind the vector env's autoreset mode
(https://farama.org/Vector-Autoreset-Mode): with next-step autoreset (Gymnasium's default, LRControl-v1's too) the
step after an episode's end only resets that env (its action ignored, reward 0), so that transition is masked out
of the update here; episode returns come from `RecordEpisodeStatistics`, which knows the mode (CleanRL's 0.29-era
`info["final_info"]` loop finds nothing under 1.x). As in CleanRL, a truncation ends the return without
bootstrapping (LRControl never truncates: its budget's end is terminal).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn
from torch.distributions.normal import Normal

import rlsched  # noqa: F401  (registers rlsched/LRControl-v1)


@dataclass
class Args:
    env_id: str = "rlsched/LRControl-v1"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    vectorization_mode: str = "vector_entry_point"
    seed: int = 1
    total_timesteps: int = 20_000
    learning_rate: float = 3e-4
    num_envs: int = 8
    num_steps: int = 64
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 10
    clip_coef: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    out: str | None = None  # a JSON summary (episode returns, steps) is written here

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return max(1, self.batch_size // self.num_minibatches)

    @property
    def num_iterations(self) -> int:
        return max(1, self.total_timesteps // self.batch_size)


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )  # fmt: skip
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, act_dim), std=0.01),
        )  # fmt: skip
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        mean = self.actor_mean(x)
        probs = Normal(mean, self.actor_logstd.expand_as(mean).exp())
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)


def make_envs(args: Args) -> gym.vector.VectorEnv:
    venv = gym.make_vec(
        args.env_id, num_envs=args.num_envs, vectorization_mode=args.vectorization_mode, **args.env_kwargs
    )
    if not isinstance(venv.single_action_space, gym.spaces.Box):
        raise ValueError(f"this PPO acts in a Box action space, got {venv.single_action_space}")
    # Observation features differ in scale by orders of magnitude (losses, weight variances, log LR).
    venv = gym.wrappers.vector.NormalizeObservation(venv)
    return gym.wrappers.vector.RecordEpisodeStatistics(venv)


def train(args: Args) -> dict[str, Any]:
    """Train; returns the finished episodes' returns and lengths and how many transitions were trained on."""
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    envs_ = make_envs(args)
    mode = envs_.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        raise ValueError(f"this script expects next-step autoreset (Gymnasium's default), got {mode}")
    obs_dim = int(np.prod(envs_.single_observation_space.shape))
    act_dim = int(np.prod(envs_.single_action_space.shape))
    low, high = envs_.single_action_space.low, envs_.single_action_space.high
    agent = Agent(obs_dim, act_dim)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    n, e = args.num_steps, args.num_envs
    obs = torch.zeros((n, e, obs_dim))
    actions = torch.zeros((n, e, act_dim))
    logprobs, rewards, dones, values = (torch.zeros((n, e)) for _ in range(4))
    valid = torch.ones((n, e))  # 0: an autoreset transition (no action took effect), never trained on

    returns_log: list[float] = []
    lengths_log: list[int] = []
    trained = 0
    global_step, start = 0, time.time()
    next_obs, _ = envs_.reset(seed=args.seed)
    next_obs = torch.as_tensor(next_obs, dtype=torch.float32)
    next_done = torch.zeros(e)
    prev_done = np.zeros(e, dtype=bool)

    for iteration in range(1, args.num_iterations + 1):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / args.num_iterations) * args.learning_rate
        for step in range(n):
            global_step += e
            obs[step], dones[step] = next_obs, next_done
            valid[step] = torch.as_tensor(~prev_done, dtype=torch.float32)
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
            values[step], actions[step], logprobs[step] = value.flatten(), action, logprob
            obs_np, reward, terminations, truncations, infos = envs_.step(np.clip(action.numpy(), low, high))
            prev_done = np.logical_or(terminations, truncations)
            rewards[step] = torch.as_tensor(np.asarray(reward), dtype=torch.float32)
            next_obs = torch.as_tensor(obs_np, dtype=torch.float32)
            next_done = torch.as_tensor(prev_done, dtype=torch.float32)
            if "episode" in infos:
                for i in np.nonzero(infos["_episode"])[0]:
                    returns_log.append(float(infos["episode"]["r"][i]))
                    lengths_log.append(int(infos["episode"]["l"][i]))
                    print(f"global_step={global_step}, episodic_return={returns_log[-1]:.4f}", flush=True)

        with torch.no_grad():  # GAE
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(n)):
                nextnonterminal = 1.0 - (next_done if t == n - 1 else dones[t + 1])
                nextvalues = next_value if t == n - 1 else values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
            returns = advantages + values

        b_obs, b_logprobs = obs.reshape((-1, obs_dim)), logprobs.reshape(-1)
        b_actions, b_advantages = actions.reshape((-1, act_dim)), advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_inds = np.nonzero(valid.reshape(-1).numpy())[0]  # the autoreset transitions left out
        trained += len(b_inds)
        for _epoch in range(args.update_epochs):
            np.random.shuffle(b_inds)
            for start_i in range(0, len(b_inds), args.minibatch_size):
                mb = b_inds[start_i : start_i + args.minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb], b_actions[mb])
                ratio = (newlogprob - b_logprobs[mb]).exp()
                mb_adv = b_advantages[mb]
                if len(mb) > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef))
                v_loss = 0.5 * ((newvalue.view(-1) - b_returns[mb]) ** 2).mean()
                loss = pg_loss.mean() - args.ent_coef * entropy.mean() + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
        print(f"iteration {iteration}/{args.num_iterations}: SPS {int(global_step / (time.time() - start))}")

    envs_.close()
    summary = {
        "args": asdict(args),
        "autoreset_mode": mode.value,
        "global_step": global_step,
        "trained_transitions": trained,
        "episode_returns": returns_log,
        "episode_lengths": lengths_log,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=2))
    return summary


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in Args.__dataclass_fields__.values():
        flag = "--" + f.name.replace("_", "-")
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if f.name == "env_kwargs":
            parser.add_argument(flag, type=json.loads, default=default, help="env options as JSON")
        elif isinstance(default, bool):
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=default)
        else:
            parser.add_argument(flag, type=type(default) if default is not None else str, default=default)
    return Args(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    train(parse_args())
