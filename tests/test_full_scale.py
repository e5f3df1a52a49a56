"""Full-size runs (minutes on a CPU): `make test-slow`."""

from __future__ import annotations

import numpy as np
import pytest

from rlsched.env.lr_control import EnvConfig, LRControlEnv


@pytest.mark.slow
def test_paper_defaults_on_full_fashion_mnist(data_dir):
    """The paper's setting at full size: CNN, 50k/10k split, full validation every step, full test set."""
    env = LRControlEnv(data_dir=str(data_dir), val_probe=10_000, episode_steps=3, reward="paper")
    assert env.cfg.model == "cnn" and env.cfg.batch_size == 1000 and env.cfg.initial_lr == 0.01
    assert env._splits.train_size == 50_000 and len(env._splits.y_val) == 10_000 and len(env._splits.y_test) == 10_000
    obs, info = env.reset(seed=0)
    losses = [info["val_loss"]]
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(np.array([0.0], np.float32))
        assert env.observation_space.contains(obs)
        assert reward == pytest.approx(2.0 - info["val_loss"])
        losses.append(info["val_loss"])
        done = terminated or truncated
    assert terminated and not truncated
    assert losses[-1] < losses[0]  # three Adam steps at 0.01 do reduce the loss of an untrained CNN
    assert 0.0 < info["test_accuracy"] <= 1.0 and np.isfinite(info["test_loss"])


@pytest.mark.slow
def test_every_model_on_every_real_dataset(data_dir):
    for dataset in ("fashion_mnist", "mnist"):
        for model, kwargs in (("cnn", {}), ("mlp", {}), ("resnet", {"depth": 8, "width": 8})):
            kw = {
                **EnvConfig().to_dict(),
                "dataset": dataset,
                "model": model,
                "model_kwargs": kwargs,
                "data_dir": str(data_dir),
                "train_size": 5000,
                "val_size": 1000,
                "val_probe": 500,
                "test_size": 1000,
                "batch_size": 250,
                "episode_steps": 4,
                "steps_per_action": 2,
            }
            env = LRControlEnv(**kw)
            obs, _ = env.reset(seed=1)
            for t in range(4):
                obs, _, terminated, _, info = env.step(env.action_space.sample())
                # The budget's end is terminal (the MDP fix of issue 7); nothing ends the episode before it.
                assert env.observation_space.contains(obs) and terminated == (t == 3)
            assert "test_loss" in info
