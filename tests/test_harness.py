"""The harness on tiny real data: every controller x seed in the table, paired starts, resume, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from rlsched.bench.evaluate import evaluate_task
from rlsched.bench.harness import ResultsFolderError, append_result, env_identity, read_results, run_benchmark
from rlsched.config import TASK_RECORD, build_baselines, task_record, tuned_file
from rlsched.control import make_controller
from rlsched.env.lr_control import LRControlEnv

SPECS = {
    "constant": {"kind": "constant", "lr": 0.01},
    "step_decay": {"kind": "step_decay", "lr": 0.01, "gamma": 0.5, "step_size": 2},
    "plateau": {"kind": "plateau", "lr": 0.01, "factor": 0.5, "patience": 1},
}


def test_harness_writes_every_controller_and_seed(tiny_env_kwargs, tmp_path):
    md = evaluate_task(
        tiny_env_kwargs,
        list(SPECS),
        SPECS,
        {},
        [0, 1],
        tmp_path,
        title="tiny",
        use_tuned=False,
        progress=False,
    )
    results = pd.read_csv(tmp_path / "results.csv")
    assert sorted(zip(results["controller"], results["seed"], strict=True)) == sorted(
        (c, s) for c in SPECS for s in (0, 1)
    )
    assert results[["test_loss", "test_accuracy", "final_val_loss"]].notna().all().all()
    table = (tmp_path / "table.md").read_text()
    assert table.strip() == md.strip()
    for name in SPECS:
        assert name in table
    for f in ("summary.csv", "paired.csv", "lr_schedules.png", "val_loss.png"):
        assert (tmp_path / f).stat().st_size > 0
    # Paired design: the same seed starts every controller from the same weights; seeds differ.
    fp = results.groupby("seed")["init_fingerprint"].nunique()
    assert (fp == 1).all()
    assert results.groupby("seed")["init_fingerprint"].first().nunique() == 2
    # The schedules really differ (so the pairing is not trivially identical runs).
    curves = pd.concat(pd.read_csv(p) for p in (tmp_path / "curves").glob("*.csv"))
    last_lr = curves[curves.step == curves.step.max()].groupby("controller")["lr"].first()
    assert last_lr["step_decay"] < last_lr["constant"]


def test_interrupted_benchmark_keeps_finished_runs_and_resumes(tiny_env_kwargs, tmp_path):
    ctrls = [make_controller("constant", lr=0.01), make_controller("cosine", lr=0.01)]
    env = LRControlEnv(**tiny_env_kwargs)
    calls = {"n": 0}
    original = env.reset

    def failing_reset(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:  # the third run dies
            raise KeyboardInterrupt
        return original(*a, **k)

    env.reset = failing_reset
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(tiny_env_kwargs, ctrls, [0, 1], tmp_path, progress=False, env=env)
    assert len(pd.read_csv(tmp_path / "results.csv")) == 2  # both finished runs are on disk
    env.reset = original
    done_before = pd.read_csv(tmp_path / "results.csv")
    results, curves = run_benchmark(tiny_env_kwargs, ctrls, [0, 1], tmp_path, progress=False, env=env)
    assert len(results) == 4 and len(curves) == 4 * (tiny_env_kwargs["episode_steps"] + 1)
    # Finished runs were not re-run: their rows are unchanged.
    pd.testing.assert_frame_equal(results.iloc[:2].reset_index(drop=True), done_before)


def test_unknown_controller_name_fails_before_any_run(tiny_env_kwargs):
    with pytest.raises(ValueError, match=r"unknown controller.*configured baselines"):
        build_baselines(["constant", "stepdecay"], SPECS, tiny_env_kwargs, use_tuned=False)


def test_unwritable_results_folder_fails_before_any_run(tiny_env_kwargs, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="cannot be written"):
        run_benchmark(tiny_env_kwargs, [make_controller("constant", lr=0.01)], [0], blocker / "out")


def test_tuned_settings_override_defaults(tiny_env_kwargs, tmp_path):
    record = OmegaConf.to_yaml({TASK_RECORD: task_record(tiny_env_kwargs)})
    tuned_file(tiny_env_kwargs, tmp_path).write_text(record + "plateau:\n  lr: 0.003\n  patience: 4\n")
    ctrls, source = build_baselines(["plateau", "constant"], SPECS, tiny_env_kwargs, True, tmp_path)
    plateau = ctrls[0]
    assert plateau.lr0 == 0.003 and plateau.patience == 4 and plateau.factor == 0.5
    assert source["plateau"].startswith("tuned") and source["constant"] == "defaults"


def test_changed_controller_is_rerun_not_reused(tiny_env_kwargs, tmp_path):
    run_benchmark(tiny_env_kwargs, [make_controller("constant", lr=0.01)], [0], tmp_path, progress=False)
    results, _ = run_benchmark(tiny_env_kwargs, [make_controller("constant", lr=0.003)], [0], tmp_path, progress=False)
    assert len(results) == 1 and results["final_lr"].iloc[0] == 0.003
    again, _ = run_benchmark(tiny_env_kwargs, [make_controller("constant", lr=0.003)], [0], tmp_path, progress=False)
    assert len(pd.read_csv(tmp_path / "results.csv")) == 2  # the third call re-used the matching run
    pd.testing.assert_frame_equal(again, results)


def test_identity_ignores_what_reset_derives(tiny_env_kwargs):
    ctrl = make_controller("step_decay", lr=0.01, gamma=0.5, step_size=1, unit="epoch")
    before = ctrl.identity()
    env = LRControlEnv(**tiny_env_kwargs)
    obs, info = env.reset(seed=0)
    ctrl.reset(env, obs, info)
    assert ctrl.step_size_steps is not None and ctrl.identity() == before
    assert make_controller("step_decay", lr=0.01, gamma=0.8, step_size=1, unit="epoch").identity() != before


# ----- results folder belongs to one env config (issue 10, item 1) ------------------------------------------
def test_changed_env_config_is_refused_naming_the_keys(tiny_env_kwargs, tmp_path):
    ctrl = [make_controller("constant", lr=0.01)]
    first, _ = run_benchmark(tiny_env_kwargs, ctrl, [0], tmp_path, progress=False)
    assert first["env_identity"].iloc[0] == env_identity(tiny_env_kwargs)
    assert json.loads((tmp_path / "env_config.json").read_text())["episode_steps"] == 5
    before = (tmp_path / "results.csv").read_text()
    changed = {**tiny_env_kwargs, "episode_steps": 4, "reward": "final_only"}
    with pytest.raises(ResultsFolderError, match=r"episode_steps: 5 there, 4 now.*reward.*new out_dir"):
        run_benchmark(changed, ctrl, [0], tmp_path, progress=False)
    assert (tmp_path / "results.csv").read_text() == before  # nothing reused, nothing mixed in
    # A new folder runs the new config: its numbers differ from the first run's.
    other, _ = run_benchmark(changed, ctrl, [0], tmp_path / "new", progress=False)
    assert other["steps"].iloc[0] == 4 and other["env_identity"].iloc[0] != first["env_identity"].iloc[0]


def test_where_the_data_lies_does_not_change_the_env_identity(tiny_env_kwargs, tmp_path):
    ctrl = [make_controller("constant", lr=0.01)]
    first, _ = run_benchmark(tiny_env_kwargs, ctrl, [0], tmp_path, progress=False)
    # Same numbers from another data path, thread count or checksum setting: the finished run is reused.
    moved = {**tiny_env_kwargs, "data_dir": str(Path(tiny_env_kwargs["data_dir"]) / "."), "torch_threads": 1}
    again, _ = run_benchmark(moved, ctrl, [0], tmp_path, progress=False)
    pd.testing.assert_frame_equal(again, first)
    assert len(pd.read_csv(tmp_path / "results.csv")) == 1
    assert "data_dir" not in json.loads((tmp_path / "env_config.json").read_text())
    # Defaults spelled out and presets expanded hash the same as left implicit.
    explicit = {**tiny_env_kwargs, "device": "cpu", "action": "scale"}
    assert env_identity(explicit) == env_identity(tiny_env_kwargs)
    assert env_identity({**tiny_env_kwargs, "test_size": 400}) != env_identity(tiny_env_kwargs)


def test_results_without_env_identity_are_refused(tiny_env_kwargs, tmp_path):
    old = "controller,seed,identity,test_loss\nconstant,0,x,0.5\n"
    (tmp_path / "results.csv").write_text(old)
    with pytest.raises(ResultsFolderError, match=r"without an env identity.*new out_dir"):
        run_benchmark(tiny_env_kwargs, [make_controller("constant", lr=0.01)], [0], tmp_path, progress=False)
    assert (tmp_path / "results.csv").read_text() == old


# ----- crash-safe results.csv (issue 10, item 5) -------------------------------------------------------------
def test_partial_last_line_is_dropped_and_its_run_repeated(tiny_env_kwargs, tmp_path):
    ctrl = [make_controller("constant", lr=0.01)]
    run_benchmark(tiny_env_kwargs, ctrl, [0, 1], tmp_path, progress=False)
    path = tmp_path / "results.csv"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # a kill in the middle of writing the seed-1 row
    with pytest.warns(UserWarning, match="partial last line") as caught:
        results, _ = run_benchmark(tiny_env_kwargs, ctrl, [0, 1], tmp_path, progress=False)
    assert len([w for w in caught if "partial last line" in str(w.message)]) == 1  # said once, not per read
    assert sorted(results["seed"]) == [0, 1]
    on_disk = pd.read_csv(path)  # parses again
    assert sorted(on_disk["seed"]) == [0, 1] and path.read_text().endswith("\n")
    assert path.read_text().splitlines()[:2] == text.splitlines()[:2]  # the finished row kept byte for byte


def test_a_crash_while_appending_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    append_result(path, {"controller": "a", "seed": 0, "test_loss": 0.5})
    before = path.read_text()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        append_result(path, {"controller": "a", "seed": 1, "test_loss": 0.25})
    assert path.read_text() == before
    monkeypatch.undo()
    append_result(path, {"controller": "a", "seed": 1, "test_loss": 0.25})
    assert read_results(path)["seed"].tolist() == [0, 1]
