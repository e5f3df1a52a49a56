"""The entry points' output folders: no empty folder after a missing-data failure; no reuse across env configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlsched.bench.evaluate import evaluate_task
from rlsched.env.data import DataNotFoundError

REPO = Path(__file__).resolve().parents[1]
TINY_ENV = [
    "model=mlp",
    "env.train_size=1000",
    "env.val_size=300",
    "env.val_probe=100",
    "env.test_size=300",
    "env.batch_size=100",
    "env.episode_steps=3",
    "env.eval_batch_size=1000",
]


def run(script: str, args: list[str], data_root: Path, hydra_dir: Path, ok: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "RLSCHED_DATA_DIR": str(data_root), "WANDB_SILENT": "true"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "experiments" / script), *args, "logger=none", f"hydra.run.dir={hydra_dir}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (proc.returncode == 0) == ok, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_evaluate_task_without_data_creates_no_folder(tiny_env_kwargs, tmp_path):
    empty = tmp_path / "no_data"
    empty.mkdir()
    out = tmp_path / "out"
    env_kw = {**tiny_env_kwargs, "data_dir": str(empty)}
    with pytest.raises(DataNotFoundError):
        evaluate_task(env_kw, ["constant"], {"constant": {"lr": 0.01}}, {}, [0], out, title="t", use_tuned=False)
    assert not out.exists()


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("benchmark.py", ["controllers=[constant]", "seeds=[0]"]),
        ("transfer.py", [f"artifact={REPO / 'docs/results/demo_controller'}", "controllers=[constant]", "seeds=[0]"]),
    ],
)
def test_missing_data_leaves_no_output_folder(script, args, tmp_path):
    empty = tmp_path / "no_data"
    empty.mkdir()
    out = tmp_path / "out"
    proc = run(script, [*args, f"out_dir={out}"], empty, tmp_path / "hydra", ok=False)
    assert "not found under" in proc.stderr and "RLSCHED_DATA_DIR" in proc.stderr
    assert not out.exists()


def test_benchmark_rerun_with_other_env_values_is_refused(data_dir, tmp_path):
    out = tmp_path / "bench"
    common = ["controllers=[constant]", "seeds=[0]", "use_tuned=false", "progress=false", f"out_dir={out}"]
    run("benchmark.py", [*TINY_ENV, *common], data_dir, tmp_path / "h1", ok=True)
    table = (out / "table.md").read_text()
    proc = run("benchmark.py", [*TINY_ENV, *common, "env.episode_steps=2"], data_dir, tmp_path / "h2", ok=False)
    assert "episode_steps: 3 there, 2 now" in proc.stderr and "new out_dir" in proc.stderr
    assert (out / "table.md").read_text() == table  # the old table was not relabelled or rewritten
