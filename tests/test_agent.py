"""PPO end to end on real data: train, save, load, benchmark; resume; W&B files; artifact errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from stable_baselines3.common.callbacks import BaseCallback

from rlsched.bench.evaluate import evaluate_task
from rlsched.bench.harness import run_episode
from rlsched.control.artifact import ArtifactError, load_artifact
from rlsched.control.learned import LearnedController
from rlsched.env.lr_control import LRControlEnv
from rlsched.tracking import Tracker, read_offline_history
from rlsched.train.agent import train_controller, validate_agent_config


def tiny_agent(**overrides) -> dict:
    agent = {
        "algo": "ppo",
        "policy": "MlpPolicy",
        "n_envs": 2,
        "vec_env": "dummy",
        "total_timesteps": 80,
        "checkpoint_every": 20,
        "eval_every": 40,
        "eval_episodes": 1,
        "resume": True,
        "ppo": {
            "n_steps": 10,
            "batch_size": 20,
            "n_epochs": 2,
            "gamma": 1.0,
            "learning_rate": 3e-3,
            "ent_coef": 0.1,
            "policy_kwargs": {"net_arch": [16]},
        },
    }
    agent.update(overrides)
    return agent


@pytest.fixture
def train_kw(tiny_env_kwargs) -> dict:
    return {**tiny_env_kwargs, "test_eval": False}


def test_ppo_train_save_load_benchmark_with_wandb(train_kw, tiny_env_kwargs, tmp_path):
    tracker = Tracker(backend="wandb", mode="offline", dir=tmp_path, job_type="train", group="test")
    run_dir = tracker.run_dir
    artifact = train_controller(train_kw, tiny_agent(), tmp_path, seed=0, tracker=tracker)
    tracker.finish()
    # One artifact folder: model, VecNormalize statistics, env config, metadata.
    for f in ("model.zip", "vecnormalize.pkl", "env_config.json", "meta.json"):
        assert (artifact / f).is_file()
    meta = json.loads((artifact / "meta.json").read_text())
    assert meta["feature_names"] == list(LRControlEnv(**train_kw).feature_names)
    assert meta["timesteps_this_run"] == 80 and meta["env_steps_per_s"] > 0
    # The offline W&B run holds PPO losses and trainee curves.
    rows = read_offline_history(run_dir)
    keys = set().union(*rows)
    for k in (
        "controller/policy_gradient_loss",
        "controller/value_loss",
        "trainee/val_loss",
        "trainee/lr",
        "trainee/final_val_loss",
        "trainee/episode_return",
    ):
        assert k in keys, k
    vals = [r["trainee/val_loss"] for r in rows if "trainee/val_loss" in r]
    assert len(vals) >= 40 and all(0 < v < 10 for v in vals)
    # Load by path and run against baselines through the harness.
    specs = {"constant": {"kind": "constant", "lr": 0.01}}
    evaluate_task(
        tiny_env_kwargs,
        ["constant"],
        specs,
        {"ppo": artifact},
        [0, 1],
        tmp_path / "bench",
        title="t",
        use_tuned=False,
        progress=False,
    )
    results = pd.read_csv(tmp_path / "bench" / "results.csv")
    assert set(results["controller"]) == {"ppo", "constant"} and len(results) == 4
    assert results["test_loss"].notna().all()
    # The learned controller is deterministic: the same seed twice gives the same trajectory.
    env = LRControlEnv(**tiny_env_kwargs)
    ctrl = LearnedController(artifact)
    a, b = run_episode(env, ctrl, 3), run_episode(env, ctrl, 3)
    pd.testing.assert_frame_equal(a.curves, b.curves)


class _Interrupt(BaseCallback):
    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at:
            raise KeyboardInterrupt
        return True


def test_checkpoint_selection_scores_the_same_selection_trainees(train_kw, tmp_path):
    """Checkpoints are compared on the same trainee runs, so "best" measures the policy, not the draw; the
    selection trainees are never training trainees; a resumed run keeps the best score and the history."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import VecNormalize

    from rlsched.train.agent import make_vec_env, selection_seeds, training_seeds
    from rlsched.train.selection import CheckpointSelection

    agent = tiny_agent(eval_episodes=2)
    sel, pool = selection_seeds(agent), training_seeds(agent)
    assert not set(sel) & set(pool) and len(sel) == 2
    model = PPO("MlpPolicy", VecNormalize(make_vec_env(train_kw, 1, "dummy", 0, pool)), n_steps=10, batch_size=10)
    model.set_logger(configure(None, []))
    cb = CheckpointSelection(train_kw, sel, every=10, out_dir=tmp_path)
    cb.init_callback(model)
    scores = [cb.evaluate() for _ in range(3)]
    assert len(set(scores)) == 1 and scores[0] > 0  # the same policy on the same trainees: the same score
    log = pd.read_csv(tmp_path / "eval" / "selection.csv")
    assert len(log) == 3 and log["best"].tolist() == [True, False, False]
    assert (tmp_path / "best" / "best_model.zip").is_file()
    resumed = CheckpointSelection(train_kw, sel, every=10, out_dir=tmp_path)
    resumed.init_callback(model)
    assert resumed.best_score == pytest.approx(scores[0])
    resumed.evaluate()  # not better: history appended, best not overwritten
    log = pd.read_csv(tmp_path / "eval" / "selection.csv")
    assert len(log) == 4 and log["best"].sum() == 1


