"""Train a controller with PPO, then (by default) benchmark it against the tuned baselines on its task.

python experiments/train.py                          # conf/train.yaml
python experiments/train.py experiment=rq1_learned_vs_baselines
python experiments/train.py out_dir=outputs/train/<run>   # resume an interrupted run
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rlsched.agent import train_controller, validate_agent_config
from rlsched.config import build_baselines, env_kwargs, to_dict
from rlsched.evaluate import evaluate_task
from rlsched.harness import ensure_writable
from rlsched.tracking import tracker_from_config


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    # Everything that can be wrong with the request fails here, before any training.
    agent = to_dict(cfg.agent)
    validate_agent_config(agent)
    train_kw = env_kwargs(cfg.env, test_eval=False)  # the test set plays no part in training
    eval_kw = env_kwargs(cfg.env)
    if cfg.benchmark.enabled:  # a typo in the benchmark's controllers must not cost a finished training
        build_baselines(list(cfg.benchmark.controllers), cfg.baselines, eval_kw, use_tuned=False)
    out = ensure_writable(cfg.out_dir)
    tracker = tracker_from_config(cfg.logger, job_type="train", config=to_dict(cfg), out_dir=out)
    try:
        artifact = train_controller(train_kw, agent, out, seed=cfg.seed, tracker=tracker, progress=False)
    finally:
        tracker.finish()
    print(f"controller artifact: {artifact}")
    if cfg.benchmark.enabled:
        b = cfg.benchmark
        tracker = tracker_from_config(cfg.logger, job_type="eval", config=to_dict(cfg), out_dir=out / "benchmark")
        try:
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
            )
        finally:
            tracker.finish()
        print(md)


if __name__ == "__main__":
    main()
