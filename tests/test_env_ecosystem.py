"""LRControl-v1 where RL code already works: its documented spec, render_mode, SB3 by id, Gymnasium vectors."""

from __future__ import annotations

import math
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import rlsched.env
from rlsched.env import ENV_ID, LRControlEnv
from rlsched.env.vector import LRControlGymVecEnv, LRControlVecEnv


# ----- the id and its documented spec -------------------------------------------------------------------------
def _documented_features() -> list[str]:
    """The feature names of the docstring's observation table, in row order (the optional row excluded)."""
    doc = LRControlEnv.__doc__ or ""
    return re.findall(r"^\s*\|\s*\d+\s*\|\s*(\w+)\s*\|", doc, flags=re.M)


def test_v1_is_registered_and_its_spaces_are_the_documented_ones(tiny_env_kwargs):
    assert ENV_ID == "rlsched/LRControl-v1" and ENV_ID in gym.registry
    rlsched.env.register_envs()  # idempotent
    spec = gym.registry[ENV_ID]
    assert spec.vector_entry_point == "rlsched.env.vector:LRControlGymVecEnv" and spec.max_episode_steps is None
    env = gym.make(ENV_ID, **tiny_env_kwargs)
    documented = _documented_features()
    assert env.unwrapped.feature_names == documented and len(documented) == 10
    assert env.observation_space.shape == (10,) and env.observation_space.dtype == np.float32
    cfg = env.unwrapped.cfg
    lows, highs = env.observation_space.low, env.observation_space.high
    assert highs[documented.index("log10_lr")] == pytest.approx(math.log10(cfg.lr_max))
    assert (lows[documented.index("progress")], highs[documented.index("progress")]) == (0.0, 1.0)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    discrete = gym.make(ENV_ID, **tiny_env_kwargs, action="discrete")
    assert discrete.action_space == gym.spaces.Discrete(3)
    assert gym.make(ENV_ID, **tiny_env_kwargs, action="log_lr").action_space == env.action_space
    for reward in ("neg_val_loss", "paper", "final_only", "log_diff", "paired_log"):
        assert f'`"{reward}"`' in LRControlEnv.__doc__
    for section in ("Action Space", "Observation Space", "Rewards", "Starting State", "Episode End", "Version History"):
        assert f"## {section}" in LRControlEnv.__doc__


def test_v0_refuses_and_points_to_v1(tiny_env_kwargs):
    with pytest.raises(gym.error.DeprecatedEnv, match=r"LRControl-v0 is retired.*Use rlsched/LRControl-v1"):
        gym.make("rlsched/LRControl-v0", **tiny_env_kwargs)


# ----- render_mode ----------------------------------------------------------------------------------------------
def test_rgb_array_frames_show_the_episode(tiny_env_kwargs):
    env = gym.make(ENV_ID, render_mode="rgb_array", **tiny_env_kwargs)
    assert env.metadata["render_modes"] == ["rgb_array"] and env.render_mode == "rgb_array"
    env.reset(seed=0)
    first = env.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3 and first.std() > 0
    env.step(np.array([1.0], dtype=np.float32))
    second = env.render()
    assert second.shape == first.shape and (second != first).any()  # a new point on each curve
    # No render mode: Gymnasium's convention, a warning and None.
    plain = gym.make(ENV_ID, **tiny_env_kwargs)
    plain.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert plain.render() is None


def test_unknown_render_mode_and_options_still_fail_clearly(tiny_env_kwargs):
    with pytest.raises(ValueError, match=r"unknown render_mode 'ansi'.*rgb_array"):
        LRControlEnv(render_mode="ansi", **tiny_env_kwargs)
    with pytest.raises(ValueError, match=r"unknown env option\(s\) \['colour'\]"):
        gym.make(ENV_ID, render_mode="rgb_array", colour=1, **tiny_env_kwargs)


