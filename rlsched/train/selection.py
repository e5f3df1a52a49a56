"""Checkpoint selection: the policy after each PPO update is scored on fixed *selection* trainees.

Every evaluation runs the same episodes (the selection seeds, disjoint from training, tuning and evaluation
seeds: rlsched.env.seeds) with the test set switched off, and scores the policy by its mean final *validation*
loss, the task's own objective, whatever reward trained it, so that reward variants are selected alike.
Pairing against a reference schedule on the same seeds would subtract the same constant from every
checkpoint's score, so it cannot change which checkpoint wins; the raw mean is kept.

Results are appended to `<out>/eval/selection.csv` (one row per evaluation, one column per seed); a resumed
run reads it back, so the best score so far survives an interruption and history is never rewritten.

`<out>/best/` (best_model.zip, vecnormalize.pkl, and score.json: the selection row of that policy) is replaced
as a whole folder, written beside it and renamed into place, so a kill never leaves a model with another
policy's normalization statistics, and a resumed run knows exactly which policy best/ holds.
"""

from __future__ import annotations

import io
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback

from rlsched.control.rollout import Episode, rollout
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.env.vector import LRControlVecEnv
from rlsched.io import repair_partial_line
from rlsched.tracking import Tracker

SELECTION_CSV = "selection.csv"
BEST_SCORE = "score.json"


class PolicyActor:
    """A deterministic SB3 policy (recurrent or not) as a `rollout` actor: one observation at a time on the single
    env, one batched forward for all rows on the vector env. `obs_normalizer`: the VecNormalize of its training."""

    sets_lr = False

    def __init__(self, model, obs_normalizer) -> None:
        self.model, self.normalize = model, obs_normalizer
        self.recurrent = hasattr(model.policy, "lstm_actor")

    def reset(self, env, obs, info) -> None:
        self.state, self.start = None, np.ones((1,), dtype=bool)

    def act(self, obs, info):
        norm = self.normalize(np.asarray(obs, dtype=np.float32)[None])
        if self.recurrent:
            action, self.state = self.model.predict(
                norm, state=self.state, episode_start=self.start, deterministic=True
            )
        else:
            action, _ = self.model.predict(norm, deterministic=True)
        self.start = np.zeros((1,), dtype=bool)
        return action[0]

    def reset_rows(self, venv, obs, infos, kept: int) -> None:
        self.state, self.start = None, np.ones((venv.num_envs,), dtype=bool)

    def act_rows(self, obs, infos, done):
        action, self.state = self.model.predict(
            self.normalize(obs), state=self.state, episode_start=self.start, deterministic=True
        )
        self.start = np.zeros_like(self.start)
        return action


def _final_losses(episodes: list[Episode]) -> list[float]:
    """Each episode's final full-validation loss, inf for a non-finite result."""
    out = []
    for ep in episodes:
        v = float(ep.last.get("final_val_loss", float("nan")))
        out.append(v if math.isfinite(v) else float("inf"))
    return out


def policy_final_losses(model, obs_normalizer, env: LRControlEnv, seeds: Sequence[int]) -> list[float]:
    """Final full-validation loss of a deterministic policy on each seed (inf for a non-finite result)."""
    return _final_losses(rollout(env, PolicyActor(model, obs_normalizer), seeds))


def population_final_losses(model, obs_normalizer, venv: LRControlVecEnv, seeds: Sequence[int]) -> list[float]:
    """`policy_final_losses` with the seeds run as populations of `venv.num_envs` trainees in lockstep (the last
    group padded with repeats of its last seed, whose results are dropped)."""
    return _final_losses(rollout(venv, PolicyActor(model, obs_normalizer), seeds))


def read_selection_log(path: Path) -> pd.DataFrame:
    """selection.csv as a frame; a partial last line (a kill mid-append) is cut off the file first, so the
    next append starts on a line of its own."""
    complete = repair_partial_line(path, warn=False)
    return pd.read_csv(io.StringIO(complete)) if complete.strip() else pd.DataFrame(columns=["timesteps", "score"])


