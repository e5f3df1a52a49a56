"""The one rollout (single env and population) and the reference runner the paired reward is handed."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from rlsched.control import make_controller
from rlsched.control.reference import RUNNER, BaselineReference
from rlsched.control.rollout import Episode, rollout
from rlsched.env import reference
from rlsched.env.lr_control import LRControlEnv
from rlsched.env.vector import LRControlVecEnv

ATOL = 2e-5  # batched kernels sum in another order than separate ones (as in test_vector_env)
PLATEAU = {"kind": "plateau", "lr": 0.01, "factor": 0.5, "patience": 1}


@pytest.fixture(autouse=True)
def fresh_reference_cache():
    reference.clear_cache()
    yield
    reference.clear_cache()


def test_population_rollout_gives_the_single_episodes_in_seed_order(tiny_env_kwargs):
    ctrl = make_controller("cosine", lr=0.02)
    seeds = [4, 9, 2]  # three seeds on two rows: the second group is padded with a repeat of seed 2
    single = rollout(LRControlEnv(**tiny_env_kwargs), ctrl, seeds, fingerprints=True)
    batched = rollout(LRControlVecEnv(tiny_env_kwargs, 2), ctrl, seeds, fingerprints=True)
    assert [e.seed for e in single] == [e.seed for e in batched] == seeds
    steps = tiny_env_kwargs["episode_steps"]
    for a, b in zip(single, batched, strict=True):
        assert len(a.infos) == len(b.infos) == steps + 1  # the reset, then one info per step
        assert a.init_fingerprint == b.init_fingerprint
        np.testing.assert_allclose(b.ret, a.ret, atol=ATOL)
        for key in ("lr", "val_loss", "train_loss"):
            np.testing.assert_allclose([i[key] for i in b.infos], [i[key] for i in a.infos], atol=ATOL, err_msg=key)
        assert a.last["test_loss"] == pytest.approx(b.last["test_loss"], abs=ATOL)
    assert len({e.init_fingerprint for e in single}) == 3
    assert single[0].ret == pytest.approx(-sum(i["val_loss"] for i in single[0].infos[1:]), rel=1e-6)


def test_probe_curve_stops_before_the_step_that_diverged():
    ok = Episode(0, [{"val_loss": 2.3}, {"val_loss": 1.0, "diverged": False}], -1.0, 0.0, 0.0)
    bad = Episode(
        0, [{"val_loss": 2.3}, {"val_loss": 1.0, "diverged": False}, {"val_loss": math.inf, "diverged": True}], 0, 0, 0
    )
    assert ok.probe_curve() == [2.3, 1.0] and bad.probe_curve() == [2.3, 1.0]


class FixedCurve:
    """A reference runner that runs nothing: the env must take whatever curve it is handed."""

    def __init__(self, curve: list[float]) -> None:
        self.curve, self.calls = curve, []

    def check(self, spec) -> None:
        if spec.get("kind") != "fixed":
            raise ValueError("only kind 'fixed'")

    def run(self, cfg, spec, seed: int) -> list[float]:
        self.calls.append((cfg, dict(spec), seed))
        return self.curve


def test_the_env_takes_its_reference_from_the_runner_it_is_handed(tiny_env_kwargs):
    runner = FixedCurve([2.0, 1.0, 0.5])  # "diverged" after step 2: steps 3.. count at the divergence loss
    kw = {**tiny_env_kwargs, "reward": "paired_log", "reward_reference": {"kind": "fixed"}}
    env = LRControlEnv(reference_runner=runner, **kw)
    env.reset(seed=6)
    rewards, infos = [], []
    for _ in range(tiny_env_kwargs["episode_steps"]):
        _, r, _, _, info = env.step_lr(0.01)
        rewards.append(r)
        infos.append(info)
    div = env.div_loss
    expected = [math.log(ref) - math.log(i["val_loss"]) for ref, i in zip([1.0, 0.5] + [div] * 3, infos, strict=True)]
    assert rewards == pytest.approx(expected, rel=1e-6)
    [(cfg, spec, seed)] = runner.calls
    # The runner is asked for the reference env (per-step reward, no final evaluation) on the same episode seed.
    assert (seed, spec) == (6, {"kind": "fixed"})
    assert (cfg.reward, cfg.reward_reference, cfg.final_val_eval, cfg.test_eval) == ("neg_val_loss", None, False, False)
    with pytest.raises(ValueError, match=r"bad reward_reference.*only kind 'fixed'"):
        LRControlEnv(reference_runner=runner, **{**kw, "reward_reference": PLATEAU})


def test_without_a_runner_the_paired_env_says_how_to_get_one(tiny_env_kwargs):
    kw = {**tiny_env_kwargs, "reward": "paired_log", "reward_reference": PLATEAU}
    previous = reference.install_runner(None)
    try:
        with pytest.raises(ValueError, match=r"needs a reference runner.*import rlsched\.control\.reference"):
            LRControlEnv(**kw)
    finally:
        reference.install_runner(previous)
    assert reference.installed_runner() is RUNNER  # importing rlsched.control.reference installed it


def test_the_baseline_runner_is_the_rollout_of_its_spec(tiny_env_kwargs):
    env = LRControlEnv(**tiny_env_kwargs)
    [episode] = rollout(env, make_controller(**PLATEAU), [8])
    runner = BaselineReference()
    assert runner.run(env.cfg, PLATEAU, 8) == [i["val_loss"] for i in episode.infos]
    with pytest.raises(ValueError, match="unknown controller 'plato'"):
        runner.check({**PLATEAU, "kind": "plato"})
    # Sent to a subprocess (SubprocVecEnv) without its internal envs and their data.
    assert runner._envs and pickle.loads(pickle.dumps(runner))._envs == {}
