"""Task sets (issue 14): the task follows the seed, sets are disjoint, the task is named in info and results,
each optimizer choice trains, the invariant features do not move with width, and tuning runs on a task set."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rlsched.bench.harness import read_results, run_benchmark
from rlsched.bench.tuning import TuneSettings, tune_baselines
from rlsched.control import make_controller
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.env.models import OPTIMIZERS
from rlsched.env.tasks import TASK_KEYS, TASKS_DIR, available, check_disjoint, load_task_set, task_env_kwargs
from rlsched.env.trainee import Trainee

TINY_SET = {
    "name": "tiny",
    "tasks": {
        "fm_w16": {"dataset": "fashion_mnist", "model_kwargs": {"hidden": [16]}, "episode_steps": 3},
        "mn_w32x2": {"dataset": "mnist", "model_kwargs": {"hidden": [32, 32]}, "episode_steps": 4, "initial_lr": 0.003},
        "fm_w8_b50": {"dataset": "fashion_mnist", "model_kwargs": {"hidden": [8]}, "batch_size": 50},
    },
}


@pytest.fixture
def set_kwargs(tiny_env_kwargs) -> dict:
    return {**tiny_env_kwargs, "tasks": TINY_SET}


def run(env: LRControlEnv, seed: int) -> tuple[dict, list[np.ndarray]]:
    obs, info = env.reset(seed=seed)
    seen, done = [obs], False
    while not done:
        obs, _, done, _, info = env.step(np.zeros(1, np.float32))
        seen.append(obs)
    return info, seen


def test_every_committed_set_loads_and_train_and_held_out_are_disjoint() -> None:
    assert {"mlp_train", "mlp_heldout"} <= set(available())
    train, held = load_task_set("mlp_train"), load_task_set("mlp_heldout")
    check_disjoint(train, held)
    for ts in (train, held):
        for name in ts.names:  # every task is a valid env config (validated without loading data)
            EnvConfig.from_kwargs(**task_env_kwargs({"val_probe": 1000, "steps_per_action": 5}, ts, name))
    with pytest.raises(ValueError, match="shares tasks"):
        check_disjoint(train, load_task_set({"name": "leak", "tasks": {"x": train.tasks[train.names[0]]}}))


def test_a_task_may_not_change_the_spaces_and_unknown_sets_are_named() -> None:
    with pytest.raises(ValueError, match="cannot vary between tasks"):
        load_task_set({"name": "bad", "tasks": {"a": {"features": "paper"}}})
    with pytest.raises(ValueError, match="unknown task set 'nope'"):
        EnvConfig.from_kwargs(tasks="nope")
    with pytest.raises(ValueError, match="task 'a' of task set 'bad'"):
        EnvConfig.from_kwargs(tasks={"name": "bad", "tasks": {"a": {"batch_size": 0}}})
    assert "features" not in TASK_KEYS and "lr_max" not in TASK_KEYS


def test_the_same_seed_gives_the_same_task_and_trainee(set_kwargs) -> None:
    a, b = LRControlEnv(**set_kwargs), LRControlEnv(**set_kwargs)
    names = list(TINY_SET["tasks"])
    for seed in (0, 1, 2, 7, 11):
        info_a, obs_a = run(a, seed)
        info_b, obs_b = run(b, seed)
        assert info_a["task"] == info_b["task"] == names[seed % 3]
        np.testing.assert_array_equal(np.stack(obs_a), np.stack(obs_b))
        assert info_a["test_loss"] == info_b["test_loss"]
    # Each task runs its own problem: its horizon and its model.
    info, _ = run(a, 1)
    assert info["step"] == 4 and a.trainee.net.head.in_features == 32


def test_a_task_set_episode_is_the_single_task_episode_of_its_task(set_kwargs, tiny_env_kwargs) -> None:
    ts = load_task_set(TINY_SET)
    multi = LRControlEnv(**set_kwargs)
    for seed in (1, 2):
        task = ts.task_for_seed(seed)
        single = LRControlEnv(**task_env_kwargs(tiny_env_kwargs, ts, task))
        info_m, obs_m = run(multi, seed)
        info_s, obs_s = run(single, seed)
        assert info_s["task"] == task
        np.testing.assert_array_equal(np.stack(obs_m), np.stack(obs_s))
        assert info_m["test_loss"] == info_s["test_loss"]


def test_the_task_is_a_column_of_every_results_row(tiny_env_kwargs, tmp_path: Path) -> None:
    ts = load_task_set(TINY_SET)
    kw = task_env_kwargs(tiny_env_kwargs, ts, "fm_w16")
    run_benchmark(kw, [make_controller("constant", name="c", lr=0.01)], [0, 1], tmp_path, progress=False)
    rows = read_results(tmp_path / "results.csv")
    assert list(rows["task"]) == ["fm_w16", "fm_w16"]


def test_the_batched_vector_env_refuses_a_task_set_by_name(set_kwargs) -> None:
    from rlsched.env.vector import LRControlVecEnv

    with pytest.raises(ValueError, match="vec_env=dummy or subproc"):
        LRControlVecEnv(set_kwargs, 2)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_trains(optimizer: str, tiny_env_kwargs) -> None:
    lr = 1.0 if optimizer in ("prodigy", "dadapt_adam") else 0.01
    env = LRControlEnv(**{**tiny_env_kwargs, "optimizer": optimizer, "initial_lr": lr, "lr_max": 1.0})
    _, info = env.reset(seed=0)
    first = info["val_loss"]
    for _ in range(5):
        _, _, done, _, info = env.step_lr(lr)
    assert done and math.isfinite(info["test_loss"]) and info["val_loss"] < first


def test_schedule_free_evaluates_its_averaged_weights_and_switches_back(tiny_env_kwargs) -> None:
    cfg = EnvConfig.from_kwargs(**{**tiny_env_kwargs, "optimizer": "schedulefree_adamw"})
    splits = cfg.make_splits(0, torch.device("cpu"))
    tr = Trainee.from_config(cfg, splits, init_seed=0, order_seed=0, device=torch.device("cpu"))
    tr.train(3)
    train_weights = [p.detach().clone() for p in tr.net.parameters()]
    seen = {}

    def record(module, args, out):  # the weights the evaluation's forward pass actually uses
        seen["w"] = module.weight.detach().clone()

    handle = tr.net.head.register_forward_hook(record)
    tr.evaluate(splits.x_probe, splits.y_probe)
    handle.remove()
    head = [n for n, _ in tr.net.named_parameters()].index("head.weight")
    moved = (seen["w"] - train_weights[head]).abs().max().item()
    assert moved > 1e-4  # evaluated on the average, not the training point
    for before, now in zip(train_weights, tr.net.parameters(), strict=True):
        # switched back to the training weights after (schedule-free's inverse interpolation rounds in float32)
        torch.testing.assert_close(now.detach(), before, atol=1e-6, rtol=0)
    assert tr.opt.param_groups[0]["train_mode"]
    tr.train(1)  # and training goes on from there


def test_invariant_features_do_not_move_with_width(tiny_env_kwargs) -> None:
    """At initialization, the paper's weight variance scales as 1/fan-in; the invariant one does not."""
    obs = {}
    for width in (16, 256):
        for features in ("default", "invariant"):
            env = LRControlEnv(**{**tiny_env_kwargs, "model_kwargs": {"hidden": [width, width]}, "features": features})
            o, _ = env.reset(seed=0)
            obs[width, features] = dict(zip(env.feature_names, o.tolist(), strict=True))
    paper = obs[16, "default"]["penult_weight_var"] / obs[256, "default"]["penult_weight_var"]
    invariant = obs[16, "invariant"]["penult_weight_var_scaled"] / obs[256, "invariant"]["penult_weight_var_scaled"]
    assert paper > 10 and abs(invariant - 1) < 0.1
    assert abs(obs[16, "invariant"]["penult_weight_var_scaled"] - 1 / 3) < 0.05  # Kaiming-uniform: 1/(3 fan-in)
    assert obs[16, "invariant"]["log10_lr_rel"] == 0.0  # the LR relative to the task's initial LR
    assert abs(obs[16, "invariant"]["val_loss_rel"] - 1) < 0.1  # untrained: about ln C


