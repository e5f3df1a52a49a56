"""Per-parameter-group control (issue 9 item 3): the env's `controlled_params` and LearnedLR's `param_groups`."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from test_learned_lr import SEED, K, PlainRun, T, _untrained_artifact
from tiny import TINY_ENV

from rlsched.control.learned import LearnedController
from rlsched.env import ENV_ID
from rlsched.env.lr_control import EnvConfig, LRControlEnv

OTHER_LR = 0.002  # the body's fixed rate: apart from the controlled group's 0.01


@pytest.fixture(scope="module")
def env_kwargs(data_dir: Path) -> dict:
    """test_learned_lr's env (K > 1, a wide multiplier range), with only the MLP's output layer controlled."""
    return {
        **TINY_ENV,
        "eval_batch_size": 1000,
        "episode_steps": T,
        "steps_per_action": K,
        "scale_range": [0.8, 1.25],
        "test_eval": False,
        "final_val_eval": False,
        "data_dir": str(data_dir),
        "controlled_params": ["head"],
        "other_lr": OTHER_LR,
    }


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, env_kwargs) -> Path:
    return _untrained_artifact(tmp_path_factory.mktemp("ppo_head"), env_kwargs, "ppo")


def _weights(env: LRControlEnv) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in env.trainee.net.named_parameters()}


def test_only_the_controlled_group_follows_the_actions_and_both_train(env_kwargs):
    env = LRControlEnv(**env_kwargs)
    env.reset(seed=SEED)
    net, opt = env.trainee.net, env.trainee.opt
    head, body = opt.param_groups
    assert [id(p) for p in head["params"]] == [id(net.head.weight), id(net.head.bias)]
    assert {id(p) for p in body["params"]} == {id(p) for p in net.body.parameters()}
    lrs = []
    for action in (1.0, 1.0, -1.0):
        before = _weights(env)
        _, _, _, _, info = env.step(np.array([action], dtype=np.float32))
        after = _weights(env)
        assert head["lr"] == info["lr"] and body["lr"] == OTHER_LR
        assert all(not torch.equal(before[n], after[n]) for n in before), "a parameter group did not train"
        lrs.append(info["lr"])
    # Up twice by 1.25^K, then down by 0.8^K: the controlled rate follows the actions.
    assert lrs[0] == pytest.approx(0.01 * 1.25**K) and lrs[1] == pytest.approx(0.01 * 1.25 ** (2 * K))
    assert lrs[2] == pytest.approx(lrs[1] * 0.8**K)


@pytest.mark.parametrize(
    ("hidden", "controlled", "observed"),
    [
        ((128,), ["head"], ("head.weight", "head.bias")),  # one Linear: its weight and bias
        ((64, 32), ["body.3", "head"], ("body.3.weight", "head.weight")),  # the last two dense weights
        ((64, 32), ["body.1", "body.3"], ("body.1.weight", "body.3.weight")),  # the output layer not controlled
    ],
)
def test_observed_layers_are_the_controlled_groups(env_kwargs, hidden, controlled, observed):
    env = LRControlEnv(**{**env_kwargs, "model_kwargs": {"hidden": list(hidden)}, "controlled_params": controlled})
    obs, _ = env.reset(seed=SEED)
    params = dict(env.trainee.net.named_parameters())
    assert [id(p) for p in env.trainee.observed_params] == [id(params[n]) for n in observed]
    group = {id(p) for p in env.trainee.opt.param_groups[0]["params"]}
    assert all(id(p) in group for p in env.trainee.observed_params)
    # The observation carries their statistics.
    feature = dict(zip(env.feature_names, obs, strict=True))
    assert feature["penult_weight_mean"] == pytest.approx(params[observed[0]].mean().item(), rel=1e-4, abs=1e-7)
    assert feature["last_weight_var"] == pytest.approx(params[observed[1]].var(unbiased=False).item(), rel=1e-4)


def test_without_controlled_params_one_group_and_a_covering_prefix_set_changes_no_number(env_kwargs):
    whole = {k: v for k, v in env_kwargs.items() if k not in ("controlled_params", "other_lr")}
    runs = []
    for kw in (whole, {**whole, "controlled_params": ["body", "head"]}):
        env = LRControlEnv(**kw)
        rows = [env.reset(seed=SEED)[0]]
        assert len(env.trainee.opt.param_groups) == 1
        rows += [env.step(np.array([a], dtype=np.float32))[0] for a in (1.0, -0.5)]
        runs.append(np.array(rows))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_configs_without_the_fields_keep_their_identity(env_kwargs):
    whole = {k: v for k, v in env_kwargs.items() if k not in ("controlled_params", "other_lr")}
    d = EnvConfig.from_kwargs(**whole).to_dict()
    assert "controlled_params" not in d and "other_lr" not in d
    assert EnvConfig.from_kwargs(**env_kwargs).to_dict()["controlled_params"] == ["head"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"controlled_params": ["heads"]}, r"\['heads'\] match no parameter of MLP.*'body\.1', 'head'"),
        ({"model": "cnn", "controlled_params": ["fc3"]}, r"'fc1', 'fc2'"),
        ({"controlled_params": "head"}, "non-empty list of module names"),
        ({"controlled_params": []}, "non-empty list of module names"),
        ({"controlled_params": ["head", "head"]}, "distinct"),
        ({"model": "cnn", "controlled_params": ["features"]}, "no dense .2-D. weight"),
        ({"controlled_params": ["head.weight"]}, r"one dense weight \(head.weight\) without its bias"),
        ({"controlled_params": None, "other_lr": 0.1}, "set controlled_params or leave other_lr null"),
        ({"other_lr": 0.0}, "other_lr must be a finite rate > 0"),
        ({"other_lr": "0.1"}, "other_lr must be a number or null"),
    ],
)
def test_bad_per_group_settings_fail_at_construction(env_kwargs, change, named):
    # A data folder that does not exist: the error comes from the config, before any data is read.
    with pytest.raises(ValueError, match=named):
        LRControlEnv(**{**env_kwargs, "data_dir": "/nonexistent", **change})


def test_gymnasium_checker_passes_on_a_controlled_env(env_kwargs):
    env = gym.make(ENV_ID, **env_kwargs).unwrapped  # made by id: it has a spec, as the checker wants
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    complaints = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and "gymnasium" in w.filename]
    assert not complaints, complaints


def _env_run(env_kwargs: dict, artifact: Path) -> list[tuple[float, float, float, float]]:
    """(controlled lr, other lr, train loss, probe loss) per env step, driven by the env-side LearnedController."""
    env = LRControlEnv(**env_kwargs)
    ctrl = LearnedController(artifact)
    obs, info = env.reset(seed=SEED)
    ctrl.reset(env, obs, info)
    rows, done = [], False
    while not done:
        other = env.trainee.opt.param_groups[1]["lr"]
        obs, _, done, _, info = env.step(ctrl.act(obs, info))
        rows.append((info["lr"], other, info["train_loss"], info["val_loss"]))
    return rows


def test_learned_lr_on_one_of_two_groups_matches_the_controlled_env(env_kwargs, artifact):
    expected = _env_run(env_kwargs, artifact)
    run = PlainRun(env_kwargs, SEED)
    head, body = run.net.head, run.net.body
    opt = torch.optim.Adam([{"params": head.parameters()}, {"params": body.parameters(), "lr": OTHER_LR}], lr=0.01)
    sched = run.learned(opt, artifact, param_groups=[0])  # observed by default: the head's weight and bias
    assert [id(p) for p in sched.observed] == [id(head.weight), id(head.bias)]
    got, used = [], []
    for n in range(T * K):
        used.append((opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]))
        loss, logits = run.train_step(opt, n)
        sched.step(loss, logits)
        if (n + 1) % K == 0:
            f = sched.last_features
            got.append((*used[-1], f["train_loss"], f["val_loss"]))
    lrs = [r[0] for r in expected]
    assert len(set(lrs)) >= 3, f"the test policy barely acts: {lrs}"
    assert all(r[1] == OTHER_LR for r in expected) and all(u[1] == OTHER_LR for u in used)
    assert len(got) == len(expected) == T
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-5, atol=0)
