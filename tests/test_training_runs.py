"""A training run's folder: its identity (run_config.json), resume that keeps history, progress lines."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from stable_baselines3.common.callbacks import BaseCallback

from rlsched.control.artifact import load_artifact
from rlsched.tracking import Tracker, read_offline_history, wait_for_run_file
from rlsched.train.agent import train_controller
from rlsched.train.callbacks import AppendingCSVOutput
from rlsched.train.checkpoints import RUN_CONFIG, RunConfigError

BASE_AGENT = {
    "algo": "ppo",
    "policy": "MlpPolicy",
    "n_envs": 2,
    "vec_env": "dummy",
    "total_timesteps": 20,
    "checkpoint_every": 20,
    "eval_every": 0,
    "eval_episodes": 1,
    "resume": True,
    "progress": False,
    "ppo": {"n_steps": 10, "batch_size": 20, "n_epochs": 1, "gamma": 1.0, "policy_kwargs": {"net_arch": [8]}},
}


def agent_with(**overrides) -> dict:
    return {**BASE_AGENT, **overrides}


@pytest.fixture
def train_kw(tiny_env_kwargs) -> dict:
    return {**tiny_env_kwargs, "test_eval": False}


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


class _Interrupt(BaseCallback):
    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at:
            raise KeyboardInterrupt
        return True


def test_a_changed_config_in_the_same_folder_stops_before_any_work(train_kw, tmp_path):
    """The issue's repro: a second run with other env settings and seed in the same out_dir used to print
    "training already finished" and hand back the first run's controller."""
    train_controller(train_kw, agent_with(), tmp_path, seed=0)
    stored = json.loads((tmp_path / RUN_CONFIG).read_text())
    assert stored["seed"] == 0 and stored["env"]["episode_steps"] == 5 and "data_dir" not in stored["env"]
    before = snapshot(tmp_path)
    requests = [  # each: (env, agent, seed)
        ({**train_kw, "episode_steps": 3, "reward": "final_only"}, agent_with(), 7),
        (train_kw, agent_with(ppo={**BASE_AGENT["ppo"], "learning_rate": 0.01}), 0),
        (train_kw, agent_with(eval_every=10), 0),
    ]
    messages = [
        [r"env\.episode_steps: 5 -> 3", r'env\.reward: "neg_val_loss" -> "final_only"', r"seed: 0 -> 7"],
        [r"agent\.ppo\.learning_rate: <absent> -> 0\.01"],
        [r"agent\.eval_every: 0 -> 10"],
    ]
    for (env, agent, seed), expected in zip(requests, messages, strict=True):
        with pytest.raises(RunConfigError, match="another out_dir") as err:
            train_controller(env, agent, tmp_path, seed=seed)
        for pattern in expected:
            assert re.search(pattern, str(err.value)), (pattern, str(err.value))
        assert snapshot(tmp_path) == before, "a refused request must not write anything"
    # An env option added to the code since the run started, left at its default, changes nothing.
    legacy = json.loads((tmp_path / RUN_CONFIG).read_text())
    assert legacy["env"].pop("scale_per") == "optimizer_step"
    (tmp_path / RUN_CONFIG).write_text(json.dumps(legacy))
    assert train_controller(train_kw, agent_with(), tmp_path, seed=0) == tmp_path / "controller"
    # Where it runs and how it is watched are not the run's identity: the finished run is reused.
    same = agent_with(device="cpu", progress=True, checkpoint_every=40, vec_env="dummy")
    assert train_controller({**train_kw, "verify_checksums": False}, same, tmp_path, seed=0) == tmp_path / "controller"
    # Starting from scratch in a folder that holds a run would mix two runs' logs and best checkpoints.
    with pytest.raises(RunConfigError, match="resume=false"):
        train_controller(train_kw, agent_with(resume=False), tmp_path, seed=0)
    # A budget below what the run has already trained is another run too.
    more = train_controller(train_kw, agent_with(total_timesteps=40), tmp_path, seed=0)
    assert load_artifact(more).model.num_timesteps == 40
    assert json.loads((tmp_path / RUN_CONFIG).read_text())["agent"]["total_timesteps"] == 40
    with pytest.raises(RunConfigError, match="already trained for 40 timesteps"):
        train_controller(train_kw, agent_with(total_timesteps=20), tmp_path, seed=0)


