"""Reference curves for the paired reward: a baseline's probe losses on a given trainee, computed once.

`reference_curve(cfg, seed)` runs the baseline `cfg.reward_reference` for one episode on an internal copy of the
env (`reference_env_config`: per-step reward, no final evaluation, no reference of its own) with the same
episode seed, hence the same initialization, split and data order as the episode it is compared with, and
returns the probe's validation loss at steps 0, 1, ... (shorter than episode_steps + 1 if the baseline diverged).

Curves are cached per (reference env identity, reference spec, episode seed): in this module for the life of
the process (every env, every PPO seed and every episode on a reused training trainee shares them) and, if
`cfg.reference_cache_dir` is set, as one JSON file per key in that folder.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rlsched.io import atomic_write_text

if TYPE_CHECKING:
    from envs.lr_control import EnvConfig, LRControlEnv

# Fields that say where data lies, how many threads run or where curves are cached: they change no number.
PLACE_FIELDS = ("data_dir", "verify_checksums", "torch_threads", "reference_cache_dir")


@dataclass
class CacheStats:
    """How reference curves were obtained in this process (tests and logs read it)."""

    hits: int = 0  # from the in-process cache
    disk_hits: int = 0  # from reference_cache_dir
    computed: int = 0  # by running the reference baseline

    def reset(self) -> None:
        self.hits = self.disk_hits = self.computed = 0


STATS = CacheStats()
_CURVES: dict[str, list[float]] = {}
_ENVS: dict[str, LRControlEnv] = {}


def clear_cache() -> None:
    """Forget every in-process curve and internal env (the disk cache is left alone) and zero the counters."""
    _CURVES.clear()
    _ENVS.clear()
    STATS.reset()


def reference_env_config(cfg: EnvConfig) -> EnvConfig:
    """The env a reference run uses: `cfg` with the reward fields at their defaults, no reference, no final
    evaluation. Everything that shapes the trainee's trajectory (data, model, optimizer, budget, LR bounds,
    divergence threshold, device) is kept."""
    from envs.lr_control import EnvConfig

    default = EnvConfig()
    return replace(
        cfg,
        reward="neg_val_loss",
        reward_baseline=default.reward_baseline,
        divergence_loss=None,
        divergence_penalty=None,
        reward_reference=None,
        reference_cache_dir=None,
        final_val_eval=False,
        test_eval=False,
    )


def _identity(cfg: EnvConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    for key in PLACE_FIELDS:
        d.pop(key, None)
    device = d["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    d["device"] = device.split(":")[0]  # CPU and GPU kernels round differently; which GPU does not matter
    return d


def cache_key(cfg: EnvConfig, seed: int) -> tuple[str, dict[str, Any]]:
    """(hash, what it hashes) of the reference run that `cfg`'s paired reward needs for episode `seed`."""
    key = {
        "env": _identity(reference_env_config(cfg)),
        "reference": dict(cfg.reward_reference or {}),
        "seed": int(seed),
    }
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16], key


def reference_curve(cfg: EnvConfig, seed: int) -> list[float]:
    """Probe validation losses of the reference baseline on episode `seed`, from a cache when possible."""
    if not cfg.reward_reference:
        raise ValueError("reference_curve needs cfg.reward_reference (a baseline controller spec)")
    digest, key = cache_key(cfg, seed)
    if digest in _CURVES:
        STATS.hits += 1
        return _CURVES[digest]
    folder = Path(cfg.reference_cache_dir) if cfg.reference_cache_dir else None
    curve = _read_disk(folder / f"{digest}.json", key) if folder else None
    if curve is not None:
        STATS.disk_hits += 1
    else:
        curve = _run_reference(cfg, seed)
        STATS.computed += 1
        if folder:
            _write_disk(folder / f"{digest}.json", key, curve)
    _CURVES[digest] = curve
    return curve


def _reference_env(cfg: EnvConfig) -> LRControlEnv:
    """One internal env per reference env identity, shared by every env in the process (it holds the data)."""
    from envs.lr_control import LRControlEnv

    ref_cfg = reference_env_config(cfg)
    digest = hashlib.sha1(json.dumps(_identity(ref_cfg), sort_keys=True, default=str).encode()).hexdigest()
    if digest not in _ENVS:
        _ENVS[digest] = LRControlEnv(**ref_cfg.to_dict())
    return _ENVS[digest]


def _run_reference(cfg: EnvConfig, seed: int) -> list[float]:
    from rlsched.controllers import make_controller  # lazily: rlsched imports envs

    spec = dict(cfg.reward_reference or {})
    controller = make_controller(spec.pop("kind"), **spec)
    env = _reference_env(cfg)
    obs, info = env.reset(seed=seed)
    controller.reset(env, obs, info)
    curve = [info["val_loss"]]
    while True:
        action = controller.act(obs, info)
        obs, _, terminated, truncated, info = env.step_lr(action) if controller.sets_lr else env.step(action)
        if info["diverged"]:
            break  # the curve stops here: the reward counts the rest as divergence_loss
        curve.append(info["val_loss"])
        if terminated or truncated:
            break
    return curve


def _read_disk(path: Path, key: dict[str, Any]) -> list[float] | None:
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged file is recomputed and rewritten
    if stored.get("key") != json.loads(json.dumps(key, sort_keys=True, default=str)):
        return None
    curve = stored.get("val_loss")
    if not isinstance(curve, list) or not all(isinstance(v, float) and math.isfinite(v) for v in curve):
        return None
    return curve


def _write_disk(path: Path, key: dict[str, Any], curve: list[float]) -> None:
    """Temp file and rename: a killed writer leaves no half file, and concurrent writers write the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"key": key, "val_loss": curve}, sort_keys=True, default=str, indent=1))
