"""The batched vector env: the same episodes as N single envs, isolated divergence, SB3 training, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlsched.control.artifact import load_artifact
from rlsched.env.lr_control import LRControlEnv
from rlsched.env.population import BatchedPopulation, LoopPopulation, make_population, trainee_seeds
from rlsched.env.seed_pool import SeedQueue
from rlsched.env.vector import LRControlVecEnv
from rlsched.train.agent import train_controller

SEEDS = [3, 7, 11]
ATOL = 2e-5  # float tolerance: batched kernels sum in another order than N separate ones


def _run_single(kw: dict, seed: int, actions: np.ndarray) -> tuple[list, list, dict]:
    env = LRControlEnv(**kw)
    obs, _ = env.reset(seed=seed)
    observations, rewards, info = [obs], [], {}
    for a in actions:
        obs, r, terminated, _, info = env.step(a)
        observations.append(obs)
        rewards.append(r)
        if terminated:
            break
    return observations, rewards, info


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_batched_rows_follow_the_single_env_trajectories(tiny_env_kwargs, optimizer):
    kw = {**tiny_env_kwargs, "optimizer": optimizer, "steps_per_action": 3, "weight_decay": 1e-4}
    steps = kw["episode_steps"]
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps, len(SEEDS), 1)).astype(np.float32)
    venv = LRControlVecEnv(kw, len(SEEDS), population="batched")
    assert isinstance(venv.population, BatchedPopulation)
    obs, _ = venv.reset_to(SEEDS)
    batched_obs, batched_rewards, last_infos = [obs], [], None
    for t in range(steps):
        obs, rewards, dones, infos = venv.step_actions(actions[t])
        batched_obs.append(np.stack([i.get("terminal_observation", o) for i, o in zip(infos, obs, strict=True)]))
        batched_rewards.append(rewards)
        last_infos = infos
    assert dones.all()
    for row, seed in enumerate(SEEDS):
        single_obs, single_rewards, single_info = _run_single(kw, seed, actions[:, row])
        np.testing.assert_allclose(np.stack([o[row] for o in batched_obs]), np.stack(single_obs), atol=ATOL)
        np.testing.assert_allclose([r[row] for r in batched_rewards], single_rewards, atol=ATOL)
        for key in ("lr", "test_loss", "final_val_loss", "test_accuracy", "optimizer_steps"):
            assert last_infos[row][key] == pytest.approx(single_info[key], abs=ATOL), key


def test_loop_population_is_the_single_env_exactly(tiny_env_kwargs):
    """ResNet (BatchNorm) runs as a loop of ordinary trainees: the single env's losses bit for bit (the features
    are batched, so the observation agrees to float tolerance)."""
    kw = {**tiny_env_kwargs, "model": "resnet", "model_kwargs": {"depth": 8, "width": 4}, "episode_steps": 2}
    venv = LRControlVecEnv(kw, 2)
    assert isinstance(venv.population, LoopPopulation)
    obs, _ = venv.reset_to(SEEDS[:2])
    lrs = np.array([1e-3, 3e-2])
    obs1, rewards, _, infos = venv.step_lrs(lrs)
    for row, seed in enumerate(SEEDS[:2]):
        env = LRControlEnv(**kw)
        o0, _ = env.reset(seed=seed)
        o1, r, _, _, info = env.step_lr(lrs[row])
        np.testing.assert_allclose(obs[row], o0, atol=ATOL)
        np.testing.assert_allclose(obs1[row], o1, atol=ATOL)
        assert rewards[row] == np.float32(r)
        assert (infos[row]["train_loss"], infos[row]["val_loss"]) == (info["train_loss"], info["val_loss"])


def test_population_kind_follows_the_model(tiny_env_kwargs):
    from rlsched.env.lr_control import EnvConfig

    cfg = EnvConfig.from_kwargs(**tiny_env_kwargs)
    assert isinstance(make_population(cfg, 2, torch.device("cpu")), BatchedPopulation)
    res = EnvConfig.from_kwargs(**{**tiny_env_kwargs, "model": "resnet", "model_kwargs": {"depth": 8}})
    with pytest.raises(ValueError, match="BatchNorm"):
        BatchedPopulation(res, 2, torch.device("cpu"))


def test_a_nan_in_one_trainee_never_touches_the_others(tiny_env_kwargs):
    kw = {**tiny_env_kwargs, "episode_steps": 3}
    clean, poisoned = LRControlVecEnv(kw, 3), LRControlVecEnv(kw, 3, episode_seeds=[99])
    clean.reset_to(SEEDS)
    poisoned.reset_to(SEEDS)
    with torch.no_grad():
        for p in poisoned.population.params.values():
            p[1].fill_(float("nan"))
    poisoned._queues[1] = SeedQueue([99])  # row 1 restarts on seed 99
    action = np.zeros((3, 1), dtype=np.float32)
    for _ in range(2):
        c_obs, c_rew, c_done, _ = clean.step_actions(action, autoreset=True)
        p_obs, p_rew, p_done, p_infos = poisoned.step_async(action) or poisoned.step_wait()
        for row in (0, 2):  # the healthy trainees are exactly as without the NaN
            np.testing.assert_array_equal(p_obs[row], c_obs[row])
            assert p_rew[row] == c_rew[row] and p_done[row] == c_done[row]
        if p_infos[1].get("diverged"):
            break
    assert p_infos[1]["diverged"] and p_done[1] and not p_done[[0, 2]].any()
    assert np.isfinite(p_obs[1]).all() and np.isfinite(p_infos[1]["terminal_observation"]).all()
    assert poisoned.episode_seeds[1] == 99 and poisoned.t[1] == 0  # autoreset on a fresh trainee
    assert all(torch.isfinite(p[1]).all() for p in poisoned.population.params.values())


def test_rows_draw_seeds_like_seed_pools_and_autoreset(tiny_env_kwargs):
    kw = {**tiny_env_kwargs, "episode_steps": 2}
    pool = [100, 101, 102, 103, 104]
    venv = LRControlVecEnv(kw, 2, episode_seeds=pool, shuffle_seed=5)
    venv.reset()
    queues = [SeedQueue(pool, 5), SeedQueue(pool, 6)]
    assert list(venv.episode_seeds) == [q.next_seed() for q in queues]
    action = np.zeros((2, 1), dtype=np.float32)
    venv.step_async(action)
    venv.step_wait()
    venv.step_async(action)
    obs, _, dones, infos = venv.step_wait()
    assert dones.all() and all("terminal_observation" in i for i in infos)
    assert list(venv.episode_seeds) == [q.next_seed() for q in queues]
    # The reset observation is the single env's t=0 observation of the new trainee.
    single, _ = LRControlEnv(**kw).reset(seed=int(venv.episode_seeds[0]))
    np.testing.assert_allclose(obs[0], single, atol=ATOL)


def test_without_autoreset_a_row_is_done_once(tiny_env_kwargs):
    kw = {**tiny_env_kwargs, "episode_steps": 2}
    venv = LRControlVecEnv(kw, 2)
    venv.reset_to(SEEDS[:2])
    venv.step_lrs([1e-3, 1e-3])
    _, _, dones, infos = venv.step_lrs([1e-3, 1e-3])
    assert dones.all() and "test_loss" in infos[0]
    _, rewards, dones, infos = venv.step_lrs([1e-3, 1e-3])
    assert not dones.any() and infos == [{}, {}] and not rewards.any()
    with pytest.raises(ValueError, match="learning rates"):
        venv.step_lrs([1e-3, float("nan")])


def test_trainee_seeds_are_the_single_envs(tiny_env_kwargs):
    env = LRControlEnv(**tiny_env_kwargs)
    env.reset(seed=42)
    seeds = trainee_seeds(42, None)
    venv = LRControlVecEnv(tiny_env_kwargs, 1)
    venv.population.start(0, seeds)
    single = dict(env.trainee.net.named_parameters())
    for name, p in venv.population.params.items():
        torch.testing.assert_close(p[0].detach(), single[name].detach(), rtol=0, atol=0)


def test_ppo_trains_on_the_batched_vec_env(tiny_env_kwargs, tmp_path):
    agent = {
        "algo": "ppo",
        "policy": "MlpPolicy",
        "n_envs": 4,
        "vec_env": "batched",
        "total_timesteps": 40,
        "checkpoint_every": 20,
        "eval_every": 20,
        "eval_episodes": 2,
        "artifact_from": "final",
        "ppo": {"n_steps": 5, "batch_size": 10, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}},
    }
    artifact = train_controller({**tiny_env_kwargs, "test_eval": False}, agent, tmp_path)
    assert load_artifact(artifact).model.num_timesteps == 40
    selection = (tmp_path / "eval" / "selection.csv").read_text().splitlines()
    assert len(selection) >= 3  # header, the starting policy, later checkpoints


def test_selection_scores_agree_run_one_by_one_or_as_a_population(tiny_env_kwargs):
    from stable_baselines3 import PPO

    from rlsched.train.selection import policy_final_losses, population_final_losses

    kw = {**tiny_env_kwargs, "episode_steps": 3, "test_eval": False}
    venv = LRControlVecEnv(kw, 2)
    model = PPO("MlpPolicy", venv, n_steps=4, batch_size=8, seed=0, policy_kwargs={"net_arch": [8]})
    seeds = [30_000, 30_001, 30_002]  # three seeds on two rows: the last group is padded
    one_by_one = policy_final_losses(model, lambda x: x, LRControlEnv(**kw), seeds)
    population = population_final_losses(model, lambda x: x, venv, seeds)
    np.testing.assert_allclose(population, one_by_one, atol=ATOL)
    assert len(set(one_by_one)) == 3


def test_per_group_control_runs_as_a_loop_population(tiny_env_kwargs):
    kw = {**tiny_env_kwargs, "controlled_params": ["head"], "other_lr": 1e-3}
    venv = LRControlVecEnv(kw, 2)
    assert isinstance(venv.population, LoopPopulation)
    venv.reset_to(SEEDS[:2])
    venv.step_lrs([0.05, 0.05])
    groups = venv.population.trainees[0].opt.param_groups
    assert [g["lr"] for g in groups] == [0.05, 1e-3]
    from rlsched.env.lr_control import EnvConfig

    with pytest.raises(ValueError, match="controlled_params"):
        BatchedPopulation(EnvConfig.from_kwargs(**kw), 2, torch.device("cpu"))


def test_harness_population_gives_the_single_runs(tiny_env_kwargs, tmp_path):
    from rlsched.bench.harness import run_benchmark
    from rlsched.control import make_controller

    ctrls = [make_controller("cosine", lr=0.01, name="cosine"), make_controller("constant", lr=0.003, name="const")]
    seeds = [0, 1, 2]
    single, _ = run_benchmark(tiny_env_kwargs, ctrls, seeds, tmp_path / "single", progress=False)
    batched, curves = run_benchmark(tiny_env_kwargs, ctrls, seeds, tmp_path / "pop", progress=False, population=2)
    assert set(batched["runner"]) == {"population2"} and set(single["runner"]) == {"single"}
    key = ["controller", "seed"]
    a, b = single.sort_values(key).reset_index(drop=True), batched.sort_values(key).reset_index(drop=True)
    assert (a["init_fingerprint"] == b["init_fingerprint"]).all()
    for col in ("test_loss", "final_val_loss", "final_lr", "return"):
        np.testing.assert_allclose(b[col], a[col], atol=ATOL, err_msg=col)
    assert len(curves) == len(ctrls) * len(seeds) * (tiny_env_kwargs["episode_steps"] + 1)
