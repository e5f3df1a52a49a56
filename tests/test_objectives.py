"""Entry points return their objective; PPO's hyperparameters tuned with Optuna (journal storage, resumable)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from optuna.trial import TrialState
from tiny import hydra_env

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "model=mlp",
    "logger=none",
    *hydra_env(episode_steps=3),
    "agent.total_timesteps=12",
    "agent.n_envs=1",
    "agent.ppo.n_steps=6",
    "agent.ppo.batch_size=6",
    "agent.checkpoint_every=6",
    "agent.eval_every=6",
    "agent.eval_episodes=1",
    "agent.progress=false",
]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tune_ppo():
    return _load(REPO / "scripts" / "tune_ppo.py", "tune_ppo")


def test_optuna_tunes_ppo_through_train_objective_and_resumes_from_its_journal(
    tune_ppo, data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("RLSCHED_DATA_DIR", str(data_dir))
    journal, root = tmp_path / "journal.log", tmp_path / "trials"
    study = tune_ppo.main(["--n-trials", "2", "--storage", str(journal), "--out-root", str(root), "--", *TINY])
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2 and len({t.params["learning_rate"] for t in trials}) == 2
    for t in trials:
        # The trial's value is what train.py returned: the best selection loss of its run folder.
        selection = pd.read_csv(Path(t.user_attrs["out_dir"]) / "eval" / "selection.csv")
        assert t.value == selection["score"].min() and math.isfinite(t.value)
        assert not (Path(t.user_attrs["out_dir"]) / "benchmark").exists()  # benchmark off in tuning
    # A second command continues the same study from the journal: one more trial, not three.
    tune_ppo.main(["--n-trials", "3", "--storage", str(journal), "--out-root", str(root), "--", *TINY])
    reloaded = optuna.load_study(study_name="ppo", storage=tune_ppo.journal_storage(journal))
    assert len(reloaded.get_trials(states=(TrialState.COMPLETE,))) == 3
    assert sorted(p.name for p in root.iterdir()) == ["trial_0", "trial_1", "trial_2"]

    # benchmark.py returns the learned controller's paired Δ final validation loss (a validation number).
    bench = _load(REPO / "experiments" / "benchmark.py", "rlsched_benchmark_entry")
    out = tmp_path / "bench"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="benchmark",
            overrides=[
                *[o for o in TINY if o.startswith(("env.", "model=", "logger="))],
                "seeds=[0,1]",
                "controllers=[constant,plateau]",
                "use_tuned=false",
                "progress=false",
                f"+learned.ppo={root / 'trial_0' / 'controller'}",
                f"out_dir={out}",
            ],
        )
    delta = bench.main.__wrapped__(cfg)
    paired = pd.read_csv(out / "paired.csv").set_index("controller")
    assert delta == paired.loc["ppo", "final_val_loss_diff_mean"] and math.isfinite(delta)


def test_train_objective_is_nan_without_selection(tmp_path):
    from rlsched.entry import benchmark_objective, selection_objective

    assert math.isnan(selection_objective(tmp_path))
    assert benchmark_objective(tmp_path, {}) is None
