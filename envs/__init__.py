"""Gymnasium environments of rlsched. `import envs` registers them under the `rlsched/` namespace.

`rlsched/LRControl-v1` is the env (its spec: the `LRControlEnv` docstring, docs/env_spec.md);
`gym.make_vec(ENV_ID, num_envs=N, vectorization_mode="vector_entry_point")` gives the batched
`envs.vector.LRControlGymVecEnv`. v0 (the first MDP) is retired: making it fails with a message pointing to v1.
"""

import gymnasium as gym

from envs.lr_control import ACTION_TYPES, REWARD_TYPES, EnvConfig, LRControlEnv

ENV_ID = "rlsched/LRControl-v1"
RETIRED_ID = "rlsched/LRControl-v0"


def _retired_v0(**kwargs) -> gym.Env:
    raise gym.error.DeprecatedEnv(
        f"{RETIRED_ID} is retired: its MDP truncated the episode at the budget's end, lacked the progress feature "
        f"and applied the scale range once per env step. Use {ENV_ID} (the current MDP; see the LRControlEnv "
        "docstring, 'Version History'); an old config's options still apply there unchanged"
    )


def register_envs() -> None:
    """Idempotent. Gymnasium 1.x has no plugin loading, so registration happens on `import envs`; without
    that import, `gym.make("envs:rlsched/LRControl-v1")` imports this module itself."""
    if ENV_ID not in gym.registry:
        # The env ends its own episodes (episode_steps), so no TimeLimit wrapper is added.
        gym.register(
            id=ENV_ID,
            entry_point="envs.lr_control:LRControlEnv",
            vector_entry_point="envs.vector:LRControlGymVecEnv",
            max_episode_steps=None,
        )
    if RETIRED_ID not in gym.registry:
        # Registered so that it fails with the reason, rather than Gymnasium's generic "deprecated" line.
        gym.register(id=RETIRED_ID, entry_point=_retired_v0, max_episode_steps=None)


register_envs()

__all__ = ["ACTION_TYPES", "ENV_ID", "REWARD_TYPES", "EnvConfig", "LRControlEnv", "register_envs"]
