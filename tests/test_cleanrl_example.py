"""examples/cleanrl_ppo.py: CleanRL-style PPO on the Gymnasium vector entry point, at tiny sizes."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cleanrl():
    spec = importlib.util.spec_from_file_location("cleanrl_ppo", REPO / "examples" / "cleanrl_ppo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cleanrl_ppo"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_trains_on_the_vector_entry_point_logging_every_episode(cleanrl, tiny_env_kwargs, tmp_path):
    steps = tiny_env_kwargs["episode_steps"]  # 5: with the reset step, an episode takes 6 vector steps
    args = cleanrl.parse_args(
        ["--num-envs", "2", "--num-steps", "6", "--total-timesteps", "24", "--update-epochs", "1",
         "--num-minibatches", "2", "--out", str(tmp_path / "summary.json")]
    )  # fmt: skip
    args.env_kwargs = tiny_env_kwargs
    summary = cleanrl.train(args)
    assert summary["autoreset_mode"] == "NextStep" and summary["global_step"] == 24
    # 2 rows x 2 iterations x one whole episode each: every one logged, with its length and a finite return.
    assert summary["episode_lengths"] == [steps] * 4
    assert len(summary["episode_returns"]) == 4 and all(math.isfinite(r) for r in summary["episode_returns"])
    assert all(r < 0 for r in summary["episode_returns"])  # neg_val_loss: minus a positive loss every step
    assert summary["trained_transitions"] == 24 - 4  # the 4 reset steps (one per episode) left out
    assert (tmp_path / "summary.json").is_file()


def test_next_step_autoreset_transitions_are_not_trained_on(cleanrl):
    """Gymnasium's SyncVectorEnv autoresets on the next step: that step (action ignored) is masked out."""
    args = cleanrl.parse_args(
        ["--env-id", "Pendulum-v1", "--env-kwargs", '{"max_episode_steps": 5}', "--vectorization-mode", "sync",
         "--num-envs", "2", "--num-steps", "6", "--total-timesteps", "12", "--update-epochs", "1"]
    )  # fmt: skip
    summary = cleanrl.train(args)
    assert summary["autoreset_mode"] == "NextStep"
    assert summary["episode_lengths"] == [5, 5]  # the reset step does not count towards an episode
    assert summary["trained_transitions"] == 12 - 2  # one reset transition per row left out
