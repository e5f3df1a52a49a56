"""Benchmark harness: controllers x seeds on one task, paired by seed, judged on the held-out test set.

Paired design: `env.reset(seed=s)` fixes the initial weights, the split and the data order, so every
controller run with seed s starts from the same network (recorded as `init_fingerprint`). Results are
appended per finished run, so an interrupted benchmark keeps every seed it finished and resumes from there.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from envs.lr_control import LRControlEnv
from rlsched.controllers.base import Controller
from rlsched.tracking import Tracker

CURVE_COLUMNS = ["controller", "seed", "step", "lr", "train_loss", "val_loss", "val_accuracy"]
FINAL_KEYS = ["test_loss", "test_accuracy", "final_val_loss", "final_val_accuracy"]


def fingerprint(net: torch.nn.Module) -> str:
    h = hashlib.sha1()
    for t in net.state_dict().values():
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def ensure_writable(out_dir: str | Path) -> Path:
    """Create `out_dir` and prove it is writable, before any training time is spent."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(
            f"results folder {out} cannot be written ({err}); choose another with out_dir=..."
        ) from err
    return out


@dataclass
class EpisodeResult:
    curves: pd.DataFrame
    final: dict


def run_episode(env: LRControlEnv, controller: Controller, seed: int) -> EpisodeResult:
    """One paired episode. `env` is the unwrapped LRControlEnv, reused across runs so data load once."""
    t0 = time.perf_counter()
    obs, info = env.reset(seed=seed)
    env_s = time.perf_counter() - t0
    init = fingerprint(env.trainee.net)
    controller.reset(env, obs, info)
    rows = [_curve_row(info)]
    ret, done = 0.0, False
    while not done:
        action = controller.act(obs, info)
        t = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step_lr(action) if controller.sets_lr else env.step(action)
        env_s += time.perf_counter() - t
        ret += reward
        rows.append(_curve_row(info))
        done = terminated or truncated
    curves = pd.DataFrame(rows)
    curves.insert(0, "seed", seed)
    curves.insert(0, "controller", controller.name)
    final = {
        "controller": controller.name,
        "seed": seed,
        "init_fingerprint": init,
        "steps": info["step"],
        "diverged": bool(info.get("diverged", False)),
        "return": ret,
        "final_lr": info["lr"],
        **{k: info.get(k, float("nan")) for k in FINAL_KEYS},
        "env_seconds": env_s,
        "wall_seconds": time.perf_counter() - t0,
    }
    return EpisodeResult(curves, final)


def _curve_row(info: Mapping) -> dict:
    return {k: info[k] for k in ("step", "lr", "train_loss", "val_loss", "val_accuracy")}


def run_benchmark(
    env_kwargs: Mapping,
    controllers: Sequence[Controller],
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    tracker: Tracker | None = None,
    progress: bool = True,
    env: LRControlEnv | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every controller on every seed; returns (results, curves), both also on disk in `out_dir`.

    Files: `results.csv` (one row per run, appended as runs finish) and `curves/<controller>__seed<s>.csv`.
    Runs already in `results.csv` with the same controller identity (parameters, or the artifact's bytes) are
    skipped, which is how an interrupted benchmark resumes; a changed controller is run again.
    """
    names = [c.name for c in controllers]
    if len(set(names)) != len(names):
        raise ValueError(f"controller names must be unique, got {names}")
    if not seeds:
        raise ValueError("no seeds given")
    out = ensure_writable(out_dir)
    (out / "curves").mkdir(exist_ok=True)
    results_path = out / "results.csv"
    ident = {c.name: c.identity() for c in controllers}
    done: set[tuple[str, int]] = set()
    if results_path.exists():
        prev = pd.read_csv(results_path)
        done = {
            (c, int(s))
            for c, s, i in zip(prev["controller"], prev["seed"], prev["identity"], strict=True)
            if ident.get(c) == i
        }
    env = env or LRControlEnv(**env_kwargs)
    todo = [(s, c) for s in seeds for c in controllers if (c.name, int(s)) not in done]
    bar = tqdm(todo, desc="benchmark", disable=not progress, unit="run")
    for seed, ctrl in bar:
        bar.set_postfix(controller=ctrl.name, seed=seed)
        t0 = time.perf_counter()
        res = run_episode(env, ctrl, int(seed))
        res.curves.to_csv(out / "curves" / f"{ctrl.name}__seed{seed}.csv", index=False)
        if tracker is not None:
            keys = ("test_loss", "test_accuracy", "final_val_loss")
            tracker.log({f"final/{ctrl.name}/{k}": res.final[k] for k in keys} | {"final/seed": seed})
        # Everything the harness does for a run beyond the env's own reset/step time counts as overhead.
        res.final["harness_seconds"] = time.perf_counter() - t0
        res.final["identity"] = ident[ctrl.name]
        pd.DataFrame([res.final]).to_csv(results_path, mode="a", header=not results_path.exists(), index=False)
    results = pd.read_csv(results_path)
    # Keep the newest row of each current (controller, seed); rows of a changed controller are stale.
    current = results["identity"] == results["controller"].map(ident)
    results = results[current & results["seed"].isin([int(s) for s in seeds])]
    results = results.drop_duplicates(["controller", "seed"], keep="last")
    curves = pd.concat(
        [
            pd.read_csv(out / "curves" / f"{c}__seed{s}.csv")
            for c, s in zip(results["controller"], results["seed"], strict=True)
        ],
        ignore_index=True,
    )
    return results.reset_index(drop=True), curves
