"""Evaluate learned controllers beside tuned baselines on one task: the body of benchmark, transfer and demo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from rlsched.bench.harness import check_results_folder, run_benchmark
from rlsched.bench.report import write_report
from rlsched.config import build_baselines, task_key
from rlsched.control.learned import LearnedController
from rlsched.env.data import require_data
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.io import ensure_writable
from rlsched.tracking import Tracker


def require_env_data(env_kw: EnvConfig | Mapping[str, Any]) -> None:
    """DataNotFoundError now if the env's data set cannot be had; entry points call it before making folders."""
    cfg = EnvConfig.coerce(env_kw)
    require_data(cfg.dataset, cfg.data_dir, cfg.verify_checksums)


def resolve_population(value: int | str, env_kw: EnvConfig | Mapping[str, Any], n_seeds: int) -> int:
    """`population` of a benchmark: an int (1: one env after another) or "auto": every seed of a controller in one
    population on a GPU (at most 64), one env after another on a CPU, where batching gains nothing."""
    if value == "auto":
        cfg = EnvConfig.coerce(env_kw)
        gpu = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
        return max(1, min(n_seeds, 64)) if gpu else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"population must be 'auto' or an integer >= 1 (1: one env after another), got {value!r}")
    return value


def evaluate_task(
    env_kw: Mapping[str, Any],
    baselines: Sequence[str],
    baseline_specs: Mapping[str, Mapping[str, Any]],
    learned: Mapping[str, str | Path],
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    title: str,
    tracker: Tracker | None = None,
    use_tuned: bool = True,
    tuned_dir: str | Path | None = None,
    progress: bool = True,
    population: int | str = "auto",
) -> str:
    # Everything that can fail on the request fails before out_dir is created: no empty folder is left behind.
    require_env_data(env_kw)
    check_results_folder(out_dir, env_kw)
    population = resolve_population(population, env_kw, len(seeds))
    controllers, sources = build_baselines(list(baselines), baseline_specs, env_kw, use_tuned, tuned_dir)
    learned_ctrls = [LearnedController(path, name=name) for name, path in learned.items()]
    out = ensure_writable(out_dir)
    env = LRControlEnv(**env_kw)
    for ctrl in learned_ctrls:  # a mismatched artifact fails here, before any episode runs
        ctrl.artifact.check_compatible(env)
    results, curves = run_benchmark(
        env_kw,
        [*learned_ctrls, *controllers],
        seeds,
        out,
        tracker=tracker,
        progress=progress,
        env=env,
        population=population,
    )
    notes = [f"task `{task_key(env_kw)}`"] + [f"`{n}`: {s}" for n, s in sources.items()]
    notes += [f"`{c.name}`: artifact {c.artifact.path}" for c in learned_ctrls]
    return write_report(results, curves, list(baselines), out, title=title, tracker=tracker, notes=notes)
