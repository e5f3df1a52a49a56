"""Evaluate learned controllers beside tuned baselines on one task: the body of benchmark, transfer and demo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envs.lr_control import LRControlEnv
from rlsched.config import build_baselines, task_key
from rlsched.controllers.learned import LearnedController
from rlsched.harness import ensure_writable, run_benchmark
from rlsched.report import write_report
from rlsched.tracking import Tracker


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
    out = ensure_writable(out_dir)
    controllers, sources = build_baselines(list(baselines), baseline_specs, env_kw, use_tuned, tuned_dir)
    learned_ctrls = [LearnedController(path, name=name) for name, path in learned.items()]
    env = LRControlEnv(**env_kw)
    for ctrl in learned_ctrls:  # a mismatched artifact fails here, before any episode runs
        ctrl.artifact.check_compatible(env)
    results, curves = run_benchmark(
        env_kw, [*learned_ctrls, *controllers], seeds, out, tracker=tracker, progress=progress, env=env
    )
    notes = [f"task `{task_key(env_kw)}`"] + [f"`{n}`: {s}" for n, s in sources.items()]
    notes += [f"`{c.name}`: artifact {c.artifact.path}" for c in learned_ctrls]
    return write_report(results, curves, list(baselines), out, title=title, tracker=tracker, notes=notes)