def test_record_video_writes_an_episode(tiny_env_kwargs, tmp_path):
    pytest.importorskip("moviepy", reason="RecordVideo encodes with moviepy (pip install moviepy)")
    env = gym.wrappers.RecordVideo(
        gym.make(ENV_ID, render_mode="rgb_array", **tiny_env_kwargs), str(tmp_path), episode_trigger=lambda e: True
    )
    env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, _ = env.step(env.action_space.sample())
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


# ----- SB3 by id --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vec_env_cls", "env_id", "start_method"),
    [
        (DummyVecEnv, ENV_ID, None),
        # Fresh workers import rlsched from the id's prefix (~20 s: each worker imports torch and loads the data).
        pytest.param(SubprocVecEnv, f"rlsched.env:{ENV_ID}", "forkserver", marks=pytest.mark.slow),
    ],
)
def test_sb3_make_vec_env_by_id(tiny_env_kwargs, vec_env_cls, env_id, start_method):
    """SB3 asks for render_mode="rgb_array" and falls back only on a TypeError: the env must accept it."""
    kwargs = {"start_method": start_method} if start_method else None
    venv = make_vec_env(env_id, n_envs=2, seed=3, env_kwargs=tiny_env_kwargs, vec_env_cls=vec_env_cls,
                        vec_env_kwargs=kwargs)  # fmt: skip
    try:
        obs = venv.reset()
        assert obs.shape == (2, 10)
        frames = venv.get_images()
        assert all(f.ndim == 3 and f.dtype == np.uint8 for f in frames)
        dones = np.zeros(2, dtype=bool)
        for _ in range(tiny_env_kwargs["episode_steps"]):
            obs, _rewards, dones, infos = venv.step(np.zeros((2, 1), dtype=np.float32))
        assert dones.all() and all("episode" in i for i in infos)  # SB3's Monitor saw whole episodes
        assert all(i["episode"]["l"] == tiny_env_kwargs["episode_steps"] for i in infos)
    finally:
        venv.close()


def test_sb3_subproc_vec_env_by_id_with_forked_workers(tiny_env_kwargs):
    """SubprocVecEnv with forked workers (which inherit the registration), in a fresh interpreter: a fork after
    torch's OpenMP pool has started (as in this test process) can deadlock the child, so fork only from a process
    that has not yet run torch's parallel kernels, or use forkserver/spawn with the `rlsched.env:` id prefix."""
    import subprocess
    import sys

    script = f"""
import numpy as np, rlsched
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv
venv = make_vec_env({ENV_ID!r}, n_envs=2, seed=3, env_kwargs={tiny_env_kwargs!r}, vec_env_cls=SubprocVecEnv,
                    vec_env_kwargs={{"start_method": "fork"}})
obs = venv.reset()
for _ in range({tiny_env_kwargs["episode_steps"]}):
    obs, r, dones, infos = venv.step(np.zeros((2, 1), dtype=np.float32))
print(obs.shape, bool(dones.all()), [i["episode"]["l"] for i in infos])
venv.close()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    steps = tiny_env_kwargs["episode_steps"]
    assert out.stdout.strip().splitlines()[-1] == f"(2, 10) True [{steps}, {steps}]"


# ----- Gymnasium's vector entry point ----------------------------------------------------------------------------
def _sb3_rows(kw: dict, n: int, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """The SB3 batched env's rows under the same seeding (row i with seed + i): episode seeds, rewards, infos."""
    sb3 = LRControlVecEnv(kw, n)
    sb3.seed(seed)
    sb3.reset()
    seeds = sb3.episode_seeds.copy()
    rewards, infos = [], []
    for a in actions:
        _, r, _, i = sb3.step_actions(a)
        rewards.append(r)
        infos.append(i)
    return seeds, np.array(rewards), infos