def test_resume_after_interruption_reaches_total_timesteps(train_kw, tmp_path):
    agent = tiny_agent(eval_every=0, total_timesteps=100)
    with pytest.raises(KeyboardInterrupt):
        train_controller(train_kw, agent, tmp_path, extra_callbacks=[_Interrupt(at=66)])
    ckpts = sorted((tmp_path / "checkpoints").glob("step_*"))
    assert ckpts, "an interruption must leave a checkpoint behind"
    # At most one checkpoint interval (20 steps) of work lost.
    assert int(ckpts[-1].name.split("_")[1]) >= 66 - 20
    artifact = train_controller(train_kw, agent, tmp_path)
    assert load_artifact(artifact).model.num_timesteps == 100
    assert json.loads((artifact / "meta.json").read_text())["timesteps_this_run"] < 100


def test_finished_run_keeps_its_artifact(train_kw, tmp_path):
    """Re-running a finished training (e.g. `make demo` twice) must not rewrite the artifact: its bytes are
    the identity under which the harness skips the benchmark runs it already has."""
    agent = tiny_agent(eval_every=0, total_timesteps=20)
    artifact = train_controller(train_kw, agent, tmp_path)
    before = {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in artifact.iterdir()}
    identity = LearnedController(artifact).identity()
    assert train_controller(train_kw, agent, tmp_path) == artifact
    assert {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in artifact.iterdir()} == before
    assert LearnedController(artifact).identity() == identity
    # Asking for more timesteps does train on, and writes a new artifact.
    more = train_controller(train_kw, {**agent, "total_timesteps": 40}, tmp_path)
    assert load_artifact(more).model.num_timesteps == 40


def test_recurrent_ppo_trains_and_runs(train_kw, tmp_path):
    agent = tiny_agent(
        algo="recurrent_ppo",
        policy="MlpLstmPolicy",
        total_timesteps=40,
        eval_every=0,
        ppo={
            "n_steps": 10,
            "batch_size": 20,
            "n_epochs": 1,
            "policy_kwargs": {"net_arch": [16], "lstm_hidden_size": 8},
        },
    )
    artifact = train_controller(train_kw, agent, tmp_path)
    ctrl = LearnedController(artifact)
    res = run_episode(LRControlEnv(**train_kw), ctrl, 0)
    assert res.final["steps"] == train_kw["episode_steps"]


def test_corrupt_or_mismatched_artifact_is_a_clear_error(train_kw, tmp_path):
    artifact = train_controller(train_kw, tiny_agent(total_timesteps=20, eval_every=0), tmp_path / "a")
    env = LRControlEnv(**{**train_kw, "features": ["val_loss", "train_loss", "log10_lr"]})
    with pytest.raises(ArtifactError, match="observation features"):
        LearnedController(artifact).reset(env, None, {})
    env = LRControlEnv(**{**train_kw, "action": "discrete"})
    with pytest.raises(ArtifactError, match="action type"):
        LearnedController(artifact).reset(env, None, {})
    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    data = (broken / "model.zip").read_bytes()
    (broken / "model.zip").write_bytes(data[: len(data) // 3])
    with pytest.raises(ArtifactError, match=r"model\.zip"):
        load_artifact(broken)
    (broken / "vecnormalize.json").unlink()
    with pytest.raises(ArtifactError, match="lacks"):
        load_artifact(broken)
    with pytest.raises(ArtifactError, match="not a folder"):
        load_artifact(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"algo": "a2c"}, "unknown agent algo"),
        ({"policy": "CnnPolicy"}, "unknown policy"),
        ({"vec_env": "ray"}, "unknown vec_env"),
        ({"n_envs": 0}, "n_envs"),
    ],
)
def test_bad_agent_config_fails_before_training(change, message):
    with pytest.raises(ValueError, match=message):
        validate_agent_config(tiny_agent(**change))


def test_unwritable_checkpoint_folder_fails_before_training(train_kw, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="cannot be written"):
        train_controller(train_kw, tiny_agent(), blocker / "run")


def test_bad_env_config_fails_before_training(train_kw, tmp_path):
    with pytest.raises(ValueError, match="unknown reward"):
        train_controller({**train_kw, "reward": "accuracy"}, tiny_agent(), tmp_path)
    assert not any(Path(tmp_path).iterdir())


def test_subprocess_vec_env_trains(train_kw, tmp_path):
    agent = tiny_agent(vec_env="subproc", total_timesteps=40, eval_every=0)
    artifact = train_controller(train_kw, agent, tmp_path)
    assert load_artifact(artifact).model.num_timesteps == 40
