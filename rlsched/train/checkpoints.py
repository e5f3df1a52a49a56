"""A training run's folder: checkpoint I/O and the run's identity (`run_config.json`).

<out>/checkpoints/step_<timesteps>/   model.zip + vecnormalize.pkl, written at rollout boundaries
<out>/run_config.json                 what the run is: env config, agent config and seed (see `check_run_folder`)

A re-run in the same folder resumes only a run of the same identity. Anything else (another env, other PPO
settings, another seed) stops with an error naming the differing keys before any work, so a finished run's
controller is never quietly reused for a request it does not answer.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlsched.control.artifact import ENV_CONFIG, META, portable_env_config
from rlsched.identity import ABSENT, differing_keys
from rlsched.io import atomic_write_text, create_text_exclusive

CKPT_PREFIX = "step_"
RUN_CONFIG = "run_config.json"


class RunConfigError(ValueError):
    """The run folder holds a training run of another config; resuming it would answer the wrong request."""


# ----- checkpoints -----------------------------------------------------------------------------------------
def save_checkpoint(model, ckpt_dir: Path, keep: int = 2) -> Path:
    """model.zip + vecnormalize.pkl under `step_<timesteps>`; keeps the newest `keep` checkpoints."""
    # Write into a temporary folder and rename, so a crash mid-write never leaves a half checkpoint.
    final = ckpt_dir / f"{CKPT_PREFIX}{model.num_timesteps:012d}"
    tmp = ckpt_dir / f".tmp_{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    vn = model.get_vec_normalize_env()
    if vn is not None:
        vn.save(str(tmp / "vecnormalize.pkl"))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(ckpt_dir.glob(f"{CKPT_PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_timesteps(ckpt: Path) -> int:
    return int(ckpt.name[len(CKPT_PREFIX) :])


def checkpoints_newest_first(ckpt_dir: Path) -> list[Path]:
    """The checkpoint folders holding a model.zip, newest first (resume tries them in this order)."""
    return sorted((p for p in ckpt_dir.glob(f"{CKPT_PREFIX}*") if (p / "model.zip").is_file()), reverse=True)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    found = checkpoints_newest_first(ckpt_dir)
    return found[0] if found else None


# ----- the run's identity ----------------------------------------------------------------------------------
def _describe(diff: Mapping[str, tuple[Any, Any]]) -> str:
    def show(v: Any) -> str:
        return v if v == ABSENT else json.dumps(v)

    return "\n".join(f"  {k}: {show(old)} -> {show(new)}" for k, (old, new) in diff.items())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunConfigError(f"{path} is corrupt ({err}); delete it or choose another out_dir=...") from err


def has_run_state(out: Path) -> bool:
    """Whether a training run has left anything a resume would use: checkpoints, best/, selection or PPO logs."""
    return (
        latest_checkpoint(out / "checkpoints") is not None
        or (out / "best" / "best_model.zip").is_file()
        or (out / "eval" / "selection.csv").is_file()
        or (out / "sb3_log" / "progress.csv").is_file()
    )


def _legacy_record(out: Path) -> dict[str, Any]:
    """What a folder written before run_config.json existed says about its run: the artifact's env and seed."""
    record: dict[str, Any] = {}
    if (out / "controller" / ENV_CONFIG).is_file():
        record["env"] = portable_env_config(_read_json(out / "controller" / ENV_CONFIG))
    if (out / "controller" / META).is_file() and "seed" in (meta := _read_json(out / "controller" / META)):
        record["seed"] = meta["seed"]
    return record


def check_run_folder(
    out_dir: str | Path,
    identity: Mapping[str, Any],
    *,
    resume: bool,
    budget: int,
    ignore: tuple[str, ...] = (),
    defaults: Mapping[str, Any] | None = None,
) -> str:
    """Whether `out_dir` may hold the run `identity`; reads only, so it runs before anything is created.

    Returns "new" (no run there yet), "stale" (a run_config.json but nothing trained or logged: a run that
    failed while starting; replaced), "same" (the same run: resume or finish) or "legacy" (a run written before
    run_config.json existed: adopted, with a warning, if the artifact's env and seed agree). Raises
    RunConfigError for another run's folder, for `resume=False` in a folder that holds a run, and for a
    budget below the timesteps the run has already trained. Flattened keys in `ignore` may change freely;
    `defaults` (flattened keys) stand in for keys one side lacks (see `differing_keys`).
    """
    out = Path(out_dir)
    fix = f"Choose another out_dir=... for this config (or delete {out} to start over there)."
    stored_path, ckpt = out / RUN_CONFIG, latest_checkpoint(out / "checkpoints")
    if not has_run_state(out):
        return "stale" if stored_path.is_file() else "new"
    if not resume:
        raise RunConfigError(
            f"agent.resume=false starts a training run from scratch, but {out} already holds one. {fix}"
        )
    if stored_path.is_file():
        status, stored, only_common = "same", _read_json(stored_path), False
    else:
        status, stored, only_common = "legacy", _legacy_record(out), True
    found = differing_keys(stored, identity, only_common=only_common, defaults=defaults)
    diff = {k: v for k, v in found.items() if k not in ignore}
    if diff:
        sweep = ""
        if "seed" in diff:
            sweep = f" A sweep over seeds needs one folder per seed, e.g. out_dir='{out}/seed${{seed}}'."
        raise RunConfigError(
            f"{out} holds a training run of another config; resuming it would reuse that run's controller.\n"
            f"Differing keys (that run -> this request):\n{_describe(diff)}\n{fix}{sweep}"
        )
    if ckpt is not None and checkpoint_timesteps(ckpt) > budget:
        raise RunConfigError(
            f"{out} holds a run already trained for {checkpoint_timesteps(ckpt)} timesteps, more than "
            f"agent.total_timesteps asks for ({budget} in whole rollouts); ask for at least that many. {fix}"
        )
    if status == "legacy":
        warnings.warn(
            f"{out} holds a training run but no {RUN_CONFIG} (a run from before run identities were recorded); "
            f"adopting it as this config's run and writing {RUN_CONFIG}",
            stacklevel=2,
        )
        print(f"warning: adopting {out} (a training run without {RUN_CONFIG}) as this config's training run")
    return status


def write_run_config(
    out_dir: str | Path,
    identity: Mapping[str, Any],
    *,
    replace: bool,
    ignore: tuple[str, ...] = (),
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Record the run's identity. A new run claims the file atomically: of two jobs started on one folder at
    the same time, exactly one wins, and the other is checked against the winner's config."""
    path = Path(out_dir) / RUN_CONFIG
    text = json.dumps(dict(identity), indent=2, sort_keys=True) + "\n"
    if replace:
        atomic_write_text(path, text)
        return
    if not create_text_exclusive(path, text):
        stored = _read_json(path)
        found = differing_keys(stored, identity, defaults=defaults)
        diff = {k: v for k, v in found.items() if k not in ignore}
        if diff:
            raise RunConfigError(
                f"another job claimed {path.parent} for another config at the same time:\n{_describe(diff)}\n"
                "Choose another out_dir=... for each job (e.g. out_dir=.../seed${seed} in a sweep)."
            )
