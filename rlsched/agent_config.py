"""The agent config's schema and defaults, registered with Hydra's ConfigStore as a structured config.

`conf/agent/ppo.yaml` starts from it (`defaults: [agent_schema, _self_]`), so Hydra refuses an unknown agent key
(`+agent.typo_key=1`) or a value of the wrong type (`agent.n_envs=two`) while composing, before any code runs.
The SB3 keyword arguments under `ppo` are a free mapping here; `rlsched.train.agent.validate_agent_config` checks their
names against the SB3 signatures and their values. Kept free of SB3 imports: `rlsched.config` registers it.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class NormalizeConfig:
    obs: bool = True
    reward: bool = True
    clip_obs: float = 10.0


@dataclass
class AgentConfig:
    """The agent config's keys and defaults: the one place they live (conf/agent/ppo.yaml restates them for the
    reader; a test keeps the two equal). A key `ppo` lacks takes SB3's own default, as the class's signature says."""

    algo: str = "ppo"
    policy: str = "MlpPolicy"
    n_envs: int = 2
    vec_env: str = "dummy"
    device: str = "cpu"
    total_timesteps: int = 50000
    checkpoint_every: int = 2000
    resume: bool = True
    progress: bool = True
    progress_every_s: float = 30.0
    train_seed_pool: int = 128
    train_seeds_start: int = 0
    eval_every: int = 2000
    eval_episodes: int = 16
    eval_seeds_start: int = 0
    artifact_from: str = "best"
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    ppo: dict[str, Any] = field(default_factory=dict)


SCHEMA_NAME = "agent_schema"


def register_configs() -> None:
    """Store the schema as `agent/agent_schema` (idempotent: storing again replaces the same node)."""
    ConfigStore.instance().store(group="agent", name=SCHEMA_NAME, node=AgentConfig)
