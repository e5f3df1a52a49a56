"""The harness: every controller on every seed of one task; tables and plots in the run folder.

python experiments/benchmark.py                                   # tuned baselines, CNN, reduced budget
python experiments/benchmark.py +learned.ppo=outputs/train/<run>/controller

Returns the learned controller's paired Δ final validation loss vs the reference baseline (None without one).
"""

import hydra
from omegaconf import DictConfig

from rlsched.bench.evaluate import evaluate_task, require_env_data
from rlsched.bench.harness import check_results_folder
from rlsched.config import env_kwargs, to_dict
from rlsched.entry import benchmark_objective, reports_user_errors
from rlsched.tracking import tracker_from_config


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark")
@reports_user_errors
def main(cfg: DictConfig) -> float | None:
    env_kw = env_kwargs(cfg.env)
    # Missing data or a results folder of another env config fail before the tracker writes into out_dir.
    require_env_data(env_kw)
    check_results_folder(cfg.out_dir, env_kw)
    tracker = tracker_from_config(cfg.logger, job_type="eval", config=to_dict(cfg), out_dir=cfg.out_dir)
    try:
        md = evaluate_task(
            env_kw,
            list(cfg.controllers),
            cfg.baselines,
            to_dict(cfg.learned),
            list(cfg.seeds),
            cfg.out_dir,
            title=f"Benchmark: {env_kw['dataset']} / {env_kw['model']}",
            tracker=tracker,
            use_tuned=cfg.use_tuned,
            tuned_dir=cfg.tuned_dir,
            progress=cfg.progress,
            population=cfg.population,
        )
    finally:
        tracker.finish()
    print(md)
    print(f"\nresults, table.md and plots in {cfg.out_dir}")
    return benchmark_objective(cfg.out_dir, to_dict(cfg.learned))


if __name__ == "__main__":
    main()