def test_tuning_on_a_task_set_scores_one_setting_over_its_tasks(set_kwargs, tmp_path: Path) -> None:
    specs = {"constant": {"kind": "constant", "lr": 0.01}}
    settings = TuneSettings(n_trials=2, seeds=[20000, 20001, 20002], lr_range=(0.001, 0.05))
    winners = tune_baselines(set_kwargs, ["constant"], specs, settings, tmp_path / "t", tuned_dir=tmp_path)
    (tuned,) = tmp_path.glob("*.yaml")
    assert tuned.name.startswith("taskset_tiny_")
    assert yaml.safe_load(tuned.read_text())["constant"]["lr"] == pytest.approx(winners[0].params["lr"])
    # The score is the mean over the three seeds, which draw the three tasks (20000 % 3 = 2, then 0, 1).
    env = LRControlEnv(**{**set_kwargs, "test_eval": False})
    losses = []
    for seed in settings.seeds:
        env.reset(seed=seed)
        tasks = env.task
        done = False
        while not done:
            _, _, done, _, info = env.step_lr(winners[0].params["lr"])
        losses.append((tasks, info["final_val_loss"]))
    assert {t for t, _ in losses} == set(TINY_SET["tasks"])
    assert winners[0].score == pytest.approx(np.mean([v for _, v in losses]), rel=1e-6)


