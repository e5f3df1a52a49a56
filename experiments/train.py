"""Train a controller with PPO, then (by default) benchmark it against the tuned baselines on its task.

python experiments/train.py                          # conf/train.yaml
python experiments/train.py experiment=rq1_learned_vs_baselines
python experiments/train.py out_dir=outputs/train/<run>   # resume an interrupted run (same config only)

Returns the best checkpoint-selection loss (validation), the objective a Hydra sweeper minimizes.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rlsched.bench.evaluate import evaluate_task, require_env_data
from rlsched.bench.protocol_plots import selection_report
from rlsched.config import build_baselines, env_kwargs, resolve_reward_reference, to_dict
from rlsched.entry import reports_user_errors, selection_objective, task_wrapper, tracked
from rlsched.env.lr_control import EnvConfig
from rlsched.io import ensure_writable
from rlsched.train.agent import TrainingRun


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@reports_user_errors
@task_wrapper
def main(cfg: DictConfig) -> float:
    # Everything that can be wrong with the request fails here, before any training or any file is written:
    # agent and env configs, a run folder holding another config's run, missing data, unknown baselines.
    # A paired reward's reference named in the config (e.g. `plateau`) becomes that baseline's tuned spec.
    env_cfg = resolve_reward_reference(cfg.env, cfg.baselines, cfg.benchmark.tuned_dir)
    train_env = EnvConfig.from_kwargs(**{**env_cfg, "test_eval": False})  # no test set in training
    run = TrainingRun(train_env, to_dict(cfg.agent), cfg.out_dir, seed=cfg.seed)
    require_env_data(train_env)
    eval_kw = env_kwargs(env_cfg)
    if cfg.benchmark.enabled:  # a typo in the benchmark's controllers must not cost a finished training
        build_baselines(list(cfg.benchmark.controllers), cfg.baselines, eval_kw, use_tuned=False)
    out = ensure_writable(cfg.out_dir)
    with tracked(cfg.logger, job_type="train", config=to_dict(cfg), out_dir=out) as tracker:
        artifact = run.run(tracker)
    print(f"controller artifact: {artifact}")
    print(selection_report(Path(out)))
    if cfg.benchmark.enabled:
        b = cfg.benchmark
        with tracked(cfg.logger, job_type="eval", config=to_dict(cfg), out_dir=out / "benchmark") as tracker:
            md = evaluate_task(
                eval_kw,
                list(b.controllers),
                cfg.baselines,
                {"ppo": str(artifact)},
                list(b.seeds),
                Path(out) / "benchmark",
                title="Learned controller vs baselines (training task)",
                tracker=tracker,
                use_tuned=b.use_tuned,
                tuned_dir=b.tuned_dir,
                population=b.population,
            )
        print(md)
    objective = selection_objective(out)
    print(f"objective (best selection val loss): {objective:.6g}")
    return objective


if __name__ == "__main__":
    main()
