"""Every config in conf/ composes and instantiates (env kwargs validate, baselines build, agent validates)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlsched.bench.tuning import check_lr_range, search_space
from rlsched.config import build_baselines, env_kwargs, resolve_reward_reference, to_dict
from rlsched.control import BASELINES
from rlsched.env.lr_control import EnvConfig
from rlsched.train.agent import validate_agent_config

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
ENTRY = {"demo_transfer": "transfer", "rq2_": "transfer"}


def entry_for(experiment: str) -> str:
    return next((cfg for prefix, cfg in ENTRY.items() if experiment.startswith(prefix)), "train")


def _compose(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        # out_dir defaults to Hydra's run folder, which exists only inside a launched job.
        return compose(config_name=config_name, overrides=[*overrides, "out_dir=/tmp/rlsched-test"])


def _check(cfg, config_name: str) -> None:
    OmegaConf.resolve(cfg)
    if config_name == "transfer":
        assert cfg.targets and all("name" in t for t in cfg.targets)
        for t in to_dict(cfg.targets):
            EnvConfig.from_kwargs(
                **{**EnvConfig().to_dict(), **cfg.eval_env, **{k: v for k, v in t.items() if k != "name"}}
            )
        build_baselines(list(cfg.controllers), cfg.baselines, EnvConfig().to_dict(), use_tuned=False)
        return
    kw = env_kwargs(resolve_reward_reference(cfg.env, cfg.baselines) if "baselines" in cfg else cfg.env)
    if config_name == "train":
        validate_agent_config(to_dict(cfg.agent))
        build_baselines(list(cfg.benchmark.controllers), cfg.baselines, kw, use_tuned=False)
    elif config_name == "benchmark":
        build_baselines(list(cfg.controllers), cfg.baselines, kw, use_tuned=False)
    elif config_name == "tune":
        # `baselines` lists the names to tune; their specs live under `specs` in this config.
        build_baselines(list(cfg.baselines), cfg.specs, kw, use_tuned=False)
        for name in cfg.baselines:
            search_space(cfg.specs[name].kind, kw.get("episode_steps", EnvConfig().episode_steps), cfg.lr_range)
        check_lr_range(list(cfg.lr_range), kw)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(experiment):
    name = entry_for(experiment)
    overrides = [f"experiment={experiment}"] + (["artifact=/some/controller"] if name == "transfer" else [])
    _check(_compose(name, overrides), name)


GROUP_OPTIONS = [
    (g.name, o.stem)
    for g in sorted(CONF.iterdir())
    if g.is_dir() and g.name not in ("experiment", "tuned", "tasks")  # tasks: data for env.tasks=<set>
    for o in sorted(g.glob("*.yaml"))
]


# tune.yaml puts the controller group under `specs` (its `baselines` key lists the names to tune).
GROUP_KEY = {("tune", "controller"): "controller@specs"}


@pytest.mark.parametrize(
    ("config_name", "option"),
    [
        (c, f"{GROUP_KEY.get((c, g), g)}={o}")
        for c in ("train", "benchmark", "tune")
        for g, o in GROUP_OPTIONS
        if g != "agent" or c == "train"
    ],
)
def test_every_group_option_composes(config_name, option):
    _check(_compose(config_name, [option]), config_name)


def test_every_experiment_is_covered():
    assert {
        "demo",
        "demo_transfer",
        "rq1_learned_vs_baselines",
        "rq2_transfer",
        "rq3_final_reward",
        "rq4_raw_lr",
        "paper",
    } <= set(EXPERIMENTS)


def test_research_questions_are_one_switch_each():
    rq1 = _compose("train", ["experiment=rq1_learned_vs_baselines"])
    rq3 = _compose("train", ["experiment=rq3_final_reward"])
    rq4 = _compose("train", ["experiment=rq4_raw_lr"])
    assert rq1.env.reward == "neg_val_loss" and rq3.env.reward == "final_only"
    assert rq1.env.action == "scale" and rq4.env.action == "log_lr"
    # Everything else is identical, so the comparison isolates the switch.
    for other, key in ((rq3, "reward"), (rq4, "action")):
        a, b = to_dict(rq1.env), to_dict(other.env)
        a.pop(key), b.pop(key)
        assert a == b
        assert to_dict(rq1.agent) == to_dict(other.agent)


def test_unknown_env_key_in_config_is_an_error():
    cfg = _compose("benchmark", ["+env.lerning_rate=0.1"])
    with pytest.raises(ValueError, match="unknown env option"):
        env_kwargs(cfg.env)


def test_tune_config_tunes_every_baseline_with_equal_trials():
    cfg = _compose("tune", ["env=demo", "model=mlp"])
    assert sorted(cfg.baselines) == sorted(cfg.specs) == sorted(BASELINES)  # every baseline, once
    assert cfg.n_trials >= 24 and cfg.lr_range[0] <= 0.001 and cfg.lr_range[1] >= 0.06
