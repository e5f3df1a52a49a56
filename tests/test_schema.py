"""The typed config: EnvConfig built from its parts, the Hydra schema derived from it, one identity function."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from rlsched.config import to_dict
from rlsched.env.config import PARTS, PLACE_FIELDS, EnvConfig, part_of
from rlsched.schema import env_schema

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def _compose(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, overrides=[*overrides, "out_dir=/tmp/rlsched-test"])


@pytest.mark.parametrize("entry", ["train", "benchmark", "tune", "transfer"])
@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("env.batch_size=abc", r"env\.batch_size=abc"),
        ("env.test_eval=maybe", r"env\.test_eval=maybe"),
        ("env.initial_lr=fast", r"env\.initial_lr=fast"),
        ("env.scale_range=[0.9,x]", r"env\.scale_range"),
        ("env.batchsize=500", r"env\.batchsize"),  # a misspelt key
    ],
)
def test_a_bad_env_key_or_type_fails_while_composing(entry, override, named):
    with pytest.raises(ConfigCompositionException, match=named):
        _compose(entry, [override])


def test_a_key_added_with_plus_is_refused_when_the_config_is_built():
    """`+env.key=...` tells Hydra to add a key even to a typed node; EnvConfig still refuses it, naming it."""
    from rlsched.config import env_kwargs

    cfg = _compose("train", ["+env.batchsize=500"])
    with pytest.raises(ValueError, match=r"unknown env option\(s\) \['batchsize'\]"):
        env_kwargs(cfg.env)


def test_composed_env_defaults_are_the_dataclasses():
    """conf/env/default.yaml restates no default: composing `train` gives EnvConfig's defaults, except what the
    dataset/model groups and the data folder set."""
    env = to_dict(_compose("train", ["env.data_dir=/some/where"]).env)
    defaults = {f.name: f.default_factory() if callable(f.default_factory) else f.default
                for f in dataclasses.fields(EnvConfig)}  # fmt: skip
    changed = {k for k in env if env[k] != (list(v) if isinstance(v := defaults[k], tuple) else v)}
    assert changed == {"data_dir", "model", "model_kwargs"}
    assert set(env) == set(defaults)


def test_schema_types_follow_the_annotations():
    schema = {f.name: f for f in dataclasses.fields(env_schema())}
    assert list(schema) == [f.name for f in dataclasses.fields(EnvConfig)]
    assert schema["batch_size"].type is int and schema["test_eval"].type is bool
    assert schema["train_size"].type == int | None
    # A preset name or a list; a set's name or its contents; a baseline's name or its spec: checked by EnvConfig.
    assert {n for n, f in schema.items() if f.type is object or str(f.type) == "typing.Any"} == {
        "features",
        "tasks",
        "reward_reference",
    }


def test_every_option_belongs_to_one_part_in_the_stored_order():
    names = [f.name for f in dataclasses.fields(EnvConfig)]
    by_parts = [n for part in PARTS for n in part.__annotations__]
    assert names == by_parts  # stored configs keep their field order
    assert part_of("batch_size").__name__ == "TraineeConfig" and part_of("reward").__name__ == "RewardConfig"
    assert all(f.metadata.get("help") for f in dataclasses.fields(EnvConfig)), "every option has its help"


def test_type_rules_come_from_the_annotations():
    with pytest.raises(ValueError, match=r"weight_bound must be a number, got 'big'"):
        EnvConfig.from_kwargs(model="mlp", weight_bound="big")
    with pytest.raises(ValueError, match=r"torch_threads must be an integer or null, got 1.5"):
        EnvConfig.from_kwargs(model="mlp", torch_threads=1.5)
    with pytest.raises(ValueError, match=r"data_dir must be a folder path or null, got 3"):
        EnvConfig.from_kwargs(model="mlp", data_dir=3)
    assert EnvConfig.from_kwargs(model="mlp", data_dir=Path("/x")).data_dir == "/x"


def test_identity_leaves_out_only_where_things_run():
    cfg = EnvConfig.from_kwargs(model="mlp", device="cpu")
    moved = EnvConfig.from_kwargs(
        model="mlp", data_dir="/elsewhere", verify_checksums=False, torch_threads=3, reference_cache_dir="/c"
    )
    assert cfg.identity() == moved.identity()
    assert not set(PLACE_FIELDS) & set(cfg.identity())
    assert cfg.identity()["device"] == "cpu" and "device" not in cfg.identity(device="drop")
    assert EnvConfig.from_kwargs(model="mlp", device="auto").identity() == cfg.identity()  # no GPU in CI
    assert EnvConfig.from_kwargs(model="mlp", batch_size=500).identity() != cfg.identity()
    with pytest.raises(ValueError, match="'kind' or 'drop'"):
        cfg.identity(device="keep")


def test_coerce_never_validates_a_built_config_twice(monkeypatch):
    cfg = EnvConfig.from_kwargs(model="mlp")
    monkeypatch.setattr(EnvConfig, "validate", lambda self: pytest.fail("validated again"))
    assert EnvConfig.coerce(cfg) is cfg


def test_rendered_docs_pages_are_current():
    """docs/env_options.md and docs/env_spec.md are rendered from the code (scripts/dev/render_docs.py)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dev" / "render_docs.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
