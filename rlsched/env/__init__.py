"""Gymnasium environments of rlsched. `import rlsched` registers them under the `rlsched/` namespace.

`rlsched/LRControl-v1` is the env (its spec: the `LRControlEnv` docstring, docs/env_spec.md);
`gym.make_vec(ENV_ID, num_envs=N, vectorization_mode="vector_entry_point")` gives the batched
`rlsched.env.vector.LRControlGymVecEnv`. v0 (the first MDP) is retired: making it fails with a message pointing to v1.
"""

import importlib
from typing import TYPE_CHECKING, Any

import gymnasium as gym

if TYPE_CHECKING:
    from rlsched.env.lr_control import ACTION_TYPES, REWARD_TYPES, EnvConfig, LRControlEnv


ENV_ID = "rlsched/LRControl-v1"
RETIRED_ID = "rlsched/LRControl-v0"


def _retired_v0(**kwargs) -> gym.Env:
    raise gym.error.DeprecatedEnv(
        f"{RETIRED_ID} is retired: its MDP truncated the episode at the budget's end, lacked the progress feature "
        f"and applied the scale range once per env step. Use {ENV_ID} (the current MDP; see the LRControlEnv "
        "docstring, 'Version History'); an old config's options still apply there unchanged"
    )


def register_envs() -> None:
    """Idempotent. Gymnasium 1.x has no plugin loading, so registration happens on `import rlsched`; without
    that import, `gym.make("rlsched.env:rlsched/LRControl-v1")` imports this module itself."""
    if ENV_ID not in gym.registry:
        # The env ends its own episodes (episode_steps), so no TimeLimit wrapper is added.
        gym.register(
            id=ENV_ID,
            entry_point="rlsched.env.lr_control:LRControlEnv",
            vector_entry_point="rlsched.env.vector:LRControlGymVecEnv",
            max_episode_steps=None,
        )
    if RETIRED_ID not in gym.registry:
        # Registered so that it fails with the reason, rather than Gymnasium's generic "deprecated" line.
        gym.register(id=RETIRED_ID, entry_point=_retired_v0, max_episode_steps=None)


register_envs()

__all__ = ["ACTION_TYPES", "ENV_ID", "REWARD_TYPES", "EnvConfig", "LRControlEnv", "register_envs"]

# The env classes load on first use (PEP 562): `import rlsched` registers the envs without torch.
_LAZY: dict[str, tuple[str, str]] = {
    "ACTION_TYPES": ("rlsched.env.lr_control", "ACTION_TYPES"),
    "EnvConfig": ("rlsched.env.lr_control", "EnvConfig"),
    "LRControlEnv": ("rlsched.env.lr_control", "LRControlEnv"),
    "REWARD_TYPES": ("rlsched.env.lr_control", "REWARD_TYPES"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'rlsched.env' has no attribute {name!r}")
