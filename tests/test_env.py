"""LRControl-v1 on tiny real Fashion-MNIST: API, seeding, rewards, actions, divergence, validation."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rlsched.env
from rlsched.env import ENV_ID, LRControlEnv
from rlsched.env.actions import ACTION_MAPS, DiscreteAction, LogLRAction, ScaleAction
from rlsched.env.features import PAPER_FEATURES, symlog

REPO_ROOT = Path(__file__).resolve().parents[1]
LN10 = math.log(10.0)


def make(kwargs: dict, **overrides) -> LRControlEnv:
    env = gym.make(ENV_ID, **{**kwargs, **overrides})
    return env.unwrapped  # type: ignore[return-value]


def run_episode(env: LRControlEnv, seed: int, actions) -> tuple[list, list, list]:
    """(observations, rewards, infos) of one episode, the reset's observation and info first."""
    obs, info = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], [info]
    for a in actions:
        obs, r, terminated, truncated, info = env.step(a)
        observations.append(obs)
        rewards.append(r)
        infos.append(info)
        if terminated or truncated:
            break
    return observations, rewards, infos


def box(a: float) -> np.ndarray:
    return np.array([a], dtype=np.float32)


# ----- registration ---------------------------------------------------------------------------------------
def test_make_after_import(tiny_env_kwargs):
    env = gym.make(ENV_ID, **tiny_env_kwargs)
    assert isinstance(env.unwrapped, LRControlEnv)
    assert env.spec is not None and env.spec.id == ENV_ID
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    rlsched.env.register_envs()  # idempotent: a second registration must not raise or re-register
    assert ENV_ID in gym.registry


def test_make_with_module_prefix_in_fresh_process(tiny_env_kwargs):
    """`gym.make("rlsched.env:rlsched/LRControl-v1")` imports the package itself (no prior `import rlsched`)."""
    code = (
        "import gymnasium as gym, sys\n"
        f"env = gym.make('rlsched.env:{ENV_ID}', **{tiny_env_kwargs!r})\n"
        "obs, _ = env.reset(seed=0)\n"
        "assert env.observation_space.contains(obs)\n"
        "print(type(env.unwrapped).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "LRControlEnv"


# ----- API conformance ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "reward", "obs_transform"),
    [
        ("scale", "neg_val_loss", "none"),
        ("discrete", "paper", "symlog"),
        ("log_lr", "final_only", "none"),
        ("scale", "log_diff", "symlog"),
    ],
)
def test_env_checkers_pass(tiny_env_kwargs, action, reward, obs_transform):
    env = make(tiny_env_kwargs, action=action, reward=reward, obs_transform=obs_transform)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env)
        sb3_check_env(env, warn=True)
    # Both checkers report most problems as UserWarnings, not exceptions.
    from_checkers = ("gymnasium", "stable_baselines3")
    complaints = [
        str(w.message)
        for w in caught
        if issubclass(w.category, UserWarning) and any(m in w.filename for m in from_checkers)
    ]
    assert not complaints, complaints


def test_observation_dtype_shape_and_default_features(tiny_env_kwargs):
    env = make(tiny_env_kwargs)
    assert tuple(env.feature_names) == (*PAPER_FEATURES, "progress")
    assert len(PAPER_FEATURES) == 9
    assert env.observation_space.shape == (len(env.feature_names),)
    assert env.observation_space.dtype == np.float32
    env.action_space.seed(0)
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        seen = [obs]
        done = False
        while not done:
            obs, r, terminated, truncated, _ = env.step(env.action_space.sample())
            seen.append(obs)
            assert isinstance(r, float) and math.isfinite(r)
            done = terminated or truncated
        for o in seen:
            assert o.dtype == np.float32 and o.shape == (10,)
            assert env.observation_space.contains(o), o


def test_custom_features_with_extras(tiny_env_kwargs):
    feats = ["val_loss", "val_accuracy", "progress", "log10_lr", "train_loss"]
    env = make(tiny_env_kwargs, features=feats)
    assert env.feature_names == feats
    assert env.observation_space.shape == (5,)
    env.action_space.seed(3)
    obs, info = env.reset(seed=3)
    t = 0
    while True:
        assert env.observation_space.contains(obs)
        assert obs[1] == pytest.approx(info["val_accuracy"], abs=1e-6)
        assert obs[2] == pytest.approx(t / tiny_env_kwargs["episode_steps"], abs=1e-7)
        assert obs[3] == pytest.approx(math.log10(info["lr"]), abs=1e-6)
        assert obs[4] == pytest.approx(info["train_loss"], rel=1e-6)
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        t += 1
        if terminated or truncated:
            assert env.observation_space.contains(obs)
            assert obs[2] == pytest.approx(1.0)
            break


