"""Tune baselines on one task with Optuna: the same number of trials for each (see conf/tune.yaml).

python experiments/tune.py env=demo model=mlp dataset=fashion_mnist                     # all seven baselines
python experiments/tune.py env=demo model=mlp baselines=[one_cycle,warmup_cosine] n_trials=24 logger=none
Studies -> <out_dir>/study.log (Optuna journal: a re-run with the same settings resumes it) and trials.csv,
winners -> conf/tuned/<task>_<hash>.yaml.
"""

import hydra
from omegaconf import DictConfig

from rlsched.bench.tuning import TuneSettings, check_lr_range, tune_baselines, tuning_seeds
from rlsched.config import PROJECT_ROOT, env_kwargs, task_key, to_dict
from rlsched.entry import reports_user_errors
from rlsched.io import ensure_writable
from rlsched.tracking import tracker_from_config


@hydra.main(version_base="1.3", config_path="../conf", config_name="tune")
@reports_user_errors
def main(cfg: DictConfig) -> float:
    env_kw = env_kwargs(cfg.env)
    task = task_key(env_kw)
    settings = TuneSettings(
        n_trials=cfg.n_trials,
        seeds=tuning_seeds(to_dict(cfg.seeds), cfg.n_seeds),
        lr_range=check_lr_range(list(cfg.lr_range), env_kw),
        sampler_seed=int(cfg.sampler_seed),
    )
    out = ensure_writable(cfg.out_dir or PROJECT_ROOT / "results" / "tuning" / task)
    config = {**to_dict(cfg), "task": task}

    def tracker_for(baseline: str):
        return tracker_from_config(cfg.logger, job_type="tune", config=config, out_dir=out, name=f"{task}-{baseline}")

    winners = tune_baselines(
        env_kw, list(cfg.baselines), cfg.specs, settings, out, cfg.tuned_dir, tracker_for=tracker_for
    )
    return min(w.score for w in winners)


if __name__ == "__main__":
    main()
