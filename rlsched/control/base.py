"""The interface every learning-rate controller implements, baselines and learned policies alike."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rlsched.env.lr_control import LRControlEnv


class Controller(abc.ABC):
    """Chooses the learning rate (or the env action) before each env step.

    The harness calls `reset(env.unwrapped, obs, info)` after every `env.reset()`, then, before each step,
    `act(obs, info)` with the latest observation and info. With `sets_lr=True` act() returns the learning
    rate and the harness calls `env.unwrapped.step_lr(lr)`; with `sets_lr=False` it returns an action in
    `env.action_space` and the harness calls `env.step(action)`.
    """

    name: str
    sets_lr: bool = True
    # Public attributes computed in reset() from the env, not chosen by the user: not part of identity().
    derived: tuple[str, ...] = ()

    def reset(self, env: LRControlEnv, obs: np.ndarray, info: dict[str, Any]) -> None:  # noqa: B027
        """Start a new episode; `env` is the unwrapped env. Stateless controllers need not override."""

    @abc.abstractmethod
    def act(self, obs: np.ndarray, info: dict[str, Any]) -> float | np.ndarray | int:
        """The LR (sets_lr=True) or the action (sets_lr=False) for the coming step."""

    def identity(self) -> str:
        """What makes two runs of this controller the same run; the harness resumes only matching runs."""
        params = {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_") and k not in self.derived}
        return f"{type(self).__name__}:{params}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
