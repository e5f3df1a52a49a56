"""Rewards: one object per type (semantics checked without an env), and the paired reward against a reference."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from rlsched.config import PROJECT_ROOT, env_kwargs, load_tuned, resolve_reward_reference, to_dict
from rlsched.control import make_controller
from rlsched.env import reference
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.env.rewards import (
    REWARD_TYPES,
    REWARDS,
    FinalOnly,
    LogDiff,
    NegValLoss,
    PairedLog,
    PaperReward,
    make_reward,
)

DIV = 2 * math.log(10)


# ----- the reward objects alone -------------------------------------------------------------------------------
def test_every_reward_type_has_an_object():
    assert set(REWARDS) == set(REWARD_TYPES)
    for name, cls in (("neg_val_loss", NegValLoss), ("paper", PaperReward), ("final_only", FinalOnly)):
        assert type(make_reward(EnvConfig(reward=name), DIV)) is cls


def test_per_step_rewards_and_their_divergence():
    neg, paper = NegValLoss(5, DIV), PaperReward(5, DIV, None, baseline=3.0)
    for r in (neg, paper):
        r.reset(2.3)
    assert [neg.step(v, False, {}) for v in (1.5, 1.2)] == [-1.5, -1.2]
    assert [paper.step(v, False, {}) for v in (1.5, 1.2)] == [1.5, pytest.approx(1.8)]
    # Diverged at step 3 of 5: steps 3, 4 and 5 are scored at the divergence loss.
    assert neg.divergence(3) == pytest.approx(-3 * DIV)
    assert paper.divergence(3) == pytest.approx(3 * (3.0 - DIV))
    assert NegValLoss(5, DIV, divergence_penalty=-50.0).divergence(3) == -50.0


def test_final_only_pays_at_the_end():
    r = FinalOnly(3, DIV)
    r.reset(2.3)
    assert r.step(1.5, False, {"final_val_loss": 9.0}) == 0.0
    assert r.step(1.4, True, {"final_val_loss": 1.3}) == -1.3
    assert r.step(1.4, True, {}) == -1.4  # the probe's loss when the full evaluation is off
    assert r.divergence(2) == -DIV


def test_log_diff_telescopes_and_resets():
    r = LogDiff(4, DIV)
    losses = [2.0, 1.0, 1.6, 0.5]
    r.reset(2.5)
    total = sum(r.step(v, False, {}) for v in losses)
    assert total == pytest.approx(math.log(2.5 / 0.5))
    assert r.divergence(5) == pytest.approx(math.log(0.5) - math.log(DIV))
    r.reset(1.0)  # a new run forgets the previous loss
    assert r.step(0.5, False, {}) == pytest.approx(math.log(2.0))


# ----- paired_log ---------------------------------------------------------------------------------------------
PLATEAU = {"kind": "plateau", "lr": 0.01, "factor": 0.5, "patience": 1}


@pytest.fixture(autouse=True)
def fresh_reference_cache():
    reference.clear_cache()
    yield
    reference.clear_cache()


@pytest.fixture
def paired_kwargs(tiny_env_kwargs) -> dict:
    return {**tiny_env_kwargs, "reward": "paired_log", "reward_reference": PLATEAU}


def explicit_reference(tiny_env_kwargs: dict, seed: int) -> list[float]:
    """The plateau baseline's probe losses on episode `seed`, run by hand on a plain per-step-reward env."""
    env = LRControlEnv(**tiny_env_kwargs)
    controller = make_controller(**PLATEAU)
    obs, info = env.reset(seed=seed)
    controller.reset(env, obs, info)
    losses, done = [info["val_loss"]], False
    while not done:
        obs, _, done, _, info = env.step_lr(controller.act(obs, info))
        losses.append(info["val_loss"])
    return losses


def scale_episode(env: LRControlEnv, seed: int | None, actions=(1.0, -0.5, 0.3, 1.0, -1.0)):
    _, info = env.reset(seed=seed)
    rewards, infos = [], [info]
    for a in actions:
        _, r, terminated, _, info = env.step(np.array([a], np.float32))
        rewards.append(r)
        infos.append(info)
        if terminated:
            break
    return rewards, infos


def test_paired_reward_is_log_ref_minus_log_loss(tiny_env_kwargs, paired_kwargs):
    ref = explicit_reference(tiny_env_kwargs, 7)
    rewards, infos = scale_episode(LRControlEnv(**paired_kwargs), 7)
    assert len(rewards) == tiny_env_kwargs["episode_steps"]
    assert infos[0]["val_loss"] == ref[0]  # the same trainee: the same untrained network on the same probe
    for t, (r, info) in enumerate(zip(rewards, infos[1:], strict=True), start=1):
        assert r == pytest.approx(math.log(ref[t]) - math.log(info["val_loss"]), rel=1e-12, abs=1e-15)
    assert any(abs(r) > 1e-3 for r in rewards)  # this controller's schedule differs from the reference's


