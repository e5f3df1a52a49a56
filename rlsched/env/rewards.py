"""Rewards: one small object per reward type, built from an `EnvConfig` by `make_reward`.

A reward is told the probe's validation loss at the start of a run (`reset`) and after every env step (`step`);
`divergence(t)` scores a run that diverged at step t. A diverged run is scored as if its validation loss sat at
`divergence_loss` for every remaining step, so that ending an episode early never pays (with negative per-step
rewards it otherwise would); `divergence_penalty`, when set, replaces that with a fixed reward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rlsched.env.options import REWARD_TYPES
from rlsched.env.reference import ReferenceRunner, reference_provider

if TYPE_CHECKING:
    from rlsched.env.config import EnvConfig

LOSS_FLOOR = 1e-12  # keeps log(loss) finite for the log rewards


def _log(loss: float) -> float:
    return math.log(max(loss, LOSS_FLOOR))


class Reward:
    """Base: keeps the step count and the previous probe loss; subclasses say what a step and a divergence pay."""

    needs_episode_seed = False  # True: reset() must be given the episode's seed

    def __init__(self, horizon: int, div_loss: float, divergence_penalty: float | None = None) -> None:
        self.horizon = horizon
        self.div_loss = div_loss
        self.divergence_penalty = divergence_penalty
        self.t = 0
        self.prev_val_loss = math.nan

    def reset(self, val_loss: float, episode_seed: int | None = None) -> None:
        """A new run whose probe loss before any training is `val_loss`."""
        self.t = 0
        self.prev_val_loss = val_loss

    def step(self, val_loss: float, last: bool, info: dict[str, Any]) -> float:
        """The reward of the step just taken (probe loss `val_loss`; `last`: the budget's final step; `info`: the
        step's info, with the final evaluation when `last`)."""
        self.t += 1
        reward = self._step(val_loss, last, info)
        self.prev_val_loss = val_loss
        return reward

    def divergence(self, t: int) -> float:
        """The reward of step `t`, at which the run diverged (the episode ends there)."""
        if self.divergence_penalty is not None:
            return self.divergence_penalty
        return self._divergence(t)

    def remaining(self, t: int) -> int:
        """Steps t..horizon: the diverging one and every one the run will not take."""
        return self.horizon - t + 1

    def _step(self, val_loss: float, last: bool, info: dict[str, Any]) -> float:
        raise NotImplementedError

    def _divergence(self, t: int) -> float:
        raise NotImplementedError


class NegValLoss(Reward):
    """-L_t every step."""

    def _step(self, val_loss: float, last: bool, info: dict[str, Any]) -> float:
        return -val_loss

    def _divergence(self, t: int) -> float:
        return -self.div_loss * self.remaining(t)


class PaperReward(Reward):
    """baseline - L_t every step (the authors' reward, baseline 2)."""

    def __init__(self, horizon: int, div_loss: float, divergence_penalty: float | None, baseline: float) -> None:
        super().__init__(horizon, div_loss, divergence_penalty)
        self.baseline = baseline

    def _step(self, val_loss: float, last: bool, info: dict[str, Any]) -> float:
        return self.baseline - val_loss

    def _divergence(self, t: int) -> float:
        return (self.baseline - self.div_loss) * self.remaining(t)


class FinalOnly(Reward):
    """Nothing until the last step, then minus the full validation loss (the probe's if the full evaluation is
    switched off)."""

    def _step(self, val_loss: float, last: bool, info: dict[str, Any]) -> float:
        return -info.get("final_val_loss", val_loss) if last else 0.0

    def _divergence(self, t: int) -> float:
        return -self.div_loss


class LogDiff(Reward):
    """log L_{t-1} - log L_t: telescopes to log(L_0 / L_T) over an episode."""

    def _step(self, val_loss: float, last: bool, info: dict[str, Any]) -> float:
        return _log(self.prev_val_loss) - _log(val_loss)

    def _divergence(self, t: int) -> float:
        return _log(self.prev_val_loss) - math.log(self.div_loss)


class PairedLog(Reward):
    """log L_ref,t - log L_t, where L_ref is the reference baseline's probe loss on the same trainee (same episode
    seed) after the same number of steps: positive exactly where the controller is ahead of the baseline.

    `reference(seed)` gives the reference run's probe losses at steps 0, 1, ...; a shorter list means the
    reference diverged there, and it counts as sitting at `divergence_loss` from then on.
    """

    needs_episode_seed = True

    def __init__(
        self,
        horizon: int,
        div_loss: float,
        divergence_penalty: float | None,
        reference: Callable[[int], Sequence[float]],
    ) -> None:
        super().__init__(horizon, div_loss, divergence_penalty)
        self.reference = reference
        self.curve: list[float] = []

    def reset(self, val_loss: float, episode_seed: int | None = None) -> None:
        if episode_seed is None:
            raise ValueError("reward paired_log needs the episode seed: reset(val_loss, episode_seed)")
        super().reset(val_loss, episode_seed)
        curve = list(self.reference(int(episode_seed)))[: self.horizon + 1]
        self.curve = curve + [self.div_loss] * (self.horizon + 1 - len(curve))

    def _step(self, val_loss: float, last: bool, info: dict[str, Any]) -> float:
        return _log(self.curve[self.t]) - _log(val_loss)

    def _divergence(self, t: int) -> float:
        log_div = math.log(self.div_loss)
        return sum(_log(ref) - log_div for ref in self.curve[t : self.horizon + 1])


def _paired_log(cfg: EnvConfig, div: float, runner: ReferenceRunner | None) -> PairedLog:
    return PairedLog(cfg.episode_steps, div, cfg.divergence_penalty, reference_provider(cfg, runner))


REWARDS: dict[str, Callable[[EnvConfig, float, ReferenceRunner | None], Reward]] = {
    "neg_val_loss": lambda cfg, div, _: NegValLoss(cfg.episode_steps, div, cfg.divergence_penalty),
    "paper": lambda cfg, div, _: PaperReward(cfg.episode_steps, div, cfg.divergence_penalty, cfg.reward_baseline),
    "final_only": lambda cfg, div, _: FinalOnly(cfg.episode_steps, div, cfg.divergence_penalty),
    "log_diff": lambda cfg, div, _: LogDiff(cfg.episode_steps, div, cfg.divergence_penalty),
    "paired_log": _paired_log,
}
assert tuple(REWARDS) == REWARD_TYPES, "rlsched.env.options.REWARD_TYPES names the rewards"


def make_reward(cfg: EnvConfig, div_loss: float, reference_runner: ReferenceRunner | None = None) -> Reward:
    """The reward `cfg.reward` names; `div_loss`: the loss a diverged run is scored at; `reference_runner`: what
    runs paired_log's reference baseline (default: the process's installed one, see rlsched.env.reference)."""
    return REWARDS[cfg.reward](cfg, div_loss, reference_runner)
