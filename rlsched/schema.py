"""The typed configs Hydra composes: the agent's and the env's, registered with Hydra's ConfigStore.

`conf/agent/ppo.yaml` starts from `agent/agent_schema` and `conf/env/default.yaml` from `env/env_schema`
(`defaults: [<schema>, _self_]`), so Hydra refuses an unknown key (`env.typo=1`) or a value of the wrong type
(`env.batch_size=abc`, `agent.n_envs=two`) while composing, before any code runs. A key added with `+` (Hydra adds
it even to a typed node) is refused when the config is built (EnvConfig.from_kwargs, validate_agent_config).

The env schema is derived from `rlsched.env.config.EnvConfig`, field by field, so that its dataclasses stay the only
place the env's options and defaults are written. What OmegaConf cannot type (a preset name *or* a list of features,
a task set's name *or* its contents, a baseline's name *or* its spec) is `Any` here and checked by `EnvConfig` when
the config is built. The SB3 keyword arguments under `ppo` are a free mapping; `rlsched.train.agent.
validate_agent_config` checks their names against the SB3 signatures and their values. Kept free of SB3 imports.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from rlsched.env.config import EnvConfig


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


# Hydra-side, these take a *name* that rlsched resolves before building EnvConfig (which accepts only the spec).
NAMED_IN_HYDRA = ("reward_reference",)


def _hydra_type(name: str, hint: Any, default: Any) -> Any:
    """The annotation OmegaConf checks for this field: the field's own when OmegaConf supports it, else Any."""
    if name in NAMED_IN_HYDRA:
        return Any
    probe = dataclasses.make_dataclass("Probe", [(name, hint, default)])
    try:
        OmegaConf.structured(probe)
    except Exception:  # an OmegaConf ValidationError: unions of a scalar and a container are not typed there
        return Any
    return hint


def env_schema() -> type:
    """A dataclass with EnvConfig's fields, defaults and help, in OmegaConf-checkable types."""
    hints = typing.get_type_hints(EnvConfig)
    specs = []
    for f in dataclasses.fields(EnvConfig):
        if f.default_factory is not dataclasses.MISSING:
            default = field(default_factory=f.default_factory, metadata=f.metadata)
        else:
            default = field(default=f.default, metadata=f.metadata)
        specs.append((f.name, _hydra_type(f.name, hints[f.name], default), default))
    schema = dataclasses.make_dataclass("EnvSchema", specs)
    schema.__module__ = __name__
    return schema


AGENT_SCHEMA, ENV_SCHEMA = "agent_schema", "env_schema"


def register_configs() -> None:
    """Store the schemas as `agent/agent_schema` and `env/env_schema` (storing again replaces the same nodes)."""
    store = ConfigStore.instance()
    store.store(group="agent", name=AGENT_SCHEMA, node=AgentConfig)
    store.store(group="env", name=ENV_SCHEMA, node=env_schema())
