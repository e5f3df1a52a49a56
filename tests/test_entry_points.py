"""The Hydra entry points as a user runs them: tuning (Optuna, multirun launchers), train -> transfer."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tiny import hydra_env

from rlsched.tracking import read_offline_summary

REPO = Path(__file__).resolve().parents[1]
TINY_ENV = hydra_env(episode_steps=3)


def run(
    script: str, args: list[str], data_dir: Path, timeout: int = 300, ok: bool = True
) -> subprocess.CompletedProcess:
    env = {**os.environ, "RLSCHED_DATA_DIR": str(data_dir), "WANDB_SILENT": "true"}
    # Hydra's own run folder goes to a temporary place too, so tests leave the checkout clean.
    hydra_dir = Path(tempfile.mkdtemp(prefix="rlsched-hydra-"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "experiments" / script), *args, f"hydra.run.dir={hydra_dir}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert (proc.returncode == 0) == ok, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_tune_gives_every_baseline_the_same_trials_and_writes_the_winners(data_dir, tmp_path):
    baselines = ["constant", "one_cycle", "warmup_cosine"]
    args = [
        f"baselines=[{','.join(baselines)}]",
        "n_trials=3",
        "logger=none",
        "model=mlp",
        f"out_dir={tmp_path / 'run'}",
        f"tuned_dir={tmp_path / 'tuned'}",
        *TINY_ENV,
    ]
    proc = run("tune.py", args, data_dir)
    assert "trial 3/3" in proc.stdout and "ETA" in proc.stdout
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert trials.groupby("baseline").size().to_dict() == dict.fromkeys(baselines, 3)  # equal budgets
    seeds = ["val_loss_20000", "val_loss_20001"]  # the first two tuning seeds of rlsched.env.seeds
    assert {"baseline", "trial", "lr", "pct_start", "warmup_frac", "score", *seeds} <= set(trials.columns)
    assert not any("test" in c for c in trials.columns)  # tuning never sees the test set
    assert trials["score"].tolist() == pytest.approx(trials[seeds].mean(axis=1).tolist())
    (tuned,) = (tmp_path / "tuned").glob("*.yaml")
    text, best = tuned.read_text(), yaml.safe_load(tuned.read_text())
    for b in baselines:
        winner = trials[trials["baseline"] == b].sort_values("score").iloc[0]
        assert best[b]["lr"] == winner["lr"]
        assert f"# {b}: best of 3 trials" in text and f"score {winner['score']:.4f}" in text
    assert best["one_cycle"]["anneal_strategy"] in ("cos", "linear") and "kind" not in best["one_cycle"]
    # A re-run with the same settings resumes: every baseline is complete, so nothing runs again.
    again = run("tune.py", args, data_dir)
    assert again.stdout.count("all 3 trials logged; nothing to run") == 3 and "trial 1/3" not in again.stdout
    assert pd.read_csv(tmp_path / "run" / "trials.csv").equals(trials)


def test_tune_refuses_bad_settings_before_any_trial(data_dir, tmp_path):
    common = ["logger=none", "model=mlp", f"out_dir={tmp_path / 'run'}", f"tuned_dir={tmp_path / 'tuned'}", *TINY_ENV]
    cases = [
        (["baselines=[constnt]"], "got ['constnt']"),
        (["seeds=[0,1]"], "tuning seeds [0, 1] lie outside the tuning range"),
    ]
    for extra, message in cases:
        proc = run("tune.py", [*extra, *common], data_dir, ok=False)
        assert message in proc.stderr, (extra, proc.stderr[-2000:])
    assert not (tmp_path / "run" / "trials.csv").exists()


def test_tune_multirun_over_tasks_with_submitit_and_wandb(data_dir, tmp_path):
    # One job per task through a launcher; each logs its trials' scores to an offline W&B run.
    run(
        "tune.py",
        [
            "-m",
            "launcher=submitit_local",
            "dataset=fashion_mnist,mnist",
            "model=mlp",
            "baselines=[constant]",
            "n_trials=2",
            f"out_dir={tmp_path / 'run'}/${{env.dataset}}",
            f"tuned_dir={tmp_path / 'tuned'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *TINY_ENV,
        ],
        data_dir,
    )
    assert len(list((tmp_path / "tuned").glob("*.yaml"))) == 2  # one tuned file per task
    assert list((tmp_path / "sweep").rglob("*submitit*")) or list((tmp_path / "sweep").rglob("*.pkl"))
    for dataset in ("fashion_mnist", "mnist"):
        best = pd.read_csv(tmp_path / "run" / dataset / "best.csv")
        (run_dir,) = (tmp_path / "run" / dataset).glob("wandb/offline-run-*")
        summary = read_offline_summary(run_dir)
        assert summary["tune/best_score"] == pytest.approx(best["score"].iloc[0])


def test_train_then_transfer_entry_points(data_dir, tmp_path):
    out = tmp_path / "train"
    agent = [
        "agent.total_timesteps=24",
        "agent.n_envs=1",
        "agent.ppo.n_steps=6",
        "agent.ppo.batch_size=6",
        "agent.ppo.n_epochs=1",
        "agent.checkpoint_every=12",
        "agent.eval_every=12",
    ]
    proc = run(
        "train.py",
        [
            "model=mlp",
            f"out_dir={out}",
            "benchmark.seeds=[0]",
            "benchmark.controllers=[constant,plateau]",
            *TINY_ENV,
            *agent,
        ],
        data_dir,
    )
    assert (out / "controller" / "model.zip").is_file()
    assert "ppo" in (out / "benchmark" / "table.md").read_text()
    assert list((out / "wandb").glob("offline-run-*")), "W&B offline run files expected in the run folder"
    assert "controller artifact" in proc.stdout
    tout = tmp_path / "transfer"
    run(
        "transfer.py",
        [
            f"artifact={out / 'controller'}",
            f"out_dir={tout}",
            "seeds=[0]",
            "controllers=[constant]",
            "targets=[{name: mnist, dataset: mnist}]",
        ],
        data_dir,
    )
    results = pd.read_csv(tout / "mnist" / "results.csv")
    assert set(results["controller"]) == {"learned", "constant"}
    assert (tout / "transfer.md").read_text().count("Transfer to mnist") == 1


def test_train_refuses_a_bad_benchmark_controller_before_training(data_dir, tmp_path):
    out = tmp_path / "train"
    proc = run(
        "train.py", ["model=mlp", f"out_dir={out}", "benchmark.controllers=[constnt]", *TINY_ENV], data_dir, ok=False
    )
    assert "unknown controller(s) ['constnt']" in proc.stderr
    assert not (out / "checkpoints").exists() and not (out / "controller").exists()
