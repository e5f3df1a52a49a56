"""The paired reward's reference runner: a baseline controller spec, built by `make_controller` and run by the one
rollout (rlsched.control.rollout) on an internal env.

The env (rlsched.env.reference) decides which reference run an episode needs and caches its curve; it knows no
controllers, so this runner is handed to it: importing this module installs `RUNNER` as the process's runner
(rlsched.config imports it, so every rlsched entry point has it), and `LRControlEnv(reference_runner=...)` can
name another for one env.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rlsched.control.base import Controller
from rlsched.control.baselines import make_controller
from rlsched.control.rollout import rollout
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.env.reference import install_runner


def _controller(spec: Mapping[str, Any]) -> Controller:
    params = dict(spec)
    return make_controller(params.pop("kind"), **params)


class BaselineReference:
    """Runs a baseline spec for one episode on one internal env per reference env config (it holds the data, so
    every env and every episode of the process shares it)."""

    def __init__(self) -> None:
        self._envs: dict[str, LRControlEnv] = {}

    def check(self, spec: Mapping[str, Any]) -> None:
        _controller(spec)

    def run(self, cfg: EnvConfig, spec: Mapping[str, Any], seed: int) -> list[float]:
        [episode] = rollout(self._env(cfg), _controller(spec), [seed])
        return episode.probe_curve()

    def __getstate__(self) -> dict[str, Any]:
        return {}  # sent to a subprocess (SubprocVecEnv) without the internal envs and their data

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._envs = {}

    def clear(self) -> None:
        """Drop the internal envs (and the data they hold)."""
        self._envs.clear()

    def _env(self, cfg: EnvConfig) -> LRControlEnv:
        key = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
        if key not in self._envs:
            self._envs[key] = LRControlEnv(config=cfg)
        return self._envs[key]


RUNNER = BaselineReference()
install_runner(RUNNER)
