"""A wrapper that draws every episode's seed from a fixed pool of training trainees.

PPO's training episodes come from the *training* seed set (rlsched.env.seeds), never from the seeds that select
checkpoints, tune baselines or evaluate. A finite pool also lets per-seed work (the paired reward's reference
curve) be computed once per trainee and reused.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np


class SeedQueue:
    """Seeds of `seeds` in shuffled passes (reshuffled after every pass), the order fixed by `shuffle_seed`."""

    def __init__(self, seeds: Sequence[int], shuffle_seed: int = 0) -> None:
        if not seeds:
            raise ValueError("a seed pool needs at least one seed")
        self.seeds = [int(s) for s in seeds]
        self.reseed(shuffle_seed)

    def reseed(self, shuffle_seed: int) -> None:
        self._rng = np.random.default_rng(shuffle_seed)
        self._queue: list[int] = []

    def next_seed(self) -> int:
        if not self._queue:
            self._queue = [self.seeds[i] for i in self._rng.permutation(len(self.seeds))]
        return self._queue.pop()


class SeedPool(gym.Wrapper):
    """Each reset draws the next seed of a shuffled pass over `seeds` (reshuffled after every pass).

    `reset(seed=s)` (what SB3's `VecEnv.seed` leads to) re-seeds the shuffling, not the trainee: the episode's
    seed is always one of the pool's.
    """

    def __init__(self, env: gym.Env, seeds: Sequence[int], shuffle_seed: int = 0):
        super().__init__(env)
        self.queue = SeedQueue(seeds, shuffle_seed)
        self.seeds = self.queue.seeds

    def next_seed(self) -> int:
        return self.queue.next_seed()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.queue.reseed(seed)
        episode_seed = self.next_seed()
        obs, info = self.env.reset(seed=episode_seed, options=options)
        info["episode_seed"] = episode_seed
        return obs, info