def test_symlog_transform_is_symlog_of_raw(tiny_env_kwargs):
    actions = [box(a) for a in (0.3, -1.0, 1.0, 0.0, 0.5)]
    raw, _, _ = run_episode(make(tiny_env_kwargs), 5, actions)
    env = make(tiny_env_kwargs, obs_transform="symlog")
    transformed, _, _ = run_episode(env, 5, actions)
    for r, t in zip(raw, transformed, strict=True):
        assert env.observation_space.contains(t)
        np.testing.assert_allclose(t, symlog(r.astype(np.float64)), rtol=1e-5, atol=1e-6)


# ----- seeding ----------------------------------------------------------------------------------------------
ACTIONS = [box(a) for a in (1.0, -0.5, 0.25, 1.0, -1.0)]


def test_same_seed_same_trajectory(tiny_env_kwargs):
    a, b = make(tiny_env_kwargs), make(tiny_env_kwargs)
    obs_a, rew_a, info_a = run_episode(a, 11, ACTIONS)
    obs_b, rew_b, info_b = run_episode(b, 11, ACTIONS)
    for x, y in zip(obs_a, obs_b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert rew_a == rew_b
    assert info_a == info_b
    # The same env re-seeded replays the episode too (no state leaks across episodes).
    obs_c, rew_c, info_c = run_episode(a, 11, ACTIONS)
    assert rew_c == rew_a and info_c == info_a
    for x, y in zip(obs_a, obs_c, strict=True):
        np.testing.assert_array_equal(x, y)


def test_same_seed_same_initial_weights_different_seed_differs(tiny_env_kwargs):
    a, b, c = make(tiny_env_kwargs), make(tiny_env_kwargs), make(tiny_env_kwargs)
    a.reset(seed=7)
    b.reset(seed=7)
    c.reset(seed=8)
    sa, sb, sc = (e.trainee.net.state_dict() for e in (a, b, c))
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not any(torch.equal(sa[k], sc[k]) for k in sa)


def test_different_seed_different_trajectory(tiny_env_kwargs):
    env = make(tiny_env_kwargs)
    _, rew_a, info_a = run_episode(env, 1, ACTIONS)
    _, rew_b, info_b = run_episode(env, 2, ACTIONS)
    assert rew_a != rew_b
    assert [i["val_loss"] for i in info_a] != [i["val_loss"] for i in info_b]


def test_unseeded_reset_starts_a_new_run(tiny_env_kwargs):
    env = make(tiny_env_kwargs)
    env.reset(seed=4)
    first = {k: v.clone() for k, v in env.trainee.net.state_dict().items()}
    env.reset()
    assert not all(torch.equal(first[k], v) for k, v in env.trainee.net.state_dict().items())


def test_env_leaves_global_torch_rng_alone(tiny_env_kwargs):
    """A controller's own torch RNG stream (e.g. PPO's sampling) must not depend on the env's work."""
    env = make(tiny_env_kwargs)
    before = torch.random.get_rng_state()
    run_episode(env, 0, ACTIONS)
    assert torch.equal(before, torch.random.get_rng_state())


def test_split_seed_fixes_split_across_episodes(tiny_env_kwargs):
    fixed = make(tiny_env_kwargs, split_seed=123)
    fixed.reset(seed=1)
    idx = fixed._splits.train_idx.clone()
    fixed.reset(seed=2)
    assert torch.equal(idx, fixed._splits.train_idx)
    free = make(tiny_env_kwargs)
    free.reset(seed=1)
    idx = free._splits.train_idx.clone()
    free.reset(seed=2)
    assert not torch.equal(idx, free._splits.train_idx)


# ----- rewards ----------------------------------------------------------------------------------------------
def test_reward_neg_val_loss(tiny_env_kwargs):
    _, rewards, infos = run_episode(make(tiny_env_kwargs, reward="neg_val_loss"), 0, ACTIONS)
    assert len(rewards) == tiny_env_kwargs["episode_steps"]
    assert rewards == [-i["val_loss"] for i in infos[1:]]


@pytest.mark.parametrize("baseline", [2.0, 3.5])
def test_reward_paper(tiny_env_kwargs, baseline):
    env = make(tiny_env_kwargs, reward="paper", reward_baseline=baseline)
    _, rewards, infos = run_episode(env, 0, ACTIONS)
    assert rewards == pytest.approx([baseline - i["val_loss"] for i in infos[1:]], rel=0, abs=1e-12)


@pytest.mark.parametrize("final_val_eval", [True, False])
def test_reward_final_only(tiny_env_kwargs, final_val_eval):
    env = make(tiny_env_kwargs, reward="final_only", final_val_eval=final_val_eval)
    _, rewards, infos = run_episode(env, 0, ACTIONS)
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)
    last = infos[-1]
    if final_val_eval:
        assert rewards[-1] == -last["final_val_loss"]
        assert rewards[-1] != -last["val_loss"]  # the full split, not the probe
    else:
        assert "final_val_loss" not in last
        assert rewards[-1] == -last["val_loss"]


