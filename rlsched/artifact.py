"""A trained controller is one folder: the SB3 model, its VecNormalize statistics and the env config.

<dir>/model.zip         PPO.save / RecurrentPPO.save
<dir>/vecnormalize.pkl  VecNormalize.save (observation statistics used at training time)
<dir>/env_config.json   the EnvConfig the controller was trained with, less where it ran (PLACE_KEYS)
<dir>/meta.json         algorithm, observation layout, action type, timesteps, versions
"""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL, VECNORM, ENV_CONFIG, META = "model.zip", "vecnormalize.pkl", "env_config.json", "meta.json"
ALGORITHMS = ("ppo", "recurrent_ppo")
# Env options that say where training ran, not what the env is. An artifact is evaluated on other machines,
# where the training machine's data path (or device) would override the local setting, so they are not kept.
PLACE_KEYS = ("data_dir", "device", "torch_threads", "reference_cache_dir")


def portable_env_config(env_config: dict) -> dict:
    """The env config without PLACE_KEYS: what the env is, not where its data lay or which device ran it."""
    return {k: v for k, v in env_config.items() if k not in PLACE_KEYS}


class ArtifactError(ValueError):
    """A controller artifact is missing, corrupt, or does not fit the env it is asked to control."""


def algorithm_class(algo: str):
    if algo == "ppo":
        from stable_baselines3 import PPO

        return PPO
    if algo == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    raise ValueError(f"unknown agent algorithm {algo!r}; allowed: {list(ALGORITHMS)}")


def save_artifact(
    out_dir: str | Path, *, model, vecnormalize, env_config: dict, algo: str, extra_meta: dict | None = None
) -> Path:
    import gymnasium
    import stable_baselines3
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL)
    if isinstance(vecnormalize, str | Path):  # statistics already on disk (the best model's)
        shutil.copyfile(vecnormalize, out / VECNORM)
    else:
        vecnormalize.save(str(out / VECNORM))
    (out / ENV_CONFIG).write_text(json.dumps(portable_env_config(env_config), indent=2))
    meta = {
        "algo": algo,
        "feature_names": list(env_config["features"]),
        "action": env_config["action"],
        "obs_shape": list(model.observation_space.shape),
        "num_timesteps": int(model.num_timesteps),
        "versions": {
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
            "gymnasium": gymnasium.__version__,
        },
        **(extra_meta or {}),
    }
    (out / META).write_text(json.dumps(meta, indent=2))
    return out


@dataclass
class Artifact:
    path: Path
    model: Any
    vecnormalize: Any  # stable_baselines3 VecNormalize, without a venv: used for normalize_obs only
    env_config: dict
    meta: dict

    def predict(self, obs, state=None, episode_start: bool = False, deterministic: bool = True) -> tuple[Any, Any]:
        """(action, recurrent state) for one raw observation: normalized with the training-time VecNormalize
        statistics, then answered by the policy. `state`/`episode_start` carry a recurrent policy's LSTM state
        (PPO ignores them)."""
        norm = self.vecnormalize.normalize_obs(np.asarray(obs, dtype=np.float32)[None])
        action, state = self.model.predict(
            norm, state=state, episode_start=np.array([episode_start]), deterministic=deterministic
        )
        return action[0], state

    def check_compatible(self, env) -> None:
        """Refuse an env whose observation layout or action type differs from the training env's."""
        names = list(env.feature_names)
        if names != self.meta["feature_names"]:
            raise ArtifactError(
                f"controller {self.path} was trained on observation features {self.meta['feature_names']} "
                f"but the target env has {names}; set env.features to the artifact's list"
            )
        if env.cfg.action != self.meta["action"]:
            raise ArtifactError(
                f"controller {self.path} outputs action type {self.meta['action']!r} but the target env uses "
                f"{env.cfg.action!r}; set env.action={self.meta['action']}"
            )
        # These change what the controller's inputs or outputs mean; the LR range and the task may differ.
        target = env.cfg.to_dict()
        for key in ("obs_transform", "scale_range", "scale_per", "discrete_multipliers"):
            if key in self.env_config and self.env_config[key] != target[key]:
                raise ArtifactError(
                    f"controller {self.path} was trained with {key}={self.env_config[key]!r}, the target env has "
                    f"{target[key]!r}; set env.{key} to the artifact's value"
                )


def load_artifact(path: str | Path, device: str = "cpu") -> Artifact:
    p = Path(path)
    if not p.is_dir():
        raise ArtifactError(f"controller artifact {p} is not a folder; pass the folder written by training")
    missing = [f for f in (MODEL, VECNORM, ENV_CONFIG, META) if not (p / f).is_file()]
    if missing:
        raise ArtifactError(f"controller artifact {p} lacks {missing}; was training interrupted before it finished?")
    try:
        meta = json.loads((p / META).read_text())
        # Artifacts written before PLACE_KEYS were dropped still carry them: ignore them here too.
        env_config = portable_env_config(json.loads((p / ENV_CONFIG).read_text()))
        # Artifacts written before `scale_per` existed applied the multiplier once per env step.
        if env_config.get("action") == "scale":
            env_config.setdefault("scale_per", "env_step")
    except json.JSONDecodeError as err:
        raise ArtifactError(f"controller artifact {p} has a corrupt JSON file: {err}") from err
    for key in ("algo", "feature_names", "action", "obs_shape"):
        if key not in meta:
            raise ArtifactError(f"controller artifact {p}: {META} lacks {key!r}")
    if meta["algo"] not in ALGORITHMS:
        raise ArtifactError(f"controller artifact {p}: unknown algo {meta['algo']!r}; allowed: {list(ALGORITHMS)}")
    if not zipfile.is_zipfile(p / MODEL):
        raise ArtifactError(f"controller artifact {p}: {MODEL} is not a valid SB3 model file (corrupt or truncated)")
    try:
        model = algorithm_class(meta["algo"]).load(p / MODEL, device=device)
    except Exception as err:  # SB3 raises a zoo of errors on bad files; all mean the same to the user
        raise ArtifactError(f"controller artifact {p}: could not load {MODEL}: {err}") from err
    try:
        with open(p / VECNORM, "rb") as f:
            vecnorm = pickle.load(f)
    except Exception as err:
        raise ArtifactError(f"controller artifact {p}: could not load {VECNORM}: {err}") from err
    if (
        list(model.observation_space.shape) != list(meta["obs_shape"])
        or len(meta["feature_names"]) != meta["obs_shape"][0]
    ):
        raise ArtifactError(
            f"controller artifact {p}: model observation shape {list(model.observation_space.shape)} does not match "
            f"its recorded layout {meta['feature_names']}"
        )
    vecnorm.training = False
    vecnorm.norm_reward = False
    return Artifact(p, model, vecnorm, env_config, meta)
