"""Checkpoint selection: the policy after each PPO update is scored on fixed *selection* trainees.

Every evaluation runs the same episodes (the selection seeds, disjoint from training, tuning and evaluation
seeds: rlsched.seeds) with the test set switched off, and scores the policy by its mean final *validation*
loss, the task's own objective, whatever reward trained it, so that reward variants are selected alike.
Pairing against a reference schedule on the same seeds would subtract the same constant from every
checkpoint's score, so it cannot change which checkpoint wins; the raw mean is kept.

Results are appended to `<out>/eval/selection.csv` (one row per evaluation, one column per seed); a resumed
run reads it back, so the best score so far survives an interruption and history is never rewritten.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback

from envs.lr_control import LRControlEnv
from rlsched.tracking import Tracker

SELECTION_CSV = "selection.csv"


def policy_final_losses(model, obs_normalizer, env: LRControlEnv, seeds: Sequence[int]) -> list[float]:
    """Final full-validation loss of a deterministic policy on each seed (inf for a non-finite result)."""
    recurrent = hasattr(model.policy, "lstm_actor")
    out = []
    for s in seeds:
        obs, info = env.reset(seed=int(s))
        state, start, done = None, np.ones((1,), dtype=bool), False
        while not done:
            norm = obs_normalizer(np.asarray(obs, dtype=np.float32)[None])
            if recurrent:
                action, state = model.predict(norm, state=state, episode_start=start, deterministic=True)
            else:
                action, _ = model.predict(norm, deterministic=True)
            start = np.zeros((1,), dtype=bool)
            obs, _, terminated, truncated, info = env.step(action[0])
            done = terminated or truncated
        v = float(info.get("final_val_loss", float("nan")))
        out.append(v if math.isfinite(v) else float("inf"))
    return out


class CheckpointSelection(BaseCallback):
    """Scores the policy every `every` timesteps (after a PPO update) and at the end; keeps the best in `best/`."""

    def __init__(
        self,
        env_kwargs: Mapping[str, Any],
        seeds: Sequence[int],
        every: int,
        out_dir: Path,
        tracker: Tracker | None = None,
    ):
        super().__init__()
        self.env_kwargs = {**env_kwargs, "test_eval": False, "final_val_eval": True}
        self.seeds = [int(s) for s in seeds]
        self.every = int(every)
        self.best_dir = Path(out_dir) / "best"
        self.log_path = Path(out_dir) / "eval" / SELECTION_CSV
        self.tracker = tracker
        self.env: LRControlEnv | None = None
        self.best_score, self.last_eval = math.inf, -1

    def _init_callback(self) -> None:
        self.env = LRControlEnv(**self.env_kwargs)
        self.best_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.is_file():  # a resumed run: the history stays, and so does the best score so far
            prev = pd.read_csv(self.log_path)
            if len(prev) and (self.best_dir / "best_model.zip").is_file():
                self.best_score = float(prev["score"].min())
                self.last_eval = min(int(prev["timesteps"].max()), self.model.num_timesteps)
                print(f"[selection] resumed: best validation loss so far {self.best_score:.4f}")
        if self.last_eval < 0:
            self.last_eval = self.model.num_timesteps - self.every  # evaluate the starting policy too

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps - self.last_eval >= self.every:
            self.evaluate()

    def _on_training_end(self) -> None:
        if self.model.num_timesteps > self.last_eval:
            self.evaluate()

    def _on_step(self) -> bool:
        return True

    def evaluate(self) -> float:
        assert self.env is not None
        vn = self.model.get_vec_normalize_env()
        normalizer = vn.normalize_obs if vn is not None else (lambda x: x)
        losses = policy_final_losses(self.model, normalizer, self.env, self.seeds)
        score = float(np.mean(losses))
        t = int(self.model.num_timesteps)
        self.last_eval = t
        new_best = score < self.best_score
        if new_best:
            self.best_score = score
            self.model.save(self.best_dir / "best_model.zip")
            if vn is not None:
                vn.save(str(self.best_dir / "vecnormalize.pkl"))
        row = {"timesteps": t, "score": score, "best": new_best} | {
            f"val_loss_seed{s}": v for s, v in zip(self.seeds, losses, strict=True)
        }
        pd.DataFrame([row]).to_csv(self.log_path, mode="a", header=not self.log_path.is_file(), index=False)
        if self.tracker is not None:
            self.tracker.log(
                {"controller/selection_val_loss": score, "controller/selection_best": self.best_score}, step=t
            )
        self.logger.record("eval/selection_val_loss", score)
        return score
