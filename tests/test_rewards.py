"""Rewards: one object per type (semantics checked without an env), and the paired reward against a reference."""

from __future__ import annotations

import math

import pytest

from envs.lr_control import EnvConfig
from envs.rewards import REWARD_TYPES, REWARDS, FinalOnly, LogDiff, NegValLoss, PaperReward, make_reward

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
