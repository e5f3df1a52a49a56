"""An artifact says what its env is, not where its data lay: no training machine's data_dir (or device) in it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from rlsched.control.artifact import ENV_CONFIG, PLACE_KEYS, load_artifact, save_artifact

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "docs" / "results" / "demo_controller"


def _transfer_module():
    spec = importlib.util.spec_from_file_location("transfer_entry", REPO / "experiments" / "transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_save_artifact_drops_where_it_ran(tmp_path):
    env_config = json.loads((DEMO / ENV_CONFIG).read_text())
    env_config |= {"data_dir": "/training/machine/data", "device": "cuda", "torch_threads": 4}
    model = load_artifact(DEMO, trust=True).model
    out = save_artifact(
        tmp_path / "art", model=model, vecnormalize=DEMO / "vecnormalize.pkl", env_config=env_config, algo="ppo"
    )
    saved = json.loads((out / ENV_CONFIG).read_text())
    assert not set(PLACE_KEYS) & set(saved)
    assert saved["dataset"] == "fashion_mnist" and saved["episode_steps"] == env_config["episode_steps"]


def test_old_artifact_data_dir_is_ignored_and_eval_data_dir_wins(tmp_path, data_dir):
    art_dir = tmp_path / "old_artifact"
    shutil.copytree(DEMO, art_dir)
    cfg = json.loads((art_dir / ENV_CONFIG).read_text())
    (art_dir / ENV_CONFIG).write_text(json.dumps(cfg | {"data_dir": "/training/machine/data", "device": "cpu"}))
    art = load_artifact(art_dir)
    assert "data_dir" not in art.env_config and "device" not in art.env_config
    transfer = _transfer_module()
    # No data_dir in the evaluation settings: the env falls back to this machine's RLSCHED_DATA_DIR.
    kw = transfer.target_env_kwargs(art.env_config, {"test_eval": True}, {"name": "same_task"})
    assert kw.get("data_dir") is None
    # An explicit evaluation data_dir wins even over an artifact env config that still carries one.
    local = str(data_dir)
    kw = transfer.target_env_kwargs(cfg | {"data_dir": "/training/machine/data"}, {"data_dir": local}, {"name": "t"})
    assert kw["data_dir"] == local


def test_committed_env_configs_carry_no_absolute_data_dir():
    files = sorted((REPO / "docs" / "results").glob("**/env_config.json"))
    assert files, "expected the committed demo artifact"
    for f in files:
        value = json.loads(f.read_text()).get("data_dir")
        assert value is None or not Path(value).is_absolute(), f"{f} carries data_dir={value!r}"


def test_old_artifact_without_scale_per_keeps_its_per_env_step_meaning(tmp_path, tiny_env_kwargs):
    """Artifacts written before `scale_per` scaled once per env step: they must not silently run per optimizer step."""
    import pytest

    from rlsched.control.artifact import ArtifactError
    from rlsched.env.lr_control import LRControlEnv

    art_dir = tmp_path / "old_artifact"
    shutil.copytree(DEMO, art_dir)
    cfg = json.loads((art_dir / ENV_CONFIG).read_text())
    cfg.pop("scale_per", None)
    (art_dir / ENV_CONFIG).write_text(json.dumps(cfg))
    art = load_artifact(art_dir)
    assert art.env_config["scale_per"] == "env_step"
    features = art.meta["feature_names"]
    with pytest.raises(ArtifactError, match="scale_per"):
        art.check_compatible(LRControlEnv(**tiny_env_kwargs, features=features))
    art.check_compatible(LRControlEnv(**tiny_env_kwargs, features=features, scale_per="env_step"))
