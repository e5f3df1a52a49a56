"""Tune PPO's own hyperparameters with Optuna, each trial one run of experiments/train.py, resumable.

python scripts/tune_ppo.py --n-trials 20 --storage results/ppo_tuning/journal.log -- experiment=demo logger=none

Everything after `--` is a Hydra override of conf/train.yaml, shared by every trial; a trial adds its sampled PPO
settings (`agent.ppo.*`, `agent.policy_kwargs.log_std_init`), `out_dir=<out-root>/trial_<n>` and
`benchmark.enabled=false`. Its score is what train.py returns: the best checkpoint-selection loss (mean final
validation loss of the selection trainees), so the test set never chooses. The study lives in an Optuna journal
file (JournalStorage): a re-run of the same command continues it up to --n-trials completed trials, and several
processes may share one journal to tune in parallel. Inspect it with `optuna-dashboard <journal>` or
`optuna.load_study(study_name=..., storage=journal_storage(path))`.

Why not Hydra's Optuna sweeper: it pins optuna < 3 (rlsched needs >= 4); any sweeper that reads a task's return
value can still drive train.py directly (`-m hydra/sweeper=...`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from rlsched.bench.tuning import journal_storage

REPO = Path(__file__).resolve().parents[1]


def ppo_space(trial: optuna.Trial) -> dict[str, Any]:
    """The searched PPO settings, as Hydra keys of conf/agent/ppo.yaml."""
    return {
        "agent.ppo.learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
        "agent.ppo.gae_lambda": trial.suggest_float("gae_lambda", 0.8, 1.0),
        "agent.ppo.clip_range": trial.suggest_float("clip_range", 0.1, 0.3),
        "agent.ppo.n_epochs": trial.suggest_int("n_epochs", 3, 10),
        "agent.ppo.policy_kwargs.log_std_init": trial.suggest_float("log_std_init", -2.0, 0.0),
    }


def _train_main() -> Callable[[Any], float]:
    """experiments/train.py's task, without Hydra's command line (it returns the objective)."""
    spec = importlib.util.spec_from_file_location("rlsched_train_entry", REPO / "experiments" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main.__wrapped__  # hydra.main's wrapper parses sys.argv; its __wrapped__ takes a config


def run_training(overrides: Sequence[str]) -> float:
    """One train.py run with these overrides; returns its objective."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    return _train_main()(cfg)


def tune_ppo(
    overrides: Sequence[str],
    *,
    n_trials: int,
    storage: str | Path,
    out_root: str | Path,
    study_name: str = "ppo",
    sampler_seed: int = 0,
    space: Callable[[optuna.Trial], dict[str, Any]] = ppo_space,
) -> optuna.Study:
    """Run (or continue) the study until it has `n_trials` completed trials; returns it."""
    out_root = Path(out_root)
    study = optuna.create_study(
        study_name=study_name,
        storage=journal_storage(storage),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
        load_if_exists=True,
    )

    def objective(trial: optuna.Trial) -> float:
        sampled = space(trial)
        out = out_root / f"trial_{trial.number}"
        trial.set_user_attr("out_dir", str(out))
        args = [*overrides, *(f"{k}={v}" for k, v in sampled.items()), f"out_dir={out}", "benchmark.enabled=false"]
        return run_training(args)  # NaN (selection off) -> Optuna records a failed trial

    done = len(study.get_trials(states=(TrialState.COMPLETE,)))
    if done < n_trials:
        print(f"[tune_ppo] {study_name}: {done}/{n_trials} trials complete; running the rest", flush=True)
        # Counted over the whole study (every process sharing the journal, every earlier run of this command).
        study.optimize(objective, callbacks=[MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))])
    best = study.best_trial
    print(f"[tune_ppo] best: trial {best.number}, selection val loss {best.value:.4f}, {best.params}", flush=True)
    return study


def main(argv: Sequence[str] | None = None) -> optuna.Study:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--storage", default="results/ppo_tuning/journal.log", help="the Optuna journal file")
    parser.add_argument("--out-root", default=None, help="trial run folders (default: next to the journal)")
    parser.add_argument("--study-name", default="ppo")
    parser.add_argument("--sampler-seed", type=int, default=0)
    a = parser.parse_args(own)
    return tune_ppo(
        overrides,
        n_trials=a.n_trials,
        storage=a.storage,
        out_root=a.out_root or Path(a.storage).parent,
        study_name=a.study_name,
        sampler_seed=a.sampler_seed,
    )


if __name__ == "__main__":
    main()