def test_copying_the_reference_schedule_earns_zero(paired_kwargs):
    env = LRControlEnv(**paired_kwargs)
    copy = make_controller(**PLATEAU)
    obs, info = env.reset(seed=3)
    copy.reset(env, obs, info)
    rewards, done = [], False
    while not done:
        obs, r, done, _, info = env.step_lr(copy.act(obs, info))
        rewards.append(r)
    assert len(rewards) == paired_kwargs["episode_steps"]
    assert rewards == pytest.approx([0.0] * len(rewards), abs=1e-12)


def test_reference_run_once_per_seed(paired_kwargs):
    stats = reference.STATS
    a, b = LRControlEnv(**paired_kwargs), LRControlEnv(**paired_kwargs)
    first, _ = scale_episode(a, 11)
    assert (stats.computed, stats.hits) == (1, 0)
    again, _ = scale_episode(a, 11)  # the same training trainee again
    other_env, _ = scale_episode(b, 11)  # another env of the same config (e.g. another PPO seed's)
    assert (stats.computed, stats.hits) == (1, 2)
    assert first == again == other_env
    scale_episode(b, 12)
    assert (stats.computed, stats.hits) == (2, 2)
    # The reward settings are not part of the reference run: a fixed divergence penalty shares its curves.
    scale_episode(LRControlEnv(**paired_kwargs, divergence_penalty=-9.0), 12)
    assert (stats.computed, stats.hits) == (2, 3)
    # Another reference baseline is another run.
    scale_episode(LRControlEnv(**{**paired_kwargs, "reward_reference": {**PLATEAU, "patience": 2}}), 12)
    assert stats.computed == 3


def test_reference_curves_on_disk(paired_kwargs, tmp_path):
    kw = {**paired_kwargs, "reference_cache_dir": str(tmp_path / "refs")}
    first, _ = scale_episode(LRControlEnv(**kw), 5)
    files = list((tmp_path / "refs").glob("*.json"))
    assert len(files) == 1 and reference.STATS.computed == 1
    stored = json.loads(files[0].read_text())
    assert stored["key"]["seed"] == 5 and stored["key"]["reference"] == PLATEAU
    assert len(stored["val_loss"]) == paired_kwargs["episode_steps"] + 1
    reference.clear_cache()  # a new process: only the folder remains
    again, _ = scale_episode(LRControlEnv(**kw), 5)
    assert (reference.STATS.computed, reference.STATS.disk_hits) == (0, 1)
    assert again == first
    files[0].write_text("{broken")  # a damaged file is recomputed, not trusted
    reference.clear_cache()
    assert scale_episode(LRControlEnv(**kw), 5)[0] == first and reference.STATS.computed == 1


def test_unseeded_reset_draws_the_episode_seed(paired_kwargs):
    env = LRControlEnv(**paired_kwargs)
    env.reset(seed=1)
    unseeded, infos = scale_episode(env, None)
    drawn = env.episode_seed
    assert isinstance(drawn, int) and drawn != 1
    replay, replay_infos = scale_episode(LRControlEnv(**paired_kwargs), drawn)
    assert unseeded == replay and infos == replay_infos


DIVERGENT = {"optimizer": "sgd", "momentum": 0.9, "lr_max": 1e6}


def test_divergence_scores_the_remaining_steps_at_the_divergence_loss(tiny_env_kwargs, paired_kwargs):
    kw = {**paired_kwargs, **DIVERGENT}
    ref = explicit_reference({**tiny_env_kwargs, **DIVERGENT}, 2)  # the plateau at 0.01 does not diverge
    env = LRControlEnv(**kw)
    env.reset(seed=2)
    r1 = env.step_lr(0.01)[1]
    _, r, terminated, _, info = env.step_lr(1e6)
    assert terminated and info["diverged"]
    assert r1 == pytest.approx(0.0, abs=1e-12)  # the same rate as the reference at step 1
    steps = tiny_env_kwargs["episode_steps"]
    expected = sum(math.log(ref[t]) - math.log(DIV) for t in range(2, steps + 1))
    assert r == pytest.approx(expected, rel=1e-12) and r < 0
    fixed = LRControlEnv(**kw, divergence_penalty=-50.0)
    fixed.reset(seed=2)
    assert fixed.step_lr(1e6)[1] == -50.0


