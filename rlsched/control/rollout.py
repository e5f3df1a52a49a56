"""The one episode loop: an actor (a controller, or a trained policy) drives an env through one episode per seed.

`rollout(env, actor, seeds)` serves the single env (`LRControlEnv`: the seeds one after another, the env reused so
that data loads once) and the vector env (`LRControlVecEnv`: the seeds in groups of `num_envs` trained in
lockstep, the last group padded with repeats of its last seed, whose episodes are dropped). The harness, the
checkpoint selection and the paired reward's reference curves (rlsched.control.reference) all run their episodes here.

An actor is anything with `sets_lr`, `reset(env, obs, info)` and `act(obs, info)`: a `Controller`
(rlsched.control.base) is one. With `sets_lr` the loop calls `env.step_lr(act(...))`, else
`env.step(act(...))`. On a vector env each kept row gets its own deep copy of the actor, unless the actor acts
for all rows at once (`reset_rows` and `act_rows`, the `RowActor` protocol: a policy's one batched forward).
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from rlsched.env.lr_control import LRControlEnv
from rlsched.env.vector import LRControlVecEnv


class Actor(Protocol):
    sets_lr: bool

    def reset(self, env: Any, obs: np.ndarray, info: dict[str, Any]) -> None: ...

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> Any: ...


class RowActor(Protocol):
    """Acts for every row of a vector env at once."""

    sets_lr: bool

    def reset_rows(self, venv: LRControlVecEnv, obs: np.ndarray, infos: list[dict[str, Any]], kept: int) -> None:
        """A new group of episodes; rows `kept` and beyond are padding."""

    def act_rows(self, obs: np.ndarray, infos: list[dict[str, Any]], done: np.ndarray) -> np.ndarray:
        """One action (or rate) per row; `infos`: each kept row's latest info; `done`: which kept rows ended (their
        action trains a finished trainee, whose numbers are no longer recorded)."""


@dataclass
class Episode:
    """One episode: the infos of the reset and of every step (the curve), the return and the timings."""

    seed: int
    infos: list[dict[str, Any]]
    ret: float
    env_seconds: float  # in env.reset/step (single env); a population's time shared out over its rows
    wall_seconds: float
    init_fingerprint: str | None = None  # of the untrained network, when asked for

    @property
    def last(self) -> dict[str, Any]:
        return self.infos[-1]

    def probe_curve(self) -> list[float]:
        """The probe's validation loss at steps 0, 1, ..., stopping before a step at which the run diverged."""
        infos = self.infos[:-1] if self.last.get("diverged", False) else self.infos
        return [info["val_loss"] for info in infos]


def fingerprint(net: torch.nn.Module) -> str:
    h = hashlib.sha1()
    for t in net.state_dict().values():
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def rollout(
    env: LRControlEnv | LRControlVecEnv, actor: Actor | RowActor, seeds: Sequence[int], *, fingerprints: bool = False
) -> list[Episode]:
    """One episode of `actor` per seed on `env` (the unwrapped single env or the vector env), in the seeds' order.
    `fingerprints`: record each untrained network's fingerprint (the pairing check of the harness)."""
    seeds = [int(s) for s in seeds]
    if isinstance(env, LRControlVecEnv):
        n = env.num_envs
        return [ep for i in range(0, len(seeds), n) for ep in _population(env, actor, seeds[i : i + n], fingerprints)]
    return [_single(env, actor, seed, fingerprints) for seed in seeds]


def _single(env: LRControlEnv, actor: Actor, seed: int, fingerprints: bool) -> Episode:
    t0 = time.perf_counter()
    obs, info = env.reset(seed=seed)
    env_s = time.perf_counter() - t0
    init = fingerprint(env.trainee.net) if fingerprints else None
    actor.reset(env, obs, info)
    infos, ret, done = [info], 0.0, False
    while not done:
        action = actor.act(obs, info)
        t = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step_lr(action) if actor.sets_lr else env.step(action)
        env_s += time.perf_counter() - t
        ret += reward
        infos.append(info)
        done = terminated or truncated
    return Episode(seed, infos, ret, env_s, time.perf_counter() - t0, init)


def _population(venv: LRControlVecEnv, actor: Actor | RowActor, seeds: list[int], fingerprints: bool) -> list[Episode]:
    n, k = venv.num_envs, len(seeds)
    t0 = time.perf_counter()
    obs, infos = venv.reset_to(seeds + [seeds[-1]] * (n - k))
    inits = [fingerprint(venv.population.net(row)) if fingerprints else None for row in range(k)]
    rows = actor if hasattr(actor, "act_rows") else PerRow(actor)
    rows.reset_rows(venv, obs, infos, k)
    history: list[list[dict]] = [[infos[row]] for row in range(k)]
    returns, last = np.zeros(k), list(infos[:k])
    done = np.zeros(k, dtype=bool)
    step = venv.step_lrs if actor.sets_lr else venv.step_actions
    while not done.all():
        obs, rewards, dones, infos = step(rows.act_rows(obs, last, done))
        for row in np.nonzero(~done)[0]:
            returns[row] += rewards[row]
            last[row] = infos[row]
            history[row].append(infos[row])
        done |= dones[:k]
    wall = time.perf_counter() - t0
    # The population's time, shared out over its rows.
    return [Episode(seed, history[row], returns[row], wall / k, wall / k, inits[row]) for row, seed in enumerate(seeds)]


class PerRow:
    """A `RowActor` made of one deep copy of `actor` per kept row; a row that ended keeps its last choice, and
    padding rows get `default_action` (the initial rate, or the action that keeps the rate)."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.sets_lr = actor.sets_lr

    def reset_rows(self, venv: LRControlVecEnv, obs: np.ndarray, infos: list[dict[str, Any]], kept: int) -> None:
        self.copies = [copy.deepcopy(self.actor) for _ in range(kept)]
        for row, actor in enumerate(self.copies):
            actor.reset(venv, obs[row], infos[row])
        self.choice = [default_action(venv, self.sets_lr)] * venv.num_envs

    def act_rows(self, obs: np.ndarray, infos: list[dict[str, Any]], done: np.ndarray) -> np.ndarray:
        for row in np.nonzero(~done)[0]:
            self.choice[row] = self.copies[row].act(obs[row], infos[row])
        return np.array(self.choice, dtype=np.float64 if self.sets_lr else None)


def default_action(venv: LRControlVecEnv, sets_lr: bool) -> Any:
    """What padding rows get: the initial rate (sets_lr) or the action that keeps the rate (scale action 0)."""
    if sets_lr:
        return venv.cfg.initial_lr
    space = venv.action_space
    return np.zeros(space.shape, dtype=space.dtype) if space.shape else 0
