"""A training process that is stopped from outside: SIGTERM saves like Ctrl-C; after kill -9 a resume keeps
the history and the best checkpoint so far. Each test runs a real training in a child process."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from stable_baselines3 import PPO

from rlsched.train.agent import train_controller

REPO = Path(__file__).resolve().parents[1]
# A tiny training slowed down by a sleeping callback, so that a signal reliably lands mid-training.
CHILD = """
import json, sys, time
from stable_baselines3.common.callbacks import BaseCallback
from rlsched.train.agent import train_controller

class Slow(BaseCallback):
    def _on_step(self):
        time.sleep(0.05)
        return True

env, agent, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
train_controller(env, agent, out, extra_callbacks=[Slow()])
"""
AGENT = {
    "algo": "ppo",
    "policy": "MlpPolicy",
    "n_envs": 2,
    "vec_env": "dummy",
    "total_timesteps": 2000,
    "checkpoint_every": 20,
    "eval_every": 20,
    "eval_episodes": 1,
    "progress": False,
    "ppo": {"n_steps": 10, "batch_size": 20, "n_epochs": 1, "gamma": 1.0, "policy_kwargs": {"net_arch": [8]}},
}


@pytest.fixture
def train_kw(tiny_env_kwargs) -> dict:
    return {**tiny_env_kwargs, "test_eval": False}


def start_child(env: dict, agent: dict, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(env), json.dumps(agent), str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def data_rows(path: Path) -> int:
    """Complete data lines of a CSV file (0 if absent)."""
    if not path.is_file():
        return 0
    text = path.read_text()
    return max(0, text[: text.rfind("\n") + 1].count("\n") - 1)


def wait_until(proc: subprocess.Popen, ready, timeout: float = 300.0) -> None:
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"child ended early ({proc.returncode}):\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("child made no progress in time")
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_nonzero(train_kw, tmp_path):
    # No periodic checkpoint before the signal: only the save-on-interrupt path can leave one behind.
    agent = {**AGENT, "checkpoint_every": 100_000, "eval_every": 0}
    proc = start_child(train_kw, agent, tmp_path)
    # Two rows in progress.csv: the second rollout has started, so there is an updated policy to save.
    wait_until(proc, lambda: data_rows(tmp_path / "sb3_log" / "progress.csv") >= 2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output[-2000:]
    assert "interrupted: saved" in output, output[-2000:]
    (ckpt,) = sorted((tmp_path / "checkpoints").glob("step_*"))
    assert int(ckpt.name.split("_")[1]) >= 20 and (ckpt / "model.zip").is_file()
    assert (ckpt / "vecnormalize.pkl").is_file()


@pytest.mark.slow
def test_resume_after_kill_keeps_history_and_the_best_checkpoint(train_kw, tmp_path, capsys):
    proc = start_child(train_kw, AGENT, tmp_path)
    selection_path, progress_path = tmp_path / "eval" / "selection.csv", tmp_path / "sb3_log" / "progress.csv"
    wait_until(
        proc,
        lambda: data_rows(selection_path) >= 4 and len(list((tmp_path / "checkpoints").glob("step_*"))) >= 1,
    )
    proc.kill()  # SIGKILL: nothing is saved on the way out
    proc.communicate(timeout=60)
    progress_text, selection_text = progress_path.read_text(), selection_path.read_text()
    progress_text = progress_text[: progress_text.rfind("\n") + 1]
    selection_text = selection_text[: selection_text.rfind("\n") + 1]
    killed_at = max(int(p.name.split("_")[1]) for p in (tmp_path / "checkpoints").glob("step_*"))
    total = killed_at + 60

    artifact = train_controller(train_kw, {**AGENT, "total_timesteps": total}, tmp_path)
    out = capsys.readouterr().out
    assert f"at {killed_at:,} of {total:,} timesteps" in out
    assert "[selection] resumed: best validation loss so far" in out

    # Every complete row written before the kill is still there, in place; the resumed run appended after it.
    progress_before, progress_after = pd.read_csv(io.StringIO(progress_text)), pd.read_csv(progress_path)
    kept = progress_after.iloc[: len(progress_before)][list(progress_before.columns)]
    pd.testing.assert_frame_equal(kept, progress_before, check_dtype=False)
    assert len(progress_after) > len(progress_before)
    assert progress_after["time/total_timesteps"].iloc[-1] == total
    assert selection_path.read_text().startswith(selection_text)
    selection = pd.read_csv(selection_path)
    assert len(selection) > selection_text.count("\n") - 1
    # best/ holds the best policy over the whole history: the bests only ever improve, and the last one is
    # the policy in best/ and in the artifact.
    bests = selection[selection["best"]]
    assert bests["score"].is_monotonic_decreasing and bests["score"].iloc[-1] == selection["score"].min()
    best_model = PPO.load(tmp_path / "best" / "best_model.zip", device="cpu")
    assert best_model.num_timesteps == bests["timesteps"].iloc[-1]
    meta = json.loads((artifact / "meta.json").read_text())
    assert meta["artifact_from"] == "best" and meta["num_timesteps"] == best_model.num_timesteps