def test_a_diverged_reference_counts_as_sitting_at_the_divergence_loss():
    r = PairedLog(5, DIV, None, reference=lambda seed: [2.3, 1.0, 0.8])  # diverged at step 3
    r.reset(2.3, episode_seed=0)
    assert r.curve == [2.3, 1.0, 0.8, DIV, DIV, DIV]
    assert [r.step(v, False, {}) for v in (0.5, 0.8, 1.0)] == pytest.approx(
        [math.log(2.0), 0.0, math.log(DIV)], rel=1e-12
    )
    assert r.divergence(4) == pytest.approx(0.0, abs=1e-12)  # both diverged: nothing to choose between them
    assert PairedLog(5, DIV, -3.0, reference=lambda seed: [2.3]).divergence(1) == -3.0
    with pytest.raises(ValueError, match="episode seed"):
        r.reset(2.3, episode_seed=None)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"reward_reference": None}, r"paired_log needs reward_reference.*kind: plateau"),
        ({"reward_reference": "plateau"}, r"got the name 'plateau'.*resolve_reward_reference"),
        ({"reward_reference": {"lr": 0.01}}, r"spec with a 'kind'"),
        ({"reward_reference": {"kind": "plato", "lr": 0.01}}, r"bad reward_reference.*unknown controller 'plato'"),
        ({"reward_reference": {**PLATEAU, "factor": 2.0}}, r"bad reward_reference.*factor must be in \(0, 1\)"),
        ({"reward_reference": {**PLATEAU, "patiense": 1}}, r"bad reward_reference.*patiense"),
        ({"reference_cache_dir": 3}, r"reference_cache_dir must be a folder path"),
    ],
)
def test_bad_paired_config_fails_before_any_data(paired_kwargs, tmp_path, overrides, match):
    kw = {**paired_kwargs, "data_dir": str(tmp_path), **overrides}  # no data there: reaching it would not raise this
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        LRControlEnv(**kw)
    assert time.perf_counter() - start < 2.0


def test_reference_fields_stay_out_of_earlier_configs():
    """Configs that do not use the paired reward keep the dict (and so the identity) they had before."""
    d = EnvConfig.from_kwargs(model="mlp").to_dict()
    assert "reward_reference" not in d and "reference_cache_dir" not in d
    d = EnvConfig.from_kwargs(model="mlp", reward="paired_log", reward_reference=PLATEAU).to_dict()
    assert d["reward_reference"] == PLATEAU


# ----- the reference named in a Hydra config ------------------------------------------------------------------
def compose_train(overrides: list[str]):
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[*overrides, "out_dir=/tmp/rlsched-test"])


def test_rq3_paired_experiment_resolves_the_tuned_plateau(tmp_path):
    cfg = compose_train(["experiment=rq3_paired_reward"])
    assert cfg.env.reward == "paired_log" and cfg.env.reward_reference == "plateau"
    kw = resolve_reward_reference(cfg.env, cfg.baselines)
    spec = kw["reward_reference"]
    default = to_dict(cfg.baselines)["plateau"]
    tuned = load_tuned(kw)["plateau"]  # the demo task is tuned
    assert spec == {**default, **tuned} and spec != default
    EnvConfig.from_kwargs(**env_kwargs(kw))  # a valid env config now
    # Without tuned settings: the config's defaults, with a warning naming the file to create.
    with pytest.warns(UserWarning, match="no tuned settings for reward_reference 'plateau'"):
        untuned = resolve_reward_reference(cfg.env, cfg.baselines, tuned_dir=tmp_path)
    assert untuned["reward_reference"] == default
    # Everything else is rq1's, so the comparison isolates the reward.
    rq1 = to_dict(compose_train(["experiment=rq1_learned_vs_baselines"]).env)
    differing = {k for k in rq1 if rq1[k] != kw[k]}
    assert differing == {"reward", "reward_reference", "reference_cache_dir"}


def test_resolve_reward_reference_passes_specs_and_refuses_unknown_names():
    specs = to_dict(compose_train([]).baselines)
    kw = {"model": "mlp", "reward": "paired_log", "reward_reference": PLATEAU}
    assert resolve_reward_reference(kw, specs) == kw
    assert resolve_reward_reference({"model": "mlp"}, specs) == {"model": "mlp"}
    with pytest.raises(ValueError, match=r"'plato' is not a configured baseline.*plateau"):
        resolve_reward_reference({**kw, "reward_reference": "plato"}, specs)