def test_reward_log_diff_telescopes(tiny_env_kwargs):
    env = make(tiny_env_kwargs, reward="log_diff")
    _, rewards, infos = run_episode(env, 0, ACTIONS)
    l_reset, l_end = infos[0]["val_loss"], infos[-1]["val_loss"]
    assert sum(rewards) == pytest.approx(math.log(l_reset / l_end), rel=1e-9, abs=1e-12)
    for prev, cur, r in zip(infos[:-1], infos[1:], rewards, strict=True):
        assert r == pytest.approx(math.log(prev["val_loss"] / cur["val_loss"]), rel=1e-9, abs=1e-12)


# ----- actions ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "factor"), [(-1.0, 0.965), (1.0, 1.035), (0.0, 1.0), (0.5, 1.0175), (-7.0, 0.965)])
def test_scale_action(tiny_env_kwargs, a, factor):
    env = make(tiny_env_kwargs, initial_lr=0.01)
    env.reset(seed=0)
    _, _, _, _, info = env.step(box(a))
    assert info["lr"] == pytest.approx(0.01 * factor, rel=1e-12)
    # The rate reported is the rate the optimizer used.
    assert env.trainee.opt.param_groups[0]["lr"] == info["lr"]
    _, _, _, _, info = env.step(box(a))
    assert info["lr"] == pytest.approx(0.01 * factor**2, rel=1e-12)


def test_discrete_action(tiny_env_kwargs):
    mults = (0.5, 1.0, 2.0)
    env = make(tiny_env_kwargs, action="discrete", discrete_multipliers=mults, initial_lr=0.01)
    assert env.action_space == gym.spaces.Discrete(3)
    env.reset(seed=0)
    lr = 0.01
    for a in (2, 2, 0, 1):
        _, _, _, _, info = env.step(a)
        lr *= mults[a]
        assert info["lr"] == pytest.approx(lr, rel=1e-12)
    default = make(tiny_env_kwargs, action="discrete")
    assert [default.action_to_lr(i) / 0.01 for i in range(3)] == pytest.approx([1 / 1.05, 1.0, 1.05])


def test_log_lr_action(tiny_env_kwargs):
    env = make(tiny_env_kwargs, action="log_lr", lr_min=1e-4, lr_max=1e-1)
    env.reset(seed=0)
    assert env.step(box(-1.0))[4]["lr"] == pytest.approx(1e-4, rel=1e-12)
    assert env.step(box(1.0))[4]["lr"] == pytest.approx(1e-1, rel=1e-12)
    assert env.step(box(0.0))[4]["lr"] == pytest.approx(10**-2.5, rel=1e-12)
    obs = env.step(box(1.0))[0]
    assert obs[PAPER_FEATURES.index("log10_lr")] == pytest.approx(-1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("action", "cls", "space"),
    [
        ("scale", ScaleAction, gym.spaces.Box(-1.0, 1.0, (1,), np.float32)),
        ("discrete", DiscreteAction, gym.spaces.Discrete(3)),
        ("log_lr", LogLRAction, gym.spaces.Box(-1.0, 1.0, (1,), np.float32)),
    ],
)
def test_action_map_per_type(tiny_env_kwargs, action, cls, space):
    env = make(tiny_env_kwargs, action=action)
    assert type(env.action_map) is cls and env.action_space is env.action_map.space == space
    assert set(ACTION_MAPS) == set(rlsched.env.ACTION_TYPES)


