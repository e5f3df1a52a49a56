"""The held-out protocol (rlsched.bench.taskset_protocol) end to end at toy sizes: every zero-tuning method and the
per-task tuned schedules run on the same trainees as the learned controllers, and the tables hold their Δ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from tiny import TINY_ENV

from rlsched.bench.taskset_protocol import ZERO_TUNING, Protocol, check_pairing, collect, report
from rlsched.control.artifact import algorithm_class, save_artifact
from rlsched.env.lr_control import LRControlEnv
from rlsched.env.tasks import load_task_set

TRAIN = {
    "name": "toy_train",
    "tasks": {"w16": {"model_kwargs": {"hidden": [16]}}, "w64": {"model_kwargs": {"hidden": [64]}}},
}
HELD = {
    "name": "toy_held",
    "tasks": {
        "w32": {"model_kwargs": {"hidden": [32]}},
        "w32_t6": {"model_kwargs": {"hidden": [32]}, "episode_steps": 6},
    },
}


def _artifact(out: Path, env_kwargs: dict, seed: int) -> Path:
    env = LRControlEnv(**env_kwargs)
    venv = VecNormalize(DummyVecEnv([lambda: env]), norm_reward=False)
    venv.seed(seed)
    venv.reset()
    venv.step(np.array([[0.5]], dtype=np.float32))
    model = algorithm_class("ppo")("MlpPolicy", venv, seed=seed, device="cpu", policy_kwargs={"net_arch": [8]})
    return save_artifact(out, model=model, vecnormalize=venv, env_config=env.cfg.to_dict(), algo="ppo")


@pytest.fixture(scope="module")
def protocol_run(tmp_path_factory, data_dir: Path):
    tmp = tmp_path_factory.mktemp("protocol")
    base = {
        **TINY_ENV,
        "episode_steps": 4,
        "eval_batch_size": 1000,
        "data_dir": str(data_dir),
        "features": "invariant",
    }
    learned = {f"learned_s{k}": _artifact(tmp / f"a{k}", {**base, "tasks": TRAIN}, k) for k in (0, 1)}
    proto = Protocol(
        base_env=base,
        held_out=load_task_set(HELD),
        learned=learned,
        set_tuned={"constant": {"kind": "constant", "lr": 0.02}},
        out_dir=tmp / "out",
        seeds=[0, 1, 2],
        n_trials=2,
    )
    for task in HELD["tasks"]:
        proto.evaluate_task(task)
    rows = collect(proto.out_dir, list(HELD["tasks"]))
    md = report(rows, {"invariant": list(learned)}, {"learned_s0": {"total_timesteps": 0}}, proto.out_dir)
    return proto, rows, md


def test_every_method_runs_on_every_task_and_seed(protocol_run) -> None:
    _, rows, _ = protocol_run
    methods = {
        "learned_s0",
        "learned_s1",
        "constant@set",
        "warmup_cosine@task",
        "one_cycle@task",
        "warmup_cosine@stated",
    }
    methods |= {z.name for z in ZERO_TUNING}
    for task in HELD["tasks"]:
        got = rows[rows.task == task]
        assert set(got.controller) == methods
        assert (got.groupby("controller").seed.nunique() == 3).all()
    # Zero-tuning methods with other optimizers really ran them: they differ from Adam on the same trainee.
    piv = rows[rows.task == "w32"].pivot_table(index="seed", columns="controller", values="test_loss")
    assert not np.allclose(piv["sf_adamw@stated"], piv["adam@stated"])


def test_all_methods_start_from_the_same_trainee(protocol_run) -> None:
    _, rows, _ = protocol_run
    check_pairing(rows)  # one init fingerprint per (task, seed), whatever the optimizer
    bad = rows.copy()
    bad.loc[bad.index[0], "init_fingerprint"] = "other"
    with pytest.raises(ValueError, match="unpaired"):
        check_pairing(bad)


def test_the_tables_hold_the_paired_differences(protocol_run) -> None:
    proto, rows, md = protocol_run
    t1 = __import__("pandas").read_csv(proto.out_dir / "table1_zero_tuning.csv")
    r = t1[(t1.task == "w32") & (t1.method == "prodigy@1")].iloc[0]
    df = rows[rows.task == "w32"].pivot_table(index="seed", columns="controller", values="test_loss")
    expected = np.mean([(df[f"learned_s{k}"] - df["prodigy@1"]).mean() for k in (0, 1)])
    assert r.diff_mean == pytest.approx(expected)
    assert r.n_ppo_seeds == 2 and r.t_ci_low <= r.diff_mean <= r.t_ci_high
    assert "Table 1: zero tuning" in md and "Table 2: per-task tuned" in md and "mean over tasks" in md
    assert (proto.out_dir / "headroom.csv").is_file()
    assert (proto.out_dir / "w32" / "lr_schedules.png").stat().st_size > 1000
