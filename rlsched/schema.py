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


def doc(text: str) -> dict[str, str]:
    """A field's metadata: its one-line help, shown beside its default in docs/agent_options.md."""
    return {"help": text}


@dataclass
class NormalizeConfig:
    """SB3's VecNormalize around the training envs (its statistics are saved with the controller)."""

    obs: bool = field(default=True, metadata=doc("normalize observations by running mean and std"))
    reward: bool = field(default=True, metadata=doc("normalize rewards by the running std of the return"))
    clip_obs: float = field(default=10.0, metadata=doc("clip normalized observations into [-clip_obs, clip_obs]"))


@dataclass
class AgentConfig:
    """The agent's keys and defaults, the one place they live (conf/agent/ppo.yaml sets only PPO's own
    hyperparameters under `ppo`). A key `ppo` lacks takes SB3's own default, as the class's signature says."""

    algo: str = field(default="ppo", metadata=doc("ppo | recurrent_ppo (sb3-contrib, the paper's LSTM actor)"))
    policy: str = field(default="MlpPolicy", metadata=doc("MlpPolicy (ppo) | MlpLstmPolicy (recurrent_ppo)"))
    n_envs: int = field(default=2, metadata=doc("training envs stepped together"))
    vec_env: str = field(
        default="dummy",
        metadata=doc(
            "dummy (in turn) | subproc (one process each) | batched (one LRControlVecEnv: N trainees as one "
            "batched model)"
        ),
    )
    device: str = field(default="cpu", metadata=doc("the policy's device (the trainee's is env.device)"))
    total_timesteps: int = field(default=50000, metadata=doc("PPO env steps; a larger value trains a finished run on"))
    checkpoint_every: int = field(default=2000, metadata=doc("timesteps between checkpoints, rounded up to rollouts"))
    resume: bool = field(default=True, metadata=doc("continue from the newest checkpoint in out_dir (same config)"))
    progress: bool = field(
        default=True, metadata=doc("a progress line every progress_every_s: timesteps, speed, best score, ETA")
    )
    progress_every_s: float = field(default=30.0, metadata=doc("seconds between progress lines"))
    train_seed_pool: int = field(
        default=128, metadata=doc("PPO trains on this many trainees of the training seed set (rlsched/env/seeds.py)")
    )
    train_seeds_start: int = field(default=0, metadata=doc("offset in the training seed set"))
    eval_every: int = field(
        default=2000, metadata=doc("timesteps between checkpoint selections (whole rollouts); 0: selection off")
    )
    eval_episodes: int = field(
        default=16, metadata=doc("selection trainees: the same ones every time, from the selection seed set")
    )
    eval_seeds_start: int = field(default=0, metadata=doc("offset in the selection seed set"))
    artifact_from: str = field(
        default="best",
        metadata=doc("best (lowest mean final validation loss on the selection trainees) | final (the last policy)"),
    )
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig, metadata=doc("see NormalizeConfig"))
    ppo: dict[str, Any] = field(
        default_factory=dict,
        metadata=doc(
            "SB3 PPO/RecurrentPPO keyword arguments (learning_rate, n_steps, ..., policy_kwargs); checked "
            "against their signatures; a key left out takes SB3's default"
        ),
    )


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