def test_action_maps_alone():
    """Without an env: the LR each map gives, clipped to [lr_min, lr_max], NaN refused."""
    scale = ScaleAction(0.5, 2.0, power=2, lr_min=1e-3, lr_max=1.0)
    assert scale.to_lr(0.1, [1.0]) == pytest.approx(0.4) and scale.to_lr(0.1, [-1.0]) == pytest.approx(0.025)
    assert scale.to_lr(0.9, [1.0]) == 1.0 and scale.to_lr(0.002, [-5.0]) == 1e-3
    with pytest.raises(ValueError, match="NaN"):
        scale.to_lr(0.1, [float("nan")])
    discrete = DiscreteAction((0.5, 1.0, 4.0), lr_min=1e-3, lr_max=0.1)
    assert [discrete.to_lr(0.01, i) for i in range(3)] == pytest.approx([0.005, 0.01, 0.04])
    assert discrete.to_lr(0.05, 2) == 0.1
    log_lr = LogLRAction(lr_min=1e-4, lr_max=1e-2)
    assert log_lr.to_lr(123.0, np.array([0.0])) == pytest.approx(1e-3)  # the current rate plays no part
    with pytest.raises(ValueError, match="NaN"):
        log_lr.to_lr(0.1, np.array([np.nan]))


def test_nan_action_or_lr_is_refused_before_any_training(tiny_env_kwargs):
    env = make(tiny_env_kwargs)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(box(float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        env.step_lr(float("nan"))
    assert env.trainee.optimizer_steps == 0
    assert env.step(box(0.0))[4]["step"] == 1  # the episode goes on


def test_lr_is_clipped(tiny_env_kwargs):
    env = make(tiny_env_kwargs, initial_lr=0.02, lr_min=1e-3, lr_max=0.02)
    env.reset(seed=0)
    assert env.step(box(1.0))[4]["lr"] == 0.02
    assert env.step_lr(10.0)[4]["lr"] == 0.02
    assert env.step_lr(0.0)[4]["lr"] == 1e-3
    assert env.step_lr(-1.0)[4]["lr"] == 1e-3
    assert env.step(box(-1.0))[4]["lr"] == 1e-3


# ----- divergence -------------------------------------------------------------------------------------------
DIVERGENT = {"optimizer": "sgd", "momentum": 0.9, "lr_max": 1e6, "initial_lr": 1e5}


@pytest.mark.parametrize("reward", ["neg_val_loss", "paper", "final_only", "log_diff"])
def test_divergence_ends_episode_with_penalty(tiny_env_kwargs, reward):
    env = make(tiny_env_kwargs, reward=reward, **DIVERGENT)
    obs, info = env.reset(seed=0)
    prev_obs, prev_loss, t = obs, info["val_loss"], 0
    while True:
        obs, r, terminated, truncated, info = env.step(box(1.0))
        t += 1
        if terminated or truncated:
            break
        prev_obs, prev_loss = obs, info["val_loss"]
    assert terminated and not truncated and info["diverged"] is True
    assert np.all(np.isfinite(obs)) and env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs, prev_obs)  # the last finite state
    assert obs is not prev_obs and not np.shares_memory(obs, prev_obs)
    remaining = tiny_env_kwargs["episode_steps"] - t + 1
    div = 2 * LN10
    expected = {
        "neg_val_loss": -div * remaining,
        "paper": (2.0 - div) * remaining,
        "final_only": -div,
        "log_diff": math.log(prev_loss) - math.log(div),
    }[reward]
    assert math.isfinite(r) and r == pytest.approx(expected, rel=1e-12)
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step(box(0.0))
    env.reset(seed=1)  # a fresh episode works after divergence
    assert env.step(box(0.0))[4]["step"] == 1


def test_divergence_via_step_lr_and_fixed_penalty(tiny_env_kwargs):
    env = make(tiny_env_kwargs, optimizer="sgd", lr_max=1e6, divergence_penalty=-50.0)
    env.reset(seed=0)
    obs, r, terminated, truncated, info = env.step_lr(1e6)
    assert terminated and not truncated and info["diverged"]
    assert r == -50.0
    assert env.observation_space.contains(obs)
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step_lr(0.01)


def test_step_before_reset_raises(tiny_env_kwargs):
    env = make(tiny_env_kwargs)
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step(box(0.0))


# ----- end of episode ---------------------------------------------------------------------------------------
FINAL_KEYS = {"test_loss", "test_accuracy", "final_val_loss", "final_val_accuracy"}


def test_final_metrics_only_at_last_step(tiny_env_kwargs):
    env = make(tiny_env_kwargs)
    _, info = env.reset(seed=0)
    assert not FINAL_KEYS & info.keys()
    for t in range(1, tiny_env_kwargs["episode_steps"] + 1):
        _, _, terminated, truncated, info = env.step(box(0.0))
        assert not truncated and info["diverged"] is False
        assert terminated == (t == tiny_env_kwargs["episode_steps"])  # the budget's end is terminal
        assert (info.keys() >= FINAL_KEYS) == terminated
        assert not (FINAL_KEYS & info.keys()) or terminated
    s = env._splits
    loss, acc, _ = env.trainee.evaluate(s.x_test, s.y_test)
    assert info["test_loss"] == float(loss) and info["test_accuracy"] == float(acc)
    loss, _, _ = env.trainee.evaluate(s.x_val, s.y_val)
    assert info["final_val_loss"] == float(loss)
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step(box(0.0))


def test_test_eval_off(tiny_env_kwargs):
    _, _, infos = run_episode(make(tiny_env_kwargs, test_eval=False), 0, ACTIONS)
    assert "test_loss" not in infos[-1] and "test_accuracy" not in infos[-1]
    assert "final_val_loss" in infos[-1]


# ----- validation at construction ---------------------------------------------------------------------------
BAD = [
    ({"dataset": "cifar100"}, r"unknown dataset 'cifar100'.*cifar10.*fashion_mnist.*mnist"),
    ({"model": "vgg"}, r"unknown model 'vgg'.*cnn.*mlp.*resnet"),
    ({"action": "up"}, r"unknown action 'up'.*discrete.*log_lr.*scale"),
    ({"reward": "acc"}, r"unknown reward 'acc'.*final_only.*log_diff.*neg_val_loss.*paper"),
    ({"optimizer": "rmsprop"}, r"unknown optimizer 'rmsprop'.*adam.*sgd"),
    ({"obs_transform": "log"}, r"unknown obs_transform 'log'.*none.*symlog"),
    ({"prediction_source": "val"}, r"unknown prediction_source 'val'.*train.*validation"),
    ({"initial_lr": 0.0}, r"initial_lr must be > 0"),
    ({"initial_lr": -0.01}, r"initial_lr must be > 0"),
    ({"initial_lr": 0.5}, r"initial_lr=0.5 lies outside"),
    ({"steps_per_action": 0}, r"steps_per_action must be >= 1"),
    ({"features": ["val_loss", "grad_norm"]}, r"unknown feature.*grad_norm.*allowed.*val_loss"),
    ({"learning_rate": 0.1}, r"unknown env option.*learning_rate"),
    ({"batch_size": 3000}, r"batch_size=3000 exceeds train_size=2000"),
    ({"val_probe": 600}, r"val_probe=600 exceeds val_size\W+500"),
    ({"model": "resnet", "model_kwargs": {"depth": 9}}, r"resnet depth must be 18, 34 or 6n\+2"),
    ({"model_kwargs": {"hiden": [8]}}, r"bad model_kwargs for 'mlp'.*hiden"),
    # Counts are integers: 2.5 steps used to run 3.
    ({"episode_steps": 2.5}, r"episode_steps must be an integer, got 2.5"),
    ({"steps_per_action": 1.5}, r"steps_per_action must be an integer, got 1.5"),
    ({"batch_size": 99.5}, r"batch_size must be an integer, got 99.5"),
    ({"eval_batch_size": "1000"}, r"eval_batch_size must be an integer or null, got '1000'"),
    ({"val_probe": 100.5}, r"val_probe must be an integer, got 100.5"),
    ({"train_size": 1999.5}, r"train_size must be an integer or null, got 1999.5"),
    ({"episode_steps": True}, r"episode_steps must be an integer, got True"),
    ({"episode_steps": float("nan")}, r"episode_steps must be an integer, got nan"),
    ({"scale_range": [0.9, 1.0, 1.1]}, r"scale_range must be two numbers \[low, high\], got \[0.9, 1.0, 1.1\]"),
    ({"scale_range": ["a", 1.1]}, r"scale_range must be two numbers"),
    ({"scale_range": 1.05}, r"scale_range must be two numbers"),
    ({"discrete_multipliers": [0.9, "x"]}, r"discrete_multipliers must be a list of numbers"),
    ({"initial_lr": "0.01"}, r"initial_lr must be a number, got '0.01'"),
    ({"lr_min": "1e-5"}, r"lr_min must be a number, got '1e-5'"),
    ({"lr_max": None}, r"lr_max must be a number, got None"),
    ({"divergence_loss": "high"}, r"divergence_loss must be a number or null"),
    ({"test_eval": "false"}, r"test_eval must be true or false, got 'false'"),
    ({"device": 0}, r"device must be a string, got 0"),
]
BAD_IDS = [f"{next(iter(o))}-{i}" for i, (o, _) in enumerate(BAD)]


@pytest.mark.parametrize(("overrides", "match"), BAD, ids=BAD_IDS)
def test_bad_config_raises_before_loading_data(tiny_env_kwargs, tmp_path, overrides, match):
    # An empty data root: reaching the data loader would raise DataNotFoundError, not ValueError, so a
    # ValueError here proves validation runs before any data is touched (let alone any training).
    kwargs = {**tiny_env_kwargs, "data_dir": str(tmp_path), **overrides}
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        gym.make(ENV_ID, **kwargs)
    assert time.perf_counter() - start < 2.0


def test_integral_counts_given_as_floats_become_ints(tiny_env_kwargs):
    """3.0 steps is 3 steps: accepted, stored as an int, so the config (and its identity) equals the int one."""
    env = make(tiny_env_kwargs, episode_steps=3.0, batch_size=100.0)
    assert env.cfg.episode_steps == 3 and type(env.cfg.episode_steps) is int and type(env.cfg.batch_size) is int
    assert env.cfg.to_dict() == make(tiny_env_kwargs, episode_steps=3).cfg.to_dict()
    _, rewards, _ = run_episode(env, 0, ACTIONS)
    assert len(rewards) == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: device='cuda' is valid here")
def test_cuda_without_cuda_is_a_config_error(tiny_env_kwargs, tmp_path):
    with pytest.raises(ValueError, match=r"device=cpu"):
        gym.make(ENV_ID, **{**tiny_env_kwargs, "data_dir": str(tmp_path), "device": "cuda"})


# ----- options ----------------------------------------------------------------------------------------------
def test_steps_per_action(tiny_env_kwargs):
    env = make(tiny_env_kwargs, steps_per_action=3)
    _, _, infos = run_episode(env, 0, ACTIONS)
    assert [i["optimizer_steps"] for i in infos] == [3 * t for t in range(len(infos))]
    assert infos[-1]["epoch"] == pytest.approx(3 * 5 / (2000 // 100))
    assert env.steps_per_epoch == pytest.approx(20 / 3)


@pytest.mark.parametrize(
    ("model", "model_kwargs"), [("cnn", {}), ("resnet", {"depth": 8, "width": 4})], ids=["cnn", "resnet8"]
)
def test_conv_models_run(tiny_env_kwargs, model, model_kwargs):
    kwargs = {
        **tiny_env_kwargs,
        "train_size": 200,
        "val_size": 100,
        "val_probe": 50,
        "test_size": 100,
        "batch_size": 50,
        "episode_steps": 2,
    }
    env = make(kwargs, model=model, model_kwargs=model_kwargs)
    observations, rewards, infos = run_episode(env, 0, [box(0.0), box(0.0)])
    assert len(rewards) == 2 and infos[-1]["step"] == 2 and "test_loss" in infos[-1]
    for o in observations:
        assert env.observation_space.contains(o) and np.all(np.isfinite(o))
