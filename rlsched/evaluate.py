"""Evaluate learned controllers beside tuned baselines on one task: the body of benchmark, transfer and demo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envs.lr_control import EnvConfig, LRControlEnv
from rlsched.config import build_baselines, task_key
from rlsched.controllers.learned import LearnedController
from rlsched.data import require_data
from rlsched.harness import check_results_folder, ensure_writable, run_benchmark
from rlsched.report import write_report
from rlsched.tracking import Tracker


def require_env_data(env_kw: Mapping[str, Any]) -> None:
    """DataNotFoundError now if the env's data set cannot be had; entry points call it before making folders."""
    cfg = EnvConfig.from_kwargs(**dict(env_kw))
    require_data(cfg.dataset, cfg.data_dir, cfg.verify_checksums)


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
) -> str:
    # Everything that can fail on the request fails before out_dir is created: no empty folder is left behind.
    require_env_data(env_kw)
    check_results_folder(out_dir, env_kw)
    controllers, sources = build_baselines(list(baselines), baseline_specs, env_kw, use_tuned, tuned_dir)
    learned_ctrls = [LearnedController(path, name=name) for name, path in learned.items()]
    out = ensure_writable(out_dir)
    env = LRControlEnv(**env_kw)
    for ctrl in learned_ctrls:  # a mismatched artifact fails here, before any episode runs
        ctrl.artifact.check_compatible(env)
    results, curves = run_benchmark(
        env_kw, [*learned_ctrls, *controllers], seeds, out, tracker=tracker, progress=progress, env=env
    )
    notes = [f"task `{task_key(env_kw)}`"] + [f"`{n}`: {s}" for n, s in sources.items()]
    notes += [f"`{c.name}`: artifact {c.artifact.path}" for c in learned_ctrls]
    return write_report(results, curves, list(baselines), out, title=title, tracker=tracker, notes=notes)
