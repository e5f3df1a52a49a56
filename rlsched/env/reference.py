"""Reference curves for the paired reward: a baseline's probe losses on a given trainee, computed once.

`reference_curve(cfg, seed)` has the baseline `cfg.reward_reference` run for one episode on an internal copy of
the env (`reference_env_config`: per-step reward, no final evaluation, no reference of its own) with the same
episode seed, hence the same initialization, split and data order as the episode it is compared with, and
returns the probe's validation loss at steps 0, 1, ... (shorter than episode_steps + 1 if the baseline diverged).

The env knows no controllers: running a baseline spec is the job of a `ReferenceRunner` that the code knowing
controllers supplies, either per env (`LRControlEnv(reference_runner=...)`) or for the process
(`install_runner`; `import rlsched.control.reference` installs rlsched's, and `rlsched.config` imports it). This module
only says which run is needed and keeps its result.

Curves are cached per (reference env identity, reference spec, episode seed): in this module for the life of
the process (every env, every PPO seed and every episode on a reused training trainee shares them) and, if
`cfg.reference_cache_dir` is set, as one JSON file per key in that folder. The runner is not part of the key: any
runner must give the curve its spec defines.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from rlsched.env.config import EnvConfig
from rlsched.io import atomic_write_text


@dataclass
class CacheStats:
    """How reference curves were obtained in this process (tests and logs read it)."""

    hits: int = 0  # from the in-process cache
    disk_hits: int = 0  # from reference_cache_dir
    computed: int = 0  # by running the reference baseline

    def reset(self) -> None:
        self.hits = self.disk_hits = self.computed = 0


class ReferenceRunner(Protocol):
    """Runs a reference baseline, given as a controller spec such as {kind: plateau, lr: 0.01}."""

    def check(self, spec: Mapping[str, Any]) -> None:
        """Raise TypeError or ValueError if `spec` names no valid baseline (called when an env is built)."""

    def run(self, cfg: EnvConfig, spec: Mapping[str, Any], seed: int) -> list[float]:
        """The probe validation losses at steps 0, 1, ... of `spec` on an env built from `cfg` (a
        `reference_env_config`) reset with `seed`, up to but not including a step at which the run diverged."""


STATS = CacheStats()
_CURVES: dict[str, list[float]] = {}
_RUNNER: ReferenceRunner | None = None


def install_runner(runner: ReferenceRunner | None) -> ReferenceRunner | None:
    """Make `runner` the process's reference runner (None: none); returns the one it replaces."""
    global _RUNNER
    previous, _RUNNER = _RUNNER, runner
    return previous


def installed_runner() -> ReferenceRunner | None:
    return _RUNNER


def _require_runner(runner: ReferenceRunner | None) -> ReferenceRunner:
    runner = runner or _RUNNER
    if runner is None:
        raise ValueError(
            "reward=paired_log needs a reference runner to run its baseline, and none is installed: "
            "`import rlsched.control.reference` installs rlsched's (rlsched.config does so), or pass "
            "LRControlEnv(reference_runner=...)"
        )
    return runner


def reference_provider(cfg: EnvConfig, runner: ReferenceRunner | None = None) -> Callable[[int], list[float]]:
    """The paired reward's reference: episode seed -> `reference_curve(cfg, seed)`, run by `runner` (default:
    the installed one). Fails here, at env construction, when there is no runner or the spec is bad."""
    runner = _require_runner(runner)
    spec = cfg.reward_reference or {}
    try:
        runner.check(spec)
    except (TypeError, ValueError) as err:
        raise ValueError(f"bad reward_reference {dict(spec)}: {err}") from err
    return lambda seed: reference_curve(cfg, seed, runner)


def clear_cache() -> None:
    """Forget every in-process curve (the disk cache is left alone) and zero the counters."""
    _CURVES.clear()
    STATS.reset()


def reference_env_config(cfg: EnvConfig) -> EnvConfig:
    """The env a reference run uses: `cfg` with the reward fields at their defaults, no reference, no final
    evaluation. Everything that shapes the trainee's trajectory (data, model, optimizer, budget, LR bounds,
    divergence threshold, device) is kept."""
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


def cache_key(cfg: EnvConfig, seed: int) -> tuple[str, dict[str, Any]]:
    """(hash, what it hashes) of the reference run that `cfg`'s paired reward needs for episode `seed`."""
    key = {
        "env": reference_env_config(cfg).identity(),
        "reference": dict(cfg.reward_reference or {}),
        "seed": int(seed),
    }
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16], key


def reference_curve(cfg: EnvConfig, seed: int, runner: ReferenceRunner | None = None) -> list[float]:
    """Probe validation losses of the reference baseline on episode `seed`, from a cache when possible, else run
    by `runner` (default: the installed one)."""
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
        curve = _require_runner(runner).run(reference_env_config(cfg), dict(cfg.reward_reference), int(seed))
        STATS.computed += 1
        if folder:
            _write_disk(folder / f"{digest}.json", key, curve)
    _CURVES[digest] = curve
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