def test_a_folder_from_before_run_configs_is_adopted_with_a_warning(train_kw, tmp_path, capsys):
    train_controller(train_kw, agent_with(), tmp_path, seed=3)
    (tmp_path / RUN_CONFIG).unlink()
    # What the old folder's artifact records (env, seed) is still checked.
    with pytest.raises(RunConfigError, match=r"env\.batch_size: 100 -> 50"):
        train_controller({**train_kw, "batch_size": 50}, agent_with(), tmp_path, seed=3)
    with pytest.raises(RunConfigError, match=r"seed: 3 -> 4"):
        train_controller(train_kw, agent_with(), tmp_path, seed=4)
    with pytest.warns(UserWarning, match="adopting"):
        train_controller(train_kw, agent_with(), tmp_path, seed=3)
    assert "adopting" in capsys.readouterr().out
    assert json.loads((tmp_path / RUN_CONFIG).read_text())["seed"] == 3


def test_resume_appends_to_the_logs_keeps_the_best_and_logs_the_resume(train_kw, tmp_path, capsys):
    agent = agent_with(total_timesteps=100, checkpoint_every=20, eval_every=20)
    with pytest.raises(KeyboardInterrupt):
        train_controller(train_kw, agent, tmp_path, extra_callbacks=[_Interrupt(at=66)])
    progress_path, selection_path = tmp_path / "sb3_log" / "progress.csv", tmp_path / "eval" / "selection.csv"
    progress_before = pd.read_csv(progress_path)
    assert len(progress_before) >= 3
    # Make the best score so far unbeatable: any evaluation after the resume is then worse, and must neither
    # replace best/ nor count as a best.
    selection = pd.read_csv(selection_path)
    selection.loc[selection["best"], "score"] = 1e-9
    selection.to_csv(selection_path, index=False)
    score_path = tmp_path / "best" / "score.json"
    score_path.write_text(json.dumps({**json.loads(score_path.read_text()), "score": 1e-9}))
    selection_before, best_before = pd.read_csv(selection_path), digest(tmp_path / "best" / "best_model.zip")
    capsys.readouterr()

    tracker = Tracker(backend="wandb", mode="offline", dir=tmp_path / "wb", job_type="train")
    run_dir = tracker.run_dir
    artifact = train_controller(train_kw, agent, tmp_path, tracker=tracker)
    tracker.finish()
    out = capsys.readouterr().out
    assert "resume: from" in out and "at 60 of 100 timesteps" in out
    assert any(r.get("controller/resumed_from_timesteps") == 60 for r in read_offline_history(run_dir))

    progress_after = pd.read_csv(progress_path)
    assert len(progress_after) > len(progress_before)
    kept = progress_after.iloc[: len(progress_before)][list(progress_before.columns)]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), progress_before, check_dtype=False)
    assert progress_after["time/total_timesteps"].iloc[-1] == 100

    selection_after = pd.read_csv(selection_path)
    pd.testing.assert_frame_equal(selection_after.iloc[: len(selection_before)], selection_before)
    new_rows = selection_after.iloc[len(selection_before) :]
    assert len(new_rows) >= 2 and not new_rows["best"].any() and new_rows["timesteps"].min() > 60
    assert digest(tmp_path / "best" / "best_model.zip") == best_before
    assert json.loads((artifact / "meta.json").read_text())["artifact_from"] == "best"