class CheckpointSelection(BaseCallback):
    """Scores the policy every `every` timesteps (after a PPO update) and at the end; keeps the best in `best/`."""

    def __init__(
        self,
        env_kwargs: Mapping[str, Any] | EnvConfig,
        seeds: Sequence[int],
        every: int,
        out_dir: Path,
        tracker: Tracker | None = None,
        batched: bool = False,
    ):
        """`batched`: run the selection trainees as one population (rlsched.env.vector) instead of one after another."""
        super().__init__()
        self.batched = batched
        base = env_kwargs.to_dict() if isinstance(env_kwargs, EnvConfig) else dict(env_kwargs)
        self.env_kwargs = {**base, "test_eval": False, "final_val_eval": True}
        self.seeds = [int(s) for s in seeds]
        self.every = int(every)
        self.best_dir = Path(out_dir) / "best"
        self.log_path = Path(out_dir) / "eval" / SELECTION_CSV
        self.tracker = tracker
        self.env: LRControlEnv | LRControlVecEnv | None = None
        self.best_score, self.last_eval = math.inf, -1

    def _init_callback(self) -> None:
        if self.batched:
            self.env = LRControlVecEnv(self.env_kwargs, len(self.seeds))
        else:
            self.env = LRControlEnv(**self.env_kwargs)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._restore()
        if self.last_eval < 0:
            self.last_eval = self.model.num_timesteps - self.every  # evaluate the starting policy too

    def _restore(self) -> None:
        """A resumed run: the history stays, and so do the best score so far and the policy in best/."""
        recover_best_dir(self.best_dir)
        prev = read_selection_log(self.log_path) if self.log_path.is_file() else pd.DataFrame()
        has_best = (self.best_dir / "best_model.zip").is_file()
        saved = json.loads((self.best_dir / BEST_SCORE).read_text()) if (self.best_dir / BEST_SCORE).is_file() else None
        if saved is not None and (prev.empty or int(saved["timesteps"]) not in set(prev["timesteps"].astype(int))):
            # Killed after best/ was replaced but before its row reached selection.csv: write the row now.
            self._append_row(saved)
            prev = read_selection_log(self.log_path)
        if prev.empty or not has_best:
            return
        self.best_score = float(saved["score"]) if saved is not None else float(prev["score"].min())
        self.last_eval = min(int(prev["timesteps"].max()), self.model.num_timesteps)
        print(f"[selection] resumed: best validation loss so far {self.best_score:.4f}")

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
        score_fn = population_final_losses if self.batched else policy_final_losses
        losses = score_fn(self.model, normalizer, self.env, self.seeds)
        score = float(np.mean(losses))
        t = int(self.model.num_timesteps)
        self.last_eval = t
        new_best = score < self.best_score
        row = {"timesteps": t, "score": score, "best": new_best} | {
            f"val_loss_seed{s}": v for s, v in zip(self.seeds, losses, strict=True)
        }
        if new_best:
            self.best_score = score
            self._save_best(vn, row)
        self._append_row(row)
        if self.tracker is not None:
            self.tracker.log(
                {"controller/selection_val_loss": score, "controller/selection_best": self.best_score}, step=t
            )
        self.logger.record("eval/selection_val_loss", score)
        return score

    def _append_row(self, row: Mapping[str, Any]) -> None:
        pd.DataFrame([dict(row)]).to_csv(self.log_path, mode="a", header=not self.log_path.is_file(), index=False)

    def _save_best(self, vn, row: Mapping[str, Any]) -> None:
        """Replace best/ as a whole: written into best.tmp/, score.json last, then renamed into place."""
        tmp, old = _sibling(self.best_dir, "tmp"), _sibling(self.best_dir, "old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.model.save(tmp / "best_model.zip")
        if vn is not None:
            vn.save(str(tmp / "vecnormalize.pkl"))
        (tmp / BEST_SCORE).write_text(json.dumps(dict(row), indent=2))  # last: marks best.tmp/ complete
        shutil.rmtree(old, ignore_errors=True)
        if self.best_dir.exists():
            self.best_dir.rename(old)
        tmp.rename(self.best_dir)
        shutil.rmtree(old, ignore_errors=True)


def _sibling(best_dir: Path, suffix: str) -> Path:
    return best_dir.with_name(f"{best_dir.name}.{suffix}")


def recover_best_dir(best_dir: Path) -> None:
    """After a kill between the two renames of `_save_best`, put the newest complete best folder back."""
    if best_dir.exists():
        return
    tmp, old = _sibling(best_dir, "tmp"), _sibling(best_dir, "old")
    if (tmp / BEST_SCORE).is_file():
        tmp.rename(best_dir)
    elif old.is_dir():
        old.rename(best_dir)
