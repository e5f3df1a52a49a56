"""Action maps: how a controller's action becomes the next learning rate, one small object per action type.

Each map owns the gym action space it needs and `to_lr(current_lr, action, t)` (t: the env steps taken before
this action), which refuses NaN and clips the result to [lr_min, lr_max]. `make_action_map(cfg)` builds the one
an `EnvConfig` names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rlsched.env.options import ACTION_TYPES

if TYPE_CHECKING:
    from rlsched.env.config import EnvConfig


def clip(value: float, low: float, high: float) -> float:
    # Python floats: np.clip on a scalar costs microseconds, on the env's per-step path.
    return min(max(value, low), high)


def _unit_action(action: Any) -> float:
    """A Box action's single value, refused if NaN and clipped to [-1, 1]."""
    a = float(np.ravel(action)[0])
    if math.isnan(a):
        raise ValueError("action is NaN; the controller's output must be a number in [-1, 1]")
    return clip(a, -1.0, 1.0)


def _unit_box() -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


class ActionMap:
    """Base: the space a controller acts in and the LR an action leads to."""

    space: gym.Space

    def __init__(self, lr_min: float, lr_max: float) -> None:
        self.lr_min, self.lr_max = lr_min, lr_max

    def to_lr(self, current_lr: float, action: Any, t: int = 0) -> float:
        return clip(self._lr(current_lr, action, t), self.lr_min, self.lr_max)

    def _lr(self, current_lr: float, action: Any, t: int) -> float:
        raise NotImplementedError


class ScaleAction(ActionMap):
    """a in [-1, 1] -> multiply the LR by low + (a+1)/2 (high-low), raised to `power` (K when the multiplier acts
    at each of the K optimizer steps, 1 when it acts once per env step)."""

    def __init__(self, low: float, high: float, power: int, lr_min: float, lr_max: float) -> None:
        super().__init__(lr_min, lr_max)
        self.low, self.high, self.power = low, high, power
        self.space = _unit_box()

    def _lr(self, current_lr: float, action: Any, t: int) -> float:
        a = _unit_action(action)
        multiplier = self.low + (a + 1.0) / 2.0 * (self.high - self.low)
        if self.power != 1:
            multiplier **= self.power
        return current_lr * multiplier

    @classmethod
    def from_config(cls, cfg: EnvConfig) -> ScaleAction:
        lo, hi = cfg.scale_range
        power = cfg.steps_per_action if cfg.scale_per == "optimizer_step" else 1
        return cls(lo, hi, power, cfg.lr_min, cfg.lr_max)


class DiscreteAction(ActionMap):
    """Action i -> multiply the LR by multipliers[i]."""

    def __init__(self, multipliers: tuple[float, ...], lr_min: float, lr_max: float) -> None:
        super().__init__(lr_min, lr_max)
        self.multipliers = tuple(multipliers)
        self.space = gym.spaces.Discrete(len(self.multipliers))

    def _lr(self, current_lr: float, action: Any, t: int) -> float:
        return current_lr * self.multipliers[int(action)]

    @classmethod
    def from_config(cls, cfg: EnvConfig) -> DiscreteAction:
        return cls(cfg.discrete_multipliers, cfg.lr_min, cfg.lr_max)


class LogLRAction(ActionMap):
    """a in [-1, 1] -> the raw rate on a log scale spanning [lr_min, lr_max] (the current LR is ignored)."""

    def __init__(self, lr_min: float, lr_max: float) -> None:
        super().__init__(lr_min, lr_max)
        self.log_lo, self.log_hi = math.log10(lr_min), math.log10(lr_max)
        self.space = _unit_box()

    def _lr(self, current_lr: float, action: Any, t: int) -> float:
        a = _unit_action(action)
        return 10 ** (self.log_lo + (a + 1.0) / 2.0 * (self.log_hi - self.log_lo))

    @classmethod
    def from_config(cls, cfg: EnvConfig) -> LogLRAction:
        return cls(cfg.lr_min, cfg.lr_max)


def prior_schedule(t: int, horizon: int, peak: float, warmup_frac: float = 0.1, start_factor: float = 0.1) -> float:
    """The budget-aware prior: linear warm-up from start_factor x peak over the first warmup_frac of the
    horizon, then cosine to 0 at its end; the rate of the action taken after t env steps. The textbook
    defaults, untuned: what a practitioner runs at a task's stated rate and budget."""
    warm = min(horizon - 1, max(1, round(warmup_frac * horizon)))  # as the warmup_cosine baseline rounds it
    if t < warm:
        return peak * (start_factor + (1.0 - start_factor) * t / warm)
    return peak * 0.5 * (1.0 + math.cos(math.pi * (t - warm) / max(1, horizon - warm)))


class PriorOffsetAction(ActionMap):
    """a in [-1, 1] -> the prior schedule's rate (warm-up + cosine at the task's initial LR over its horizon)
    times 10^(a x decades): an offset around a budget-aware prior, not a multiplier of the current rate, so the
    zero action follows the prior and the controller learns only corrections to it."""

    def __init__(self, horizon: int, peak: float, decades: float, lr_min: float, lr_max: float) -> None:
        super().__init__(lr_min, lr_max)
        self.horizon, self.peak, self.decades = horizon, peak, decades
        self.space = _unit_box()

    def _lr(self, current_lr: float, action: Any, t: int) -> float:
        a = _unit_action(action)
        return prior_schedule(int(t), self.horizon, self.peak) * 10 ** (a * self.decades)

    @classmethod
    def from_config(cls, cfg: EnvConfig) -> PriorOffsetAction:
        return cls(cfg.episode_steps, cfg.initial_lr, PRIOR_OFFSET_DECADES, cfg.lr_min, cfg.lr_max)


PRIOR_OFFSET_DECADES = 1.0  # the offset spans x/÷ 10 around the prior

ACTION_MAPS: dict[str, Callable[[EnvConfig], ActionMap]] = {
    "scale": ScaleAction.from_config,
    "discrete": DiscreteAction.from_config,
    "log_lr": LogLRAction.from_config,
    "prior_offset": PriorOffsetAction.from_config,
}
assert tuple(ACTION_MAPS) == ACTION_TYPES, "rlsched.env.options.ACTION_TYPES names the action maps"


def make_action_map(cfg: EnvConfig) -> ActionMap:
    return ACTION_MAPS[cfg.action](cfg)