def test_make_vec_returns_a_gymnasium_vector_env_with_next_step_autoreset(tiny_env_kwargs):
    n, steps = 3, tiny_env_kwargs["episode_steps"]
    venv = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", **tiny_env_kwargs)
    assert isinstance(venv, LRControlGymVecEnv) and isinstance(venv, VectorEnv)
    assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP  # Gymnasium's default
    assert venv.single_observation_space.shape == (10,) and venv.observation_space.shape == (n, 10)
    assert venv.action_space.shape == (n, 1)
    # Gymnasium's vector wrappers accept it (they refuse same-step autoreset).
    stats = RecordEpisodeStatistics(gym.wrappers.vector.NormalizeObservation(venv))
    _, info = stats.reset(seed=5)
    assert info["_step"].all() and (info["step"] == 0).all()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps + 1, n, 1)).astype(np.float32)
    rewards, total = [], np.zeros(n)
    for t in range(steps):
        _, r, terminated, truncated, info = stats.step(actions[t])
        rewards.append(r)
        total += r
        assert not truncated.any() and terminated.all() == (t == steps - 1)
    np.testing.assert_allclose(info["episode"]["r"], total, rtol=1e-6)  # returns logged, whole episodes
    assert (info["episode"]["l"] == steps).all() and "final_obs" not in info
    # The next step resets every row: reward 0, not terminated, the new episode's first observation and info.
    _, r, terminated, _, info = stats.step(actions[steps])
    assert (r == 0).all() and not terminated.any() and (info["step"] == 0).all()
    seeds, sb3_rewards, _ = _sb3_rows(tiny_env_kwargs, n, 5, actions[:steps])
    np.testing.assert_allclose(np.array(rewards), sb3_rewards, rtol=1e-6)
    assert (info["episode_seed"] != seeds).all()
    venv.close()


def test_same_step_autoreset_on_request(tiny_env_kwargs):
    n, steps = 2, tiny_env_kwargs["episode_steps"]
    venv = gym.make_vec(
        ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode="SameStep", **tiny_env_kwargs
    )
    assert venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert LRControlGymVecEnv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP  # per instance, not the class
    stats = RecordEpisodeStatistics(venv)
    _, info = stats.reset(seed=5)
    first_seeds = info["episode_seed"].copy()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps, n, 1)).astype(np.float32)
    total = np.zeros(n)
    for t in range(steps):
        _, r, terminated, _, info = stats.step(actions[t])
        total += r
    assert terminated.all() and info["_final_obs"].all() and info["_episode"].all()
    np.testing.assert_allclose(info["episode"]["r"], total, rtol=1e-6)
    # Same step: the returned observation is already the new episode's first; the last one is in final_obs.
    assert (info["step"] == 0).all() and (info["episode_seed"] != first_seeds).all()
    final = info["final_info"]  # Gymnasium's dict of per-row arrays
    assert (final["step"] == steps).all() and final["_final_val_loss"].all()
    seeds, _, sb3_infos = _sb3_rows(tiny_env_kwargs, n, 5, actions)
    np.testing.assert_array_equal(seeds, first_seeds)
    last = np.stack([i["terminal_observation"] for i in sb3_infos[-1]])
    np.testing.assert_allclose(last, np.stack(info["final_obs"]), rtol=1e-6)
    with pytest.raises(ValueError, match="autoreset_mode must be one of"):
        LRControlGymVecEnv(2, autoreset_mode="Sometimes", **tiny_env_kwargs)


def test_vector_entry_point_refuses_what_it_cannot_do(tiny_env_kwargs):
    with pytest.raises(ValueError, match="does not render"):
        LRControlGymVecEnv(2, render_mode="rgb_array", **tiny_env_kwargs)
    venv = LRControlGymVecEnv(2, **tiny_env_kwargs)
    with pytest.raises(ValueError, match="reset options"):
        venv.reset(options={"x": 1})
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="one action per row"):
        venv.step(np.zeros((3, 1), dtype=np.float32))


def test_env_spec_page_renders_the_docstring():
    """docs/env_spec.md is the LRControlEnv docstring (regenerate it from there when the spec changes)."""
    import inspect
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "env_spec.md").read_text()
    assert page.rstrip("\n").endswith(inspect.cleandoc(LRControlEnv.__doc__))
