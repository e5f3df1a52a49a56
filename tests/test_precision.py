"""Precision switch and the per-device evaluation chunk: defaults keep every stored identity."""

from __future__ import annotations

import numpy as np
import pytest

from rlsched.bench.harness import env_identity
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.env.vector import LRControlVecEnv


def test_eval_chunk_defaults_per_model_and_device_keep_mlp_identities():
    mlp = EnvConfig.from_kwargs(model="mlp")
    assert mlp.eval_batch_size == 2000  # the old default: every stored MLP result keeps its identity
    assert env_identity({"model": "mlp"}) == env_identity({"model": "mlp", "eval_batch_size": 2000})
    assert EnvConfig.from_kwargs(model="cnn").eval_batch_size == 128  # activations that stay in a CPU's cache
    assert EnvConfig.from_kwargs(model="cnn", eval_batch_size=64).eval_batch_size == 64


def test_precision_is_validated_and_fp32_is_the_default_identity():
    assert EnvConfig.from_kwargs(precision="fp32").precision is None
    assert env_identity({"precision": "fp32"}) == env_identity({})
    assert "precision" not in EnvConfig.from_kwargs().to_dict()
    assert env_identity({"precision": "bf16"}) != env_identity({})
    with pytest.raises(ValueError, match="precision"):
        EnvConfig.from_kwargs(precision="fp16")


def test_bf16_trains_in_both_envs_and_changes_the_numbers(tiny_env_kwargs):
    exact, bf16 = LRControlEnv(**tiny_env_kwargs), LRControlEnv(**{**tiny_env_kwargs, "precision": "bf16"})
    outs = []
    for env in (exact, bf16):
        env.reset(seed=0)
        *_, info = env.step_lr(0.01)
        outs.append(info["val_loss"])
    assert np.isfinite(outs).all() and outs[0] != outs[1] and abs(outs[0] - outs[1]) < 0.05
    venv = LRControlVecEnv({**tiny_env_kwargs, "precision": "bf16"}, 2)
    venv.reset_to([0, 1])
    _, _, _, infos = venv.step_lrs([0.01, 0.01])
    assert infos[0]["val_loss"] == pytest.approx(outs[1], abs=0.02)
