"""Gymnasium environments of rlsched. `import envs` registers them under the `rlsched/` namespace."""

import gymnasium as gym

from envs.lr_control import ACTION_TYPES, REWARD_TYPES, EnvConfig, LRControlEnv

ENV_ID = "rlsched/LRControl-v0"


def register_envs() -> None:
    """Idempotent. Gymnasium 1.x has no plugin loading, so registration happens on `import envs`; without
    that import, `gym.make("envs:rlsched/LRControl-v0")` imports this module itself."""
    if ENV_ID not in gym.registry:
        # The env ends its own episodes (episode_steps), so no TimeLimit wrapper is added.
        gym.register(id=ENV_ID, entry_point="envs.lr_control:LRControlEnv", max_episode_steps=None)


register_envs()

__all__ = ["ACTION_TYPES", "ENV_ID", "REWARD_TYPES", "EnvConfig", "LRControlEnv", "register_envs"]
