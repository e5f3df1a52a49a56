"""experiments/train.py as a user runs it: progress lines, a closing line, and a sweep that names one out_dir
for two seeds stopping on its second job instead of handing it the first job's controller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from tiny import hydra_env

from rlsched import entry
from rlsched.entry import task_wrapper, tracked

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "model=mlp",
    "logger=none",
    "benchmark.enabled=false",
    *hydra_env(episode_steps=3),
    "agent.total_timesteps=24",
    "agent.n_envs=1",
    "agent.ppo.n_steps=6",
    "agent.ppo.batch_size=6",
    "agent.ppo.n_epochs=1",
    "agent.checkpoint_every=12",
    "agent.eval_every=12",
    "agent.eval_episodes=1",
    "agent.progress_every_s=0",
]


def test_a_sweep_of_two_seeds_into_one_out_dir_stops_the_second_job(data_dir, tmp_path):
    out = tmp_path / "run"
    hydra_dir = Path(tempfile.mkdtemp(prefix="rlsched-hydra-"))
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "train.py"),
            "-m",
            "seed=0,1",
            f"out_dir={out}",
            *TINY,
            f"hydra.sweep.dir={hydra_dir}",
        ],
        cwd=REPO,
        env={**os.environ, "RLSCHED_DATA_DIR": str(data_dir), "WANDB_SILENT": "true"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    # Job 0 trained, with progress lines and a closing line naming its outputs.
    assert "[train] training to 24 timesteps" in proc.stdout, text[-3000:]
    assert "[train] 24/24 timesteps (100%)" in proc.stdout
    assert "[train] done after" in proc.stdout and f"outputs in {out}" in proc.stdout
    # Job 1 stopped before any work, naming what differs and what to do.
    assert "seed: 0 -> 1" in text and "another out_dir" in text and "seed${seed}" in text, text[-3000:]
    assert "[train] stopped after 0s by RunConfigError" in proc.stderr
    assert json.loads((out / "run_config.json").read_text())["seed"] == 0
    assert json.loads((out / "controller" / "meta.json").read_text())["seed"] == 0


class _Cfg(dict):
    """Enough of a DictConfig for task_wrapper: `.get`."""


class _StubTracker:
    def __init__(self, **kwargs):
        self.finished = 0

    def finish(self) -> None:
        self.finished += 1


def test_task_wrapper_finishes_trackers_and_reports_how_the_task_ended(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(entry, "tracker_from_config", lambda *a, **kw: _StubTracker())
    opened: list[_StubTracker] = []

    @task_wrapper
    def failing(cfg) -> None:
        with tracked({}, job_type="t", config={}, out_dir=tmp_path) as tracker:
            opened.append(tracker)
        opened.append(entry.open_tracker({}, job_type="t", config={}, out_dir=tmp_path))  # left open
        (tmp_path / "partial.txt").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing(_Cfg(task_name="demo", out_dir=str(tmp_path)))
    assert [t.finished for t in opened] == [1, 1]
    err = capsys.readouterr().err
    assert err.startswith("[demo] stopped after") and f"by RuntimeError; out_dir {tmp_path}" in err

    @task_wrapper
    def fine(cfg) -> int:
        return 7

    assert fine(_Cfg(task_name="demo", out_dir=str(tmp_path / "none"))) == 7
    out = capsys.readouterr().out
    assert out.startswith("[demo] done after") and "nothing written" in out
