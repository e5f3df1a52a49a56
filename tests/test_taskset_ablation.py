"""scripts/taskset_ablation.py: the direct comparison of two task-set variants over PPO seeds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("taskset_ablation", ROOT / "scripts" / "taskset_ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(root: Path, variant: str, losses: dict[int, dict[str, list[float]]]) -> None:
    """losses[ppo_seed][task] = test loss per evaluation trainee; plus a baseline row that must be ignored."""
    for task in next(iter(losses.values())):
        rows = [
            {"task": task, "controller": f"learned_{variant}_seed{k}", "seed": i, "test_loss": v}
            for k, by_task in losses.items()
            for i, v in enumerate(by_task[task])
        ]
        rows.append({"task": task, "controller": "adam@stated", "seed": 0, "test_loss": 9.0})
        out = root / variant / task / "adam"
        out.mkdir(parents=True)
        pd.DataFrame(rows).to_csv(out / "results.csv", index=False)


def test_compares_per_seed_means_over_tasks_with_welch(tmp_path):
    mod = _script()
    _write(tmp_path, "a", {0: {"t1": [1.0, 3.0], "t2": [2.0, 2.0]}, 1: {"t1": [2.0, 2.0], "t2": [4.0, 4.0]}})
    _write(tmp_path, "b", {0: {"t1": [1.0, 1.0], "t2": [1.0, 1.0]}, 1: {"t1": [2.0, 2.0], "t2": [2.0, 2.0]},
                           2: {"t1": [0.0, 0.0], "t2": [1.0, 1.0]}})  # fmt: skip
    a, b = mod.per_seed_means(tmp_path, "a"), mod.per_seed_means(tmp_path, "b")
    assert a.mean(axis=1).tolist() == [2.0, 3.0] and b.mean(axis=1).tolist() == [1.0, 2.0, 0.5]
    r = mod.compare(a, b)
    ci = stats.ttest_ind([2.0, 3.0], [1.0, 2.0, 0.5], equal_var=False).confidence_interval(0.95)
    assert r["diff"] == pytest.approx(2.5 - 3.5 / 3) and (r["low"], r["high"]) == pytest.approx((ci.low, ci.high))
    assert (r["n_a"], r["n_b"]) == (2, 3)
    assert "a - b: +1.3333" in mod.report("a", a, "b", b, r)


def test_a_controller_missing_a_trainee_stops_the_comparison(tmp_path):
    mod = _script()
    _write(tmp_path, "a", {0: {"t1": [1.0, 3.0]}, 1: {"t1": [2.0, 2.0]}})
    path = tmp_path / "a" / "t1" / "adam" / "results.csv"
    rows = pd.read_csv(path)
    rows[~((rows.controller == "learned_a_seed1") & (rows.seed == 1))].to_csv(path, index=False)
    with pytest.raises(SystemExit, match="learned_a_seed1 did not run every trainee of t1"):
        mod.per_seed_means(tmp_path, "a")
