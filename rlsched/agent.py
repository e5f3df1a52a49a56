"""PPO training of the learning-rate controller (stable-baselines3; RecurrentPPO from sb3-contrib).

Checkpoints are written at rollout boundaries, after the PPO update of that rollout, every
`checkpoint_every` timesteps (rounded up to whole rollouts); a restarted run with the same `out_dir`
resumes from the newest one, so an interruption loses at most one checkpoint interval.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import KVWriter, Logger, make_output_format
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

from envs.lr_control import EnvConfig, LRControlEnv
from envs.seed_pool import SeedPool
from rlsched.artifact import ALGORITHMS, algorithm_class, save_artifact
from rlsched.harness import ensure_writable
from rlsched.seeds import seed_block
from rlsched.selection import CheckpointSelection
from rlsched.tracking import Tracker

POLICIES = {"ppo": ("MlpPolicy",), "recurrent_ppo": ("MlpLstmPolicy",)}
VEC_ENVS = ("dummy", "subproc")
CKPT_PREFIX = "step_"


def validate_agent_config(agent: Mapping[str, Any]) -> None:
    algo = agent.get("algo")
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown agent algo {algo!r}; allowed: {list(ALGORITHMS)}")
    if agent.get("policy") not in POLICIES[algo]:
        raise ValueError(f"unknown policy {agent.get('policy')!r} for {algo}; allowed: {list(POLICIES[algo])}")
    if agent.get("vec_env", "dummy") not in VEC_ENVS:
        raise ValueError(f"unknown vec_env {agent.get('vec_env')!r}; allowed: {list(VEC_ENVS)}")
    for key in ("n_envs", "total_timesteps", "checkpoint_every", "train_seed_pool", "eval_episodes"):
        if int(agent.get(key, 1)) < 1:
            raise ValueError(f"agent.{key} must be >= 1, got {agent.get(key)}")
    ppo = agent.get("ppo", {})
    rollout = int(ppo.get("n_steps", 2048)) * int(agent.get("n_envs", 1))
    if int(ppo.get("batch_size", 64)) > rollout:
        raise ValueError(f"agent.ppo.batch_size={ppo.get('batch_size')} exceeds n_steps*n_envs={rollout}")


def training_seeds(agent: Mapping[str, Any]) -> list[int]:
    """PPO's training trainees: a fixed pool from the training seed set (shared by every PPO seed)."""
    return seed_block("training", int(agent.get("train_seeds_start", 0)), int(agent.get("train_seed_pool", 128)))


def selection_seeds(agent: Mapping[str, Any]) -> list[int]:
    """The fixed trainees on which every checkpoint is scored (never used for training or evaluation)."""
    return seed_block("selection", int(agent.get("eval_seeds_start", 0)), int(agent.get("eval_episodes", 16)))


