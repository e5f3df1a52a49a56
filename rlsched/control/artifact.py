"""A trained controller is one folder: the SB3 model, its VecNormalize statistics and the env config.

<dir>/model.zip          PPO.save / RecurrentPPO.save
<dir>/policy.json        the policy's class, keyword arguments and spaces, as plain JSON
<dir>/vecnormalize.json  the observation statistics used at training time, as plain JSON arrays
<dir>/vecnormalize.pkl   VecNormalize.save (for SB3 tools; rlsched never reads it unless trust=True)
<dir>/env_config.json    the EnvConfig the controller was trained with, less where it ran (PLACE_KEYS)
<dir>/meta.json          algorithm, observation layout, action type, timesteps, versions

Trust boundary: `load_artifact` executes no code from the folder. SB3's own loader unpickles entries of
model.zip's `data` (cloudpickle) and VecNormalize.load unpickles vecnormalize.pkl, and a pickle can run anything;
here the policy is rebuilt from policy.json and given the weights of model.zip's `policy.pth`, read by
`torch.load(weights_only=True)` (tensors only), and the statistics come from vecnormalize.json. Artifacts written
before policy.json existed load only with `trust=True` (SB3's loader and pickle: for folders you made yourself),
or after `python scripts/convert_artifact.py <dir>` (which loads them trusted once and writes the JSON files).
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlsched.env.config import PLACE_FIELDS
from rlsched.io import atomic_write_json

MODEL, VECNORM, ENV_CONFIG, META = "model.zip", "vecnormalize.pkl", "env_config.json", "meta.json"
POLICY_SPEC, VECNORM_JSON = "policy.json", "vecnormalize.json"
ALGORITHMS = ("ppo", "recurrent_ppo")
# Env options that say where training ran, not what the env is. An artifact is evaluated on other machines,
# where the training machine's data path (or device) would override the local setting, so they are not kept.
# (PLACE_FIELDS and the device; verify_checksums stays: it is the evaluator's choice to keep as trained.)
PLACE_KEYS = (*(k for k in PLACE_FIELDS if k != "verify_checksums"), "device")


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


def _space_to_json(space: Any) -> dict[str, Any]:
    import gymnasium

    if isinstance(space, gymnasium.spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    if isinstance(space, gymnasium.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise ArtifactError(f"cannot record a {type(space).__name__} space in {POLICY_SPEC}; only Box and Discrete")


def _space_from_json(spec: dict[str, Any]) -> Any:
    import gymnasium

    if spec.get("type") == "Box":
        dtype = np.dtype(spec["dtype"])
        low, high = np.array(spec["low"], dtype=dtype), np.array(spec["high"], dtype=dtype)
        return gymnasium.spaces.Box(low.reshape(spec["shape"]), high.reshape(spec["shape"]), dtype=dtype)
    if spec.get("type") == "Discrete":
        return gymnasium.spaces.Discrete(int(spec["n"]), start=int(spec.get("start", 0)))
    raise ArtifactError(f"unknown space {spec.get('type')!r} in {POLICY_SPEC}")


def policy_spec(model) -> dict[str, Any]:
    """What rebuilds `model`'s policy without unpickling: class, keyword arguments, spaces (plain JSON)."""
    kwargs = dict(model.policy_kwargs or {})
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ArtifactError(
            f"policy_kwargs {kwargs!r} hold values that are not plain JSON ({err}); an artifact records the policy "
            "as JSON so that it loads without unpickling: use names and numbers only"
        ) from err
    return {
        "policy_class": type(model.policy).__name__,
        "policy_kwargs": kwargs,
        "use_sde": bool(model.use_sde),
        "observation_space": _space_to_json(model.observation_space),
        "action_space": _space_to_json(model.action_space),
        "num_timesteps": int(model.num_timesteps),
    }


def vecnormalize_stats(vecnormalize) -> dict[str, Any]:
    """The observation statistics of a VecNormalize (what `ObsNormalizer` needs), as plain JSON."""
    rms = vecnormalize.obs_rms
    return {
        "norm_obs": bool(vecnormalize.norm_obs),
        "mean": np.asarray(rms.mean, dtype=np.float64).tolist(),
        "var": np.asarray(rms.var, dtype=np.float64).tolist(),
        "count": float(rms.count),
        "clip_obs": float(vecnormalize.clip_obs),
        "epsilon": float(vecnormalize.epsilon),
    }


def write_safe_files(out_dir: str | Path, model, vecnormalize) -> None:
    """policy.json and vecnormalize.json: what `load_artifact` reads instead of the pickled parts."""
    out = Path(out_dir)
    atomic_write_json(out / POLICY_SPEC, policy_spec(model))
    atomic_write_json(out / VECNORM_JSON, vecnormalize_stats(vecnormalize))


def save_artifact(
    out_dir: str | Path, *, model, vecnormalize, env_config: dict, algo: str, extra_meta: dict | None = None
) -> Path:
    import gymnasium
    import stable_baselines3
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL)
    if isinstance(vecnormalize, str | Path):  # statistics already on disk (the best model's, this run's own file)
        shutil.copyfile(vecnormalize, out / VECNORM)
        with open(vecnormalize, "rb") as f:
            vecnormalize = pickle.load(f)
    else:
        vecnormalize.save(str(out / VECNORM))
    write_safe_files(out, model, vecnormalize)
    atomic_write_json(out / ENV_CONFIG, portable_env_config(env_config))
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
    atomic_write_json(out / META, meta)
    return out


