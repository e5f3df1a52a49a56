"""From composed Hydra configs to objects: env kwargs, controllers (with tuned settings), trackers."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from envs.lr_control import EnvConfig
from rlsched import reference  # noqa: F401  (installs the paired reward's reference runner)
from rlsched.controllers import BASELINES, Controller, make_controller

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TUNED_DIR = PROJECT_ROOT / "conf" / "tuned"


def to_dict(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def env_kwargs(env_cfg: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """Validated env kwargs (unknown keys and bad values fail here, before any work)."""
    kw = {**dict(to_dict(env_cfg)), **overrides}
    EnvConfig.from_kwargs(**kw)
    return kw


def task_key(env_kw: Mapping[str, Any]) -> str:
    """Names a task by everything that changes what a tuned schedule should be: data, model, budget."""
    c = EnvConfig.from_kwargs(**env_kw)
    if c.tasks is not None:  # one setting for every task of the set (tuned on the set, applied to held-out tasks)
        return f"taskset_{c.tasks['name']}_{c.optimizer}_K{c.steps_per_action}"
    n = "all" if c.train_size is None else c.train_size
    key = f"{c.dataset}_{c.model}_{c.optimizer}_T{c.episode_steps}_K{c.steps_per_action}_B{c.batch_size}_N{n}"
    if c.controlled_params:  # a schedule for part of the network, the rest at other_lr, is another task
        key += "_G" + "+".join(c.controlled_params)
    return key


def tuned_file(env_kw: Mapping[str, Any], tuned_dir: str | Path | None = None) -> Path:
    return Path(tuned_dir or DEFAULT_TUNED_DIR) / f"{task_key(env_kw)}.yaml"


def load_tuned(env_kw: Mapping[str, Any], tuned_dir: str | Path | None = None) -> dict[str, dict]:
    path = tuned_file(env_kw, tuned_dir)
    if not path.is_file():
        return {}
    return dict(to_dict(OmegaConf.load(path)))


def build_baselines(
    names: list[str],
    specs: Mapping[str, Mapping[str, Any]],
    env_kw: Mapping[str, Any],
    use_tuned: bool = True,
    tuned_dir: str | Path | None = None,
) -> tuple[list[Controller], dict[str, str]]:
    """Baselines by name from the `baselines` config, each overlaid with its tuned settings for this task.

    Returns the controllers and, per name, where its settings came from ("tuned: <file>" or "defaults").
    """
    specs = dict(to_dict(specs))
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(
            f"unknown controller(s) {unknown}; configured baselines: {sorted(specs)} (kinds: {sorted(BASELINES)})"
        )
    tuned = load_tuned(env_kw, tuned_dir) if use_tuned else {}
    out, source = [], {}
    for name in names:
        params = dict(specs[name])
        kind = params.pop("kind", name)
        if name in tuned:
            params.update(tuned[name])
            path = tuned_file(env_kw, tuned_dir)
            source[name] = f"tuned: {path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}"
        else:
            source[name] = "defaults"
        out.append(make_controller(kind, name=name, **params))
    missing = [n for n, s in source.items() if s == "defaults"] if use_tuned else []
    if missing:
        warnings.warn(
            f"no tuned settings for {missing} on task {task_key(env_kw)}; using config defaults. "
            f"Run the tuning sweep (README: 'Tuning the baselines') to create {tuned_file(env_kw, tuned_dir)}",
            stacklevel=2,
        )
    return out, source


def resolve_reward_reference(
    env_kw: Mapping[str, Any],
    baseline_specs: Mapping[str, Mapping[str, Any]],
    tuned_dir: str | Path | None = None,
    *,
    use_tuned: bool = True,
) -> dict[str, Any]:
    """`env_kw` with a baseline *name* in `reward_reference` (e.g. `plateau`) replaced by that baseline's spec: its
    entry in the `baselines` config overlaid with its tuned settings for this task, as `build_baselines` builds it.

    Call it on the raw env config before validating it (`EnvConfig` accepts a spec dict or null, not a name). A
    dict or null passes unchanged. Warns when the task has no tuned settings for the baseline.
    """
    kw = dict(to_dict(env_kw))
    name = kw.get("reward_reference")
    if not isinstance(name, str):
        return kw
    specs = dict(to_dict(baseline_specs))
    if name not in specs:
        raise ValueError(
            f"reward_reference {name!r} is not a configured baseline; configured: {sorted(specs)}, "
            "or give a controller spec such as {kind: plateau, lr: 0.01, factor: 0.5, patience: 1}"
        )
    # The task (data, model, budget) names the tuned settings; the reward plays no part in it.
    task_kw = {**kw, "reward": "neg_val_loss", "reward_reference": None}
    tuned = load_tuned(task_kw, tuned_dir) if use_tuned else {}
    params = dict(specs[name])
    kind = params.pop("kind", name)
    if name in tuned:
        params.update(tuned[name])
    elif use_tuned:
        warnings.warn(
            f"no tuned settings for reward_reference {name!r} on task {task_key(task_kw)}; the paired reward's "
            f"reference uses config defaults. Tune it first ({tuned_file(task_kw, tuned_dir)})",
            stacklevel=2,
        )
    return {**kw, "reward_reference": {"kind": kind, **params}}
