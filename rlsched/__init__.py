"""rlsched: learning-rate schedules learned with reinforcement learning.

`rlsched.LearnedLR` (a trained controller as a torch LR scheduler) is imported on first use, so that
`import rlsched` stays light for the modules that need none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlsched import env  # noqa: F401  (registers the Gymnasium envs; cheap: their classes load on first use)

if TYPE_CHECKING:
    from rlsched.control.learned_lr import LearnedLR

__all__ = ["LearnedLR"]


def __getattr__(name: str) -> Any:
    if name == "LearnedLR":
        from rlsched.control.learned_lr import LearnedLR

        return LearnedLR
    raise AttributeError(f"module 'rlsched' has no attribute {name!r}")
