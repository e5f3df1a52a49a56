"""Score one baseline setting on validation loss; as a multirun, tune it (see conf/tune.yaml).

python experiments/tune.py experiment=tune_step_decay            # the sweep, winner -> conf/tuned/
python experiments/tune.py baseline=plateau ++params.factor=0.3   # one setting, prints its score
"""

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rlsched.config import env_kwargs, task_key, to_dict
from rlsched.harness import ensure_writable
from rlsched.tracking import tracker_from_config
from rlsched.tuning import SCORE_FILE, score_setting


@hydra.main(version_base="1.3", config_path="../conf", config_name="tune")
def main(cfg: DictConfig) -> float:
    env_kw = env_kwargs(cfg.env)
    specs = to_dict(cfg.baselines)
    if cfg.baseline not in specs:
        raise ValueError(f"unknown baseline {cfg.baseline!r}; configured: {sorted(specs)}")
    out = ensure_writable(cfg.out_dir)
    params = {**specs[cfg.baseline], **to_dict(cfg.params)}
    tracker = tracker_from_config(
        cfg.logger, job_type="tune", config={**to_dict(cfg), "task": task_key(env_kw)}, out_dir=out
    )
    try:
        result = score_setting(env_kw, cfg.baseline, params, list(cfg.seeds))
        (Path(out) / SCORE_FILE).write_text(json.dumps(result, indent=2))
        tracker.summary({"tune/score": result["score"], "tune/val_losses": result["val_losses"]})
    finally:
        tracker.finish()
    print(f"[tune] {cfg.baseline} {result['params']}: mean final val loss {result['score']:.4f}")
    return result["score"]


if __name__ == "__main__":
    main()
