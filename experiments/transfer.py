"""Run a trained controller on other tasks (data set, architecture) beside the tuned baselines.

python experiments/transfer.py artifact=outputs/train/<run>/controller experiment=rq2_transfer
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rlsched.bench.evaluate import evaluate_task, require_env_data
from rlsched.bench.harness import check_results_folder
from rlsched.config import env_kwargs, to_dict
from rlsched.control.artifact import load_artifact, portable_env_config
from rlsched.entry import reports_user_errors
from rlsched.io import ensure_writable
from rlsched.tracking import tracker_from_config


def target_env_kwargs(artifact_env: dict, eval_env: dict, target: dict) -> dict:
    """The artifact's training env, then the evaluation settings, then the target's own changes.

    Where the data lies (and which device runs) is never taken from the artifact: it comes from the evaluation
    settings, else from this machine's defaults (RLSCHED_DATA_DIR).
    """
    overrides = {k: v for k, v in target.items() if k != "name"}
    # A new model needs its own model_kwargs unless the target gives them.
    if "model" in overrides and overrides["model"] != artifact_env["model"] and "model_kwargs" not in overrides:
        overrides["model_kwargs"] = {}
    return env_kwargs({**portable_env_config(artifact_env), **eval_env, **overrides})


@hydra.main(version_base="1.3", config_path="../conf", config_name="transfer")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    art = load_artifact(cfg.artifact)
    targets = to_dict(cfg.targets)
    names = [t.get("name") for t in targets]
    if None in names or len(set(names)) != len(names):
        raise ValueError(f"every target needs a unique name, got {names}")
    kws = {t["name"]: target_env_kwargs(art.env_config, to_dict(cfg.eval_env), t) for t in targets}
    # Every target's data and results folder are checked before the first target runs or any folder is made.
    for name, kw in kws.items():
        require_env_data(kw)
        check_results_folder(Path(cfg.out_dir) / name, kw)
    out = ensure_writable(cfg.out_dir)
    reports = []
    for name, kw in kws.items():
        tracker = tracker_from_config(
            cfg.logger,
            job_type="transfer",
            config={**to_dict(cfg), "target": name},
            out_dir=out / name,
            name=f"transfer-{name}",
        )
        try:
            reports.append(
                evaluate_task(
                    kw,
                    list(cfg.controllers),
                    cfg.baselines,
                    {"learned": cfg.artifact},
                    list(cfg.seeds),
                    out / name,
                    title=f"Transfer to {name}: {kw['dataset']} / {kw['model']} (trained on "
                    f"{art.env_config['dataset']} / {art.env_config['model']})",
                    tracker=tracker,
                    use_tuned=cfg.use_tuned,
                    tuned_dir=cfg.tuned_dir,
                    progress=cfg.progress,
                    population=cfg.population,
                )
            )
        finally:
            tracker.finish()
    md = "\n\n".join(reports)
    (Path(out) / "transfer.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