def make_vec_env(
    env_kwargs: Mapping[str, Any], n_envs: int, vec_env: str, seed: int, episode_seeds: list[int]
) -> VecEnv:
    """`n_envs` envs whose episodes draw trainees from `episode_seeds`; `seed` only shuffles the draws."""
    kwargs = dict(env_kwargs)
    if vec_env == "subproc" and kwargs.get("torch_threads") is None:
        # One process per env: split the cores instead of letting each grab all of them.
        kwargs["torch_threads"] = max(1, (os.cpu_count() or 1) // n_envs)

    def factory(rank: int):
        def _make():
            env = Monitor(SeedPool(LRControlEnv(**kwargs), episode_seeds, shuffle_seed=seed + rank))
            env.reset(seed=seed + rank)
            return env

        return _make

    fns = [factory(i) for i in range(n_envs)]
    venv = SubprocVecEnv(fns, start_method="forkserver") if vec_env == "subproc" else DummyVecEnv(fns)
    venv.seed(seed)
    return venv


class WandbWriter(KVWriter):
    """Forwards SB3's logger (PPO losses, rollout stats) to the tracker as `controller/*`."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker

    def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
        out = {}
        for k, v in key_values.items():
            if isinstance(v, int | float | np.floating | np.integer):
                group, _, rest = k.partition("/")
                out[f"controller/{rest}" if group == "train" else f"controller/{group}/{rest}"] = float(v)
        self.tracker.log(out, step=step)

    def close(self) -> None:
        pass


class TraineeMetrics(BaseCallback):
    """Per-step trainee curves of env 0 and end-of-episode summaries of every env, as `trainee/*`."""

    def __init__(self, tracker: Tracker):
        super().__init__()
        self.tracker = tracker
        self.episodes = 0

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        first = infos[0]
        metrics = {f"trainee/{k}": first[k] for k in ("lr", "train_loss", "val_loss", "val_accuracy") if k in first}
        for info, done in zip(infos, dones, strict=True):
            if done and "episode" in info:
                self.episodes += 1
                metrics |= {
                    "trainee/episode_return": info["episode"]["r"],
                    "trainee/episodes": self.episodes,
                    "trainee/final_lr": info["lr"],
                    "trainee/diverged": float(info.get("diverged", False)),
                }
                if "final_val_loss" in info:
                    metrics["trainee/final_val_loss"] = info["final_val_loss"]
        self.tracker.log(metrics, step=self.num_timesteps)
        return True


class RolloutCheckpoint(BaseCallback):
    """Saves model + VecNormalize at the start of a rollout (i.e. after the previous PPO update)."""

    def __init__(self, ckpt_dir: Path, every: int, keep: int = 2):
        super().__init__()
        self.ckpt_dir, self.every, self.keep = ckpt_dir, every, keep
        self.last = 0

    def _init_callback(self) -> None:
        self.last = self.boundary = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        self.boundary = self.model.num_timesteps  # the policy is exactly this one until the next update
        if self.model.num_timesteps - self.last >= self.every:
            save_checkpoint(self.model, self.ckpt_dir, self.keep)
            self.last = self.model.num_timesteps

    def _on_step(self) -> bool:
        return True


def save_checkpoint(model, ckpt_dir: Path, keep: int = 2) -> Path:
    # Write into a temporary folder and rename, so a crash mid-write never leaves a half checkpoint.
    final = ckpt_dir / f"{CKPT_PREFIX}{model.num_timesteps:012d}"
    tmp = ckpt_dir / f".tmp_{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.save(str(tmp / "vecnormalize.pkl"))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(ckpt_dir.glob(f"{CKPT_PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_timesteps(ckpt: Path) -> int:
    return int(ckpt.name[len(CKPT_PREFIX) :])


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    found = sorted(p for p in ckpt_dir.glob(f"{CKPT_PREFIX}*") if (p / "model.zip").is_file())
    return found[-1] if found else None


def train_controller(
    env_kwargs: Mapping[str, Any],
    agent: Mapping[str, Any],
    out_dir: str | Path,
    *,
    seed: int = 0,
    tracker: Tracker | None = None,
    eval_env_kwargs: Mapping[str, Any] | None = None,
    extra_callbacks: list[BaseCallback] | None = None,
    progress: bool = False,
) -> Path:
    """Train (or resume) a controller; returns the artifact folder `<out_dir>/controller`."""
    validate_agent_config(agent)
    env_cfg = EnvConfig.from_kwargs(**env_kwargs)  # fail on a bad env config before any process starts
    out = ensure_writable(out_dir)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    tracker = tracker or Tracker(backend="none")
    algo, n_envs = agent["algo"], int(agent["n_envs"])
    ppo_kwargs = dict(agent.get("ppo", {}))
    rollout = int(ppo_kwargs.get("n_steps", 2048)) * n_envs
    every = -(-int(agent["checkpoint_every"]) // rollout) * rollout  # whole rollouts
    total = int(agent["total_timesteps"])
    norm = dict(agent.get("normalize", {}))

    resume_from = latest_checkpoint(ckpt_dir) if agent.get("resume", True) else None
    artifact_dir = out / "controller"
    if (
        resume_from is not None
        and checkpoint_timesteps(resume_from) >= total
        and (artifact_dir / "meta.json").is_file()
    ):
        # A finished run: re-saving the artifact would change its bytes, and with them the identity under
        # which the harness recognises the benchmark runs it already has.
        print(f"training already finished ({checkpoint_timesteps(resume_from)} timesteps); using {artifact_dir}")
        return artifact_dir
    venv = make_vec_env(env_kwargs, n_envs, agent.get("vec_env", "dummy"), seed, training_seeds(agent))
    cls = algorithm_class(algo)
    if resume_from is not None:
        venv = VecNormalize.load(str(resume_from / "vecnormalize.pkl"), venv)
        venv.training = True
        model = cls.load(resume_from / "model.zip", env=venv, device=agent.get("device", "cpu"))
        print(f"resuming from {resume_from} at {model.num_timesteps} timesteps")
    else:
        venv = VecNormalize(
            venv,
            norm_obs=norm.get("obs", True),
            norm_reward=norm.get("reward", True),
            clip_obs=norm.get("clip_obs", 10.0),
            gamma=float(ppo_kwargs.get("gamma", 0.99)),
        )
        model = cls(agent["policy"], venv, seed=seed, device=agent.get("device", "cpu"), verbose=0, **ppo_kwargs)
    sb3_logger = Logger(str(out / "sb3_log"), [make_output_format("csv", str(out / "sb3_log")), WandbWriter(tracker)])
    model.set_logger(sb3_logger)

    checkpointer = RolloutCheckpoint(ckpt_dir, every)
    callbacks: list[BaseCallback] = [checkpointer, TraineeMetrics(tracker)]
    if int(agent.get("eval_every", 0)) > 0:
        eval_every = -(-int(agent["eval_every"]) // rollout) * rollout  # whole rollouts: each policy scored once
        ekw = dict(eval_env_kwargs or env_kwargs)
        callbacks.append(CheckpointSelection(ekw, selection_seeds(agent), eval_every, out, tracker=tracker))
    callbacks += extra_callbacks or []

    start_steps, t0 = model.num_timesteps, time.perf_counter()
    remaining = max(0, total - model.num_timesteps)
    try:
        if remaining > 0:
            model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=False, progress_bar=progress)
    except BaseException:
        # Keep what was learned: the next run with this out_dir resumes from here. Mid-rollout the policy
        # is still the one of the rollout's start, so the checkpoint is stamped with that step count and a
        # resumed run ends on the same total as an uninterrupted one.
        if checkpointer.boundary > start_steps:
            model.num_timesteps = checkpointer.boundary
            save_checkpoint(model, ckpt_dir)
        raise
    finally:
        venv.close()
    seconds = time.perf_counter() - t0
    steps_this_run = model.num_timesteps - start_steps
    save_checkpoint(model, ckpt_dir)

    best = out / "best"
    use_best = (
        agent.get("artifact_from", "best") == "best"
        and (best / "best_model.zip").is_file()
        and (best / "vecnormalize.pkl").is_file()
    )
    if use_best:
        model, stats = cls.load(best / "best_model.zip", device="cpu"), best / "vecnormalize.pkl"
    else:
        stats = venv
    images_per_step = env_cfg.batch_size * env_cfg.steps_per_action
    rate = steps_this_run / seconds if steps_this_run and seconds > 0 else None
    throughput = {
        "timesteps_this_run": steps_this_run,
        "seconds_this_run": seconds,
        "env_steps_per_s": rate,
        "trainee_images_per_s": rate * images_per_step if rate else None,
    }
    artifact = save_artifact(
        artifact_dir,
        model=model,
        vecnormalize=stats,
        env_config=env_cfg.to_dict(),
        algo=algo,
        extra_meta={
            "artifact_from": "best" if use_best else "final",
            "total_timesteps": total,
            "seed": seed,
            **throughput,
        },
    )
    (out / "train_summary.json").write_text(json.dumps(throughput, indent=2))
    tracker.summary({f"controller/{k}": v for k, v in throughput.items() if v is not None})
    return artifact