def test_tasks_dir_is_the_projects() -> None:
    assert Path(__file__).resolve().parents[1] / "conf" / "tasks" == TASKS_DIR


def test_the_prior_offset_action_at_zero_is_the_textbook_warmup_cosine(tiny_env_kwargs) -> None:
    """The budget-aware prior (issue 14's lever) is exactly the warmup_cosine baseline at its textbook settings
    on the task's stated rate and horizon; an action of +-1 moves the rate one decade around it."""
    kw = {**tiny_env_kwargs, "episode_steps": 7}
    prior_env, ref = LRControlEnv(**kw, action="prior_offset"), LRControlEnv(**kw)
    ctrl = make_controller("warmup_cosine", lr=0.01, warmup_frac=0.1, start_factor=0.1, eta_min=0.0)
    obs, info = ref.reset(seed=3)
    prior_env.reset(seed=3)
    ctrl.reset(ref, obs, info)
    done = False
    while not done:
        assert prior_env.action_to_lr(np.ones(1)) == pytest.approx(10 * prior_env.action_to_lr(np.zeros(1)))
        obs, _, done, _, info = ref.step_lr(ctrl.act(obs, info))
        _, _, _, _, info_p = prior_env.step(np.zeros(1, np.float32))
        assert info_p["lr"] == pytest.approx(info["lr"], rel=1e-12)
    assert info_p["test_loss"] == info["test_loss"]


def test_the_scale_action_at_zero_on_schedule_free_adamw_is_sf_adamw_at_the_stated_lr(tiny_env_kwargs) -> None:
    """experiment=taskset_sf's anchor: holding the action at 0 is the protocol's sf_adamw@stated, run for run."""
    from rlsched.bench.harness import run_episode

    kw = {**tiny_env_kwargs, "optimizer": "schedulefree_adamw", "features": "invariant", "reward": "log_diff"}
    env = LRControlEnv(**kw)
    env.reset(seed=3)
    done = False
    while not done:
        _, _, done, _, info = env.step(np.zeros(1, np.float32))
    stated = run_episode(LRControlEnv(**kw), make_controller("constant", name="sf_adamw@stated", lr=0.01), 3)
    assert info["lr"] == 0.01
    assert (info["test_loss"], info["final_val_loss"]) == (stated.final["test_loss"], stated.final["final_val_loss"])