@dataclass
class ObsNormalizer:
    """VecNormalize's `normalize_obs` from plain arrays: the same arithmetic, no pickle."""

    mean: np.ndarray
    var: np.ndarray
    count: float
    clip_obs: float
    epsilon: float
    norm_obs: bool = True

    @property
    def obs_rms(self) -> ObsNormalizer:  # VecNormalize's name for the statistics (obs_rms.mean etc.)
        return self

    def normalize_obs(self, obs: np.ndarray) -> np.ndarray:
        if not self.norm_obs:
            return np.array(obs, copy=True)
        norm = np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -self.clip_obs, self.clip_obs)
        return norm.astype(np.float32)

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> ObsNormalizer:
        return cls(
            mean=np.asarray(spec["mean"], dtype=np.float64),
            var=np.asarray(spec["var"], dtype=np.float64),
            count=float(spec["count"]),
            clip_obs=float(spec["clip_obs"]),
            epsilon=float(spec["epsilon"]),
            norm_obs=bool(spec.get("norm_obs", True)),
        )


@dataclass
class SafePolicy:
    """An SB3 policy rebuilt from policy.json and given model.zip's weights: what `Artifact.model` holds when
    loaded without trust. `predict` is the policy's own (the algorithm's predict only forwards to it)."""

    policy: Any
    num_timesteps: int

    @property
    def observation_space(self) -> Any:
        return self.policy.observation_space

    @property
    def action_space(self) -> Any:
        return self.policy.action_space

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True) -> tuple[Any, Any]:
        return self.policy.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)


def _policy_classes() -> dict[str, type]:
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
    from stable_baselines3.common.policies import ActorCriticPolicy

    return {c.__name__: c for c in (ActorCriticPolicy, RecurrentActorCriticPolicy)}


def load_policy_safely(p: Path, device: str = "cpu") -> SafePolicy:
    """The policy from policy.json (class, kwargs, spaces) and model.zip's policy.pth (tensors only)."""
    import torch

    spec = json.loads((p / POLICY_SPEC).read_text())
    classes = _policy_classes()
    if spec.get("policy_class") not in classes:
        raise ArtifactError(
            f"controller artifact {p}: {POLICY_SPEC} names policy class {spec.get('policy_class')!r}; "
            f"allowed: {sorted(classes)}"
        )
    policy = classes[spec["policy_class"]](
        _space_from_json(spec["observation_space"]),
        _space_from_json(spec["action_space"]),
        lambda _: 0.0,  # the optimizer's rate: never used, the policy is not trained here
        use_sde=bool(spec.get("use_sde", False)),
        **dict(spec.get("policy_kwargs") or {}),
    )
    with zipfile.ZipFile(p / MODEL) as z:
        blob = z.read("policy.pth")
    state = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
    policy.load_state_dict(state)
    policy.to(device)
    policy.set_training_mode(False)
    return SafePolicy(policy, int(spec.get("num_timesteps", 0)))


@dataclass
class Artifact:
    path: Path
    model: Any
    vecnormalize: Any  # ObsNormalizer (or, trusted, SB3's VecNormalize without a venv): normalize_obs only
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


def load_artifact(path: str | Path, device: str = "cpu", *, trust: bool = False) -> Artifact:
    """The controller in folder `path`, loaded without executing code from it (see the module doc).

    `trust=True` uses SB3's loader and unpickles vecnormalize.pkl instead: only for artifacts you made yourself,
    and needed only for folders written before policy.json existed (or convert them once:
    `python scripts/convert_artifact.py <dir>`).
    """
    p = Path(path)
    if not p.is_dir():
        raise ArtifactError(f"controller artifact {p} is not a folder; pass the folder written by training")
    missing = [f for f in (MODEL, ENV_CONFIG, META) if not (p / f).is_file()]
    if trust and not (p / VECNORM).is_file():
        missing.append(VECNORM)
    if missing:
        raise ArtifactError(f"controller artifact {p} lacks {missing}; was training interrupted before it finished?")
    safe_missing = [f for f in (POLICY_SPEC, VECNORM_JSON) if not (p / f).is_file()]
    if safe_missing and not trust:
        raise ArtifactError(
            f"controller artifact {p} lacks {safe_missing}, so it loads only through pickle, which can run any "
            f"code the folder holds. If you made it yourself, convert it once: python scripts/convert_artifact.py "
            f"{p} (or pass trust=True to load_artifact)"
        )
    try:
        meta = json.loads((p / META).read_text())
        # Artifacts written before PLACE_KEYS were dropped still carry them: ignore them here too.
        env_config = portable_env_config(json.loads((p / ENV_CONFIG).read_text()))
        # Artifacts written before `scale_per` existed applied the multiplier once per env step.
        if env_config.get("action") == "scale":
            env_config.setdefault("scale_per", "env_step")
        stats = None if trust else json.loads((p / VECNORM_JSON).read_text())
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
        model = algorithm_class(meta["algo"]).load(p / MODEL, device=device) if trust else load_policy_safely(p, device)
    except ArtifactError:
        raise
    except Exception as err:  # SB3/torch raise a zoo of errors on bad files; all mean the same to the user
        raise ArtifactError(f"controller artifact {p}: could not load {MODEL}: {err}") from err
    try:
        if trust:
            with open(p / VECNORM, "rb") as f:
                vecnorm = pickle.load(f)
            vecnorm.training = False
            vecnorm.norm_reward = False
        else:
            vecnorm = ObsNormalizer.from_json(stats)
    except Exception as err:
        raise ArtifactError(f"controller artifact {p}: could not load its observation statistics: {err}") from err
    if (
        list(model.observation_space.shape) != list(meta["obs_shape"])
        or len(meta["feature_names"]) != meta["obs_shape"][0]
    ):
        raise ArtifactError(
            f"controller artifact {p}: model observation shape {list(model.observation_space.shape)} does not match "
            f"its recorded layout {meta['feature_names']}"
        )
    return Artifact(p, model, vecnorm, env_config, meta)
