"""The Hydra entry points as a user runs them: multirun launchers, tuning callback, train -> transfer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rlsched.tracking import read_offline_summary

REPO = Path(__file__).resolve().parents[1]
TINY_ENV = [
    "env.train_size=2000",
    "env.val_size=500",
    "env.val_probe=200",
    "env.test_size=500",
    "env.batch_size=100",
    "env.episode_steps=3",
    "env.steps_per_action=1",
    "env.eval_batch_size=1000",
]


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


def test_joblib_multirun_tunes_and_writes_the_winner(data_dir, tmp_path):
    proc = run(
        "tune.py",
        [
            "-m",
            "baseline=cosine",
            "++params.lr=0.003,0.01",
            "launcher=joblib",
            "logger=none",
            "model=mlp",
            "seeds=[100]",
            f"tuned_dir={tmp_path / 'tuned'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *TINY_ENV,
        ],
        data_dir,
    )
    scores = sorted((tmp_path / "sweep").rglob("score.json"))
    assert len(scores) == 2, proc.stdout  # two jobs, one per lr
    assert "joblib" in (proc.stdout + proc.stderr).lower()
    (tuned,) = (tmp_path / "tuned").glob("*.yaml")
    best = yaml.safe_load(tuned.read_text())["cosine"]
    results = [json.loads(p.read_text()) for p in scores]
    winner = min(results, key=lambda r: r["score"])
    assert best["lr"] == winner["params"]["lr"]
    assert "test" not in json.dumps(results)  # tuning never sees the test set


def test_submitit_local_runs_a_job(data_dir, tmp_path):
    run(
        "tune.py",
        [
            "-m",
            "launcher=submitit_local",
            "model=mlp",
            "baseline=constant",
            "seeds=[100]",
            f"tuned_dir={tmp_path / 'tuned'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *TINY_ENV,
        ],
        data_dir,
    )
    (score,) = (tmp_path / "sweep").rglob("score.json")
    assert list((tmp_path / "sweep").rglob("*submitit*")) or list((tmp_path / "sweep").rglob("*.pkl"))
    # The job logged its score to an offline W&B run in its own folder.
    (run_dir,) = score.parent.glob("wandb/offline-run-*")
    summary = read_offline_summary(run_dir)
    assert summary["tune/score"] == pytest.approx(json.loads(score.read_text())["score"])


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