def test_progress_lines_are_printed(train_kw, tmp_path, capsys):
    agent = agent_with(total_timesteps=40, eval_every=20, progress=True, progress_every_s=0)
    train_controller(train_kw, agent, tmp_path)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[train]")]
    assert lines[0] == "[train] training to 40 timesteps"
    assert any(line.startswith("[train] 20/40 timesteps (50%)") for line in lines)
    last = lines[-1]
    assert last.startswith("[train] 40/40 timesteps (100%)")
    for pattern in (r"\d+ episodes this run", r"[\d.]+ env steps/s", r"best selection val loss \d+\.\d{4}", "ETA 0s"):
        assert re.search(pattern, last), (pattern, last)
    train_controller(train_kw, agent_with(), tmp_path / "quiet")
    assert "[train]" not in capsys.readouterr().out


def test_appending_csv_output_keeps_rows_widens_and_drops_a_partial_line(tmp_path):
    path = tmp_path / "progress.csv"
    out = AppendingCSVOutput(path)
    out.write({"time/total_timesteps": 10, "rollout/ep_rew_mean": -1.5}, {})
    out.write({"time/total_timesteps": 20, "train/loss": 0.25, "rollout/ep_rew_mean": -1.0}, {})
    out.close()
    path.write_text(path.read_text() + "30,-0.")  # a kill in the middle of an append
    resumed = AppendingCSVOutput(path)
    resumed.write({"time/total_timesteps": 30, "train/loss": 0.5, "note": "a,b"}, {"note": ("stdout",)})
    resumed.close()
    df = pd.read_csv(path)
    assert list(df.columns) == ["rollout/ep_rew_mean", "time/total_timesteps", "train/loss", "note"]
    assert df["time/total_timesteps"].tolist() == [10, 20, 30]
    assert df["train/loss"].isna().tolist() == [True, False, False] and df["note"].iloc[2] == "a,b"


def test_a_run_config_without_any_training_is_replaced(train_kw, tmp_path):
    """A run that failed while starting (say, a wrong data path) left only run_config.json: nothing to resume
    and nothing to mix up, so a corrected request may use the folder."""
    (tmp_path / RUN_CONFIG).write_text(json.dumps({"env": {"model": "cnn"}, "agent": {}, "seed": 5}))
    train_controller(train_kw, agent_with(), tmp_path, seed=0)
    assert json.loads((tmp_path / RUN_CONFIG).read_text())["seed"] == 0


def test_a_finished_tracker_leaves_a_whole_run_file(tmp_path):
    """W&B's finish() can return before its writer has flushed the file's last block (seen under load: the last
    history row missing). Tracker.finish waits for the closing `exit` record; a cut file is recognised."""
    tracker = Tracker(backend="wandb", mode="offline", dir=tmp_path / "wb")
    run_dir = tracker.run_dir
    for step in range(50):
        tracker.log({"x": float(step)}, step=step)
    tracker.finish()
    assert wait_for_run_file(run_dir, timeout_s=0)
    assert read_offline_history(run_dir)[-1]["x"] == 49.0
    (run_file,) = run_dir.glob("run-*.wandb")
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / run_file.name).write_bytes(run_file.read_bytes()[:-20])
    assert not wait_for_run_file(cut, timeout_s=0.3)


def test_progress_eta_ignores_the_evaluation_before_the_first_step(monkeypatch):
    """The starting policy's selection episodes run before step 1; counting them made the first ETA ~20 h."""
    import rlsched.train.callbacks as cb

    clock = iter([0.0, 600.0, 601.0])  # training start; first step after a 10-min evaluation; next line
    monkeypatch.setattr(cb.time, "monotonic", lambda: next(clock))
    lines = cb.ProgressLines(total_timesteps=1000, every_s=1e9)
    lines.locals = {"dones": []}
    lines.num_timesteps = 0
    lines._on_training_start()
    lines.num_timesteps = 2
    lines._on_step()  # t=600: the rate clock starts here
    lines.num_timesteps = 102
    line = lines.line(next(clock))  # 100 steps in 1 s
    assert "100.0 env steps/s" in line and "ETA 9s" in line
