"""From composed Hydra configs to objects: env kwargs, controllers (with tuned settings), trackers."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlsched.control import (
    BASELINES,
    Controller,
    make_controller,
    reference,  # noqa: F401  (installs the paired reward's reference runner)
)
from rlsched.env.config import TRAINING_FIELDS, EnvConfig
from rlsched.schema import register_configs

register_configs()  # before any composition: conf/agent and conf/env start from the structured schemas
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TUNED_DIR = PROJECT_ROOT / "conf" / "tuned"
EnvLike = EnvConfig | Mapping[str, Any]  # a built config (passed on as it is) or its keywords (validated once)


def to_dict(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def env_kwargs(env_cfg: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """Validated env kwargs (unknown keys and bad values fail here, before any work)."""
    kw = {**dict(to_dict(env_cfg)), **overrides}
    EnvConfig.from_kwargs(**kw)
    return kw


def task_key(env_kw: EnvLike) -> str:
    """A readable name of a task: data, model, optimizer, budget (`tuned_key` adds what it leaves out)."""
    c = EnvConfig.coerce(env_kw)
    if c.tasks is not None:  # one setting for every task of the set (tuned on the set, applied to held-out tasks)
        return f"taskset_{c.tasks['name']}_{c.optimizer}_K{c.steps_per_action}"
    n = "all" if c.train_size is None else c.train_size
    key = f"{c.dataset}_{c.model}_{c.optimizer}_T{c.episode_steps}_K{c.steps_per_action}_B{c.batch_size}_N{n}"
    if c.controlled_params:  # a schedule for part of the network, the rest at other_lr, is another task
        key += "_G" + "+".join(c.controlled_params)
    return key


# TRAINING_FIELDS (rlsched.env.config): the trainee's training setup, which names a tuning study. TASK_FIELDS adds
# the rest of what changes a baseline's run, so that settings tuned for one value are not tuned for another. Left
# out: what only a learned controller sees or earns (features, action, reward, obs_transform), initial_lr (every
# baseline sets its own rate before the first step; it counts as other_lr where that defaults to it), the final
# evaluations, and where or on which device the task runs.
TASK_FIELDS = (
    *TRAINING_FIELDS,
    "max_loss",
    "weight_bound",
    "controlled_params",
    "other_lr",
    "precision",
)
TASK_RECORD = "_task"  # the key of a tuned file's record of its task (TASK_FIELDS' values)


def task_record(env_kw: EnvLike) -> dict[str, Any]:
    """The values of TASK_FIELDS for this env config (JSON-normal: lists, not tuples)."""
    c = EnvConfig.coerce(env_kw)
    task = {k: getattr(c, k) for k in TASK_FIELDS}
    if not c.controlled_params:
        task["controlled_params"] = task["other_lr"] = None  # other_lr means nothing when all follow the schedule
    elif task["other_lr"] is None:
        task["other_lr"] = c.initial_lr  # what null stands for
    if c.tasks is not None:  # settings tuned once on a task set: the set's tasks are the task (absent otherwise)
        task["tasks"] = c.tasks
    return json.loads(json.dumps(task))


def tuned_key(env_kw: EnvLike) -> str:
    """`task_key` plus a short hash of `task_record`: two variants of a task never share tuned settings."""
    cfg = EnvConfig.coerce(env_kw)
    blob = json.dumps(task_record(cfg), sort_keys=True)
    return f"{task_key(cfg)}_{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


def tuned_file(env_kw: EnvLike, tuned_dir: str | Path | None = None) -> Path:
    return Path(tuned_dir or DEFAULT_TUNED_DIR) / f"{tuned_key(env_kw)}.yaml"


class TunedFileError(ValueError):
    """A tuned-settings file records another task than the one it is asked for."""


def task_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """'key: recorded -> current' for each differing task field ('' when none)."""
    keys = sorted(set(recorded) | set(current))
    absent = "<absent>"
    return ", ".join(
        f"{k}: {recorded.get(k, absent)!r} -> {current.get(k, absent)!r}"
        for k in keys
        if recorded.get(k, absent) != current.get(k, absent)
    )


def check_tuned_record(path: Path, record: Any, env_kw: EnvLike) -> None:
    """Refuse a tuned file whose task record is missing or names another task, naming the differing keys."""
    current = task_record(env_kw)
    if not isinstance(record, Mapping):
        raise TunedFileError(
            f"{path} has no {TASK_RECORD} record, so nothing says which task its settings were tuned on; "
            f"delete it or move it aside, then tune again"
        )
    diff = task_differences(dict(record), current)
    if diff:
        raise TunedFileError(
            f"{path} holds settings tuned on another task (differing keys, file -> this task: {diff}); "
            "its settings are not this task's. Tune this task into its own file (the name hashes the task) or "
            "choose another tuned_dir=..."
        )


def load_tuned(env_kw: EnvLike, tuned_dir: str | Path | None = None) -> dict[str, dict]:
    """The tuned settings of this task, by baseline name ({} when it has none: callers warn by name)."""
    path = tuned_file(env_kw, tuned_dir)
    if not path.is_file():
        legacy = path.with_name(f"{task_key(env_kw)}.yaml")
        if legacy.is_file():
            warnings.warn(
                f"{legacy} (a tuned file named without its task hash, by an older rlsched) is not used: it does not "
                f"record which variant of {task_key(env_kw)} it was tuned on. This task's settings belong in "
                f"{path.name}; tune again, or move it there and add its {TASK_RECORD} record",
                stacklevel=2,
            )
        return {}
    data = dict(to_dict(OmegaConf.load(path)))
    check_tuned_record(path, data.pop(TASK_RECORD, None), env_kw)
    return data


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
            f"no tuned settings for {missing} on task {tuned_key(env_kw)}; using config defaults. "
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
            f"no tuned settings for reward_reference {name!r} on task {tuned_key(task_kw)}; the paired reward's "
            f"reference uses config defaults. Tune it first ({tuned_file(task_kw, tuned_dir)})",
            stacklevel=2,
        )
    return {**kw, "reward_reference": {"kind": kind, **params}}
