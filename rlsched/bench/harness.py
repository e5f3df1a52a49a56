"""Benchmark harness: controllers x seeds on one task, paired by seed, judged on the held-out test set.

Paired design: `env.reset(seed=s)` fixes the initial weights, the split and the data order, so every
controller run with seed s starts from the same network (recorded as `init_fingerprint`). Results are
appended per finished run, so an interrupted benchmark keeps every seed it finished and resumes from there.

A results folder belongs to one env config: every row carries the `env_identity` of the env it ran on, and
`env_config.json` beside `results.csv` says what that env was. A run with another env config in the same
folder stops with an error naming the differing keys, so old numbers are never reused or mixed in.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from rlsched.control.base import Controller
from rlsched.control.rollout import Episode, rollout
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.env.vector import LRControlVecEnv
from rlsched.io import atomic_write_text, complete_lines, ensure_writable, locked, repair_partial_line
from rlsched.tracking import Tracker

CURVE_COLUMNS = ["controller", "seed", "step", "lr", "train_loss", "val_loss", "val_accuracy"]
FINAL_KEYS = ["test_loss", "test_accuracy", "final_val_loss", "final_val_accuracy"]
RESULTS, ENV_CONFIG = "results.csv", "env_config.json"


class ResultsFolderError(ValueError):
    """A results folder holds runs of another env config; reusing or extending it would mix tasks."""


def env_identity_config(env: Mapping[str, Any] | EnvConfig) -> dict[str, Any]:
    """The env config with defaults filled in and presets expanded, less what changes no number
    (`EnvConfig.identity`: the data's place, CPU threads, the cache folder; the device counts by its kind)."""
    return EnvConfig.coerce(env).identity()


def identity_hash(identity_config: Mapping[str, Any]) -> str:
    blob = json.dumps(dict(identity_config), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def env_identity(env: Mapping[str, Any] | EnvConfig) -> str:
    """Short hash of `env_identity_config`: equal for two env configs exactly when they give the same numbers."""
    return identity_hash(env_identity_config(env))


def read_results(path: str | Path, warn: bool = True) -> pd.DataFrame:
    """results.csv as a frame; a partial last line is dropped (with a warning), never a ParserError.

    A corrupt row elsewhere (a line with the wrong number of fields, or text where a number belongs) raises
    ResultsFolderError naming the file and its line, instead of a pandas error far from the cause.
    """
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    text, partial = complete_lines(text)
    if partial and warn:
        warnings.warn(
            f"{path}: dropped a partial last line {partial[:80]!r} (a run killed while writing it); "
            "that run counts as not done and will be repeated",
            stacklevel=2,
        )
    if not text.strip():
        return pd.DataFrame()
    try:
        df = pd.read_csv(io.StringIO(text))
    except pd.errors.ParserError as err:
        found = re.search(r"line (\d+)", str(err))
        where = f"{path}:{found.group(1)}" if found else str(path)
        raise ResultsFolderError(f"{where}: corrupt row in the results file ({err}); {_CORRUPT_FIX}") from err
    _check_rows(df, path)
    return df


_CORRUPT_FIX = "delete that line (its run is then repeated) or the file (every run is repeated)"
# Columns every row has and that must hold numbers: a row that fails here was damaged or hand-edited.
_NUMERIC = ("seed", "steps", "return", "final_lr", *FINAL_KEYS, "env_seconds", "wall_seconds", "harness_seconds")


def _check_rows(df: pd.DataFrame, path: Path) -> None:
    bad = pd.Series(False, index=df.index)
    for col in (c for c in _NUMERIC if c in df.columns):
        values = df[col]
        bad |= values.notna() & pd.to_numeric(values, errors="coerce").isna()
    for col in (c for c in ("controller", "seed") if c in df.columns):
        bad |= df[col].isna()
    if "seed" in df.columns:
        seeds = pd.to_numeric(df["seed"], errors="coerce")
        bad |= seeds.notna() & (seeds != seeds.round())
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        line = first + 2  # line 1 is the header
        raise ResultsFolderError(
            f"{path}:{line}: corrupt row in the results file ({int(bad.sum())} such row(s)), "
            f"{dict(df.iloc[first].head(4))!r}...; {_CORRUPT_FIX}"
        )


def repair_results(path: str | Path) -> None:
    """Drop a partial last line from results.csv on disk (files written before appends were crash-safe)."""
    with locked(path):
        repair_partial_line(path)


def append_result(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append one row to results.csv under the file's lock, crash-safe: the whole new file is written, then
    renamed into place. Two benchmarks sharing a folder both keep every row (each appends under the lock)."""
    path = Path(path)
    new = pd.DataFrame([dict(row)]).to_csv(index=False)
    with locked(path):
        old, partial = complete_lines(path.read_text() if path.exists() else "")
        if partial:
            warnings.warn(f"{path}: dropped a partial last line {partial[:80]!r}", stacklevel=2)
        if not old.strip():
            text = new
        elif old.split("\n", 1)[0] == new.split("\n", 1)[0]:
            text = old + new.split("\n", 1)[1]  # same columns: the old rows stay byte for byte as they were
        else:
            merged = pd.concat([pd.read_csv(io.StringIO(old)), pd.DataFrame([dict(row)])], ignore_index=True)
            text = merged.to_csv(index=False)
        atomic_write_text(path, text)


def _differing_keys(stored: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    keys = sorted(set(stored) | set(current))
    absent = "<absent>"
    return {
        k: (stored.get(k, absent), current.get(k, absent))
        for k in keys
        if stored.get(k, absent) != current.get(k, absent)
    }


def check_results_folder(out_dir: str | Path, env: Mapping[str, Any] | EnvConfig) -> dict[str, Any]:
    """Refuse a folder whose results.csv holds runs of another env config; returns this env's identity config.

    Reads only, so it can run before any folder is created or any data is loaded.
    """
    out = Path(out_dir)
    current = env_identity_config(env)
    ident = identity_hash(current)
    prev = read_results(out / RESULTS, warn=False)  # the run that follows repairs the file and says so
    found = set(prev["env_identity"].astype(str)) if "env_identity" in prev.columns else set()
    if prev.empty or found == {ident}:
        return current
    fix = f"Pick a new out_dir=... for this config (or delete {out / RESULTS} to start over there)."
    if not found:
        raise ResultsFolderError(
            f"{out / RESULTS} was written without an env identity (an older rlsched), so nothing says which env "
            f"config its runs used; it cannot be reused or extended. {fix}"
        )
    stored_path = out / ENV_CONFIG
    if stored_path.is_file():
        diff = _differing_keys(json.loads(stored_path.read_text()), current)
        detail = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        detail = f"differing keys: {detail}" if diff else f"identities {sorted(found)} vs {ident}"
    else:
        detail = f"identities {sorted(found)} vs {ident}; {stored_path} is missing"
    raise ResultsFolderError(
        f"{out / RESULTS} holds runs of another env config ({detail}); reusing them would report old numbers "
        f"under this config, and adding to them would mix two tasks in one table. {fix}"
    )


@dataclass
class EpisodeResult:
    curves: pd.DataFrame
    final: dict


def run_episode(env: LRControlEnv, controller: Controller, seed: int) -> EpisodeResult:
    """One paired episode. `env` is the unwrapped LRControlEnv, reused across runs so data load once."""
    [ep] = rollout(env, controller, [seed], fingerprints=True)
    return _episode_result(controller.name, ep)


def run_population(venv: LRControlVecEnv, controller: Controller, seeds: Sequence[int]) -> list[EpisodeResult]:
    """`run_episode` for several seeds at once: one copy of `controller` per row of `venv` (a population trained
    in lockstep), rows beyond `len(seeds)` padded with the last seed and dropped. The same episodes as
    `run_episode` gives, to float tolerance."""
    n, k = venv.num_envs, len(seeds)
    if not 1 <= k <= n:
        raise ValueError(f"run_population needs 1..{n} seeds for a population of {n}, got {k}")
    return [_episode_result(controller.name, ep) for ep in rollout(venv, controller, seeds, fingerprints=True)]


def _episode_result(name: str, ep: Episode) -> EpisodeResult:
    """One run's curves (from its per-step infos) and results row (from its last info)."""
    seed, info = ep.seed, ep.last
    curves = pd.DataFrame([_curve_row(i) for i in ep.infos])
    curves.insert(0, "seed", seed)
    curves.insert(0, "controller", name)
    final = {
        "task": info.get("task") or "",
        "controller": name,
        "seed": seed,
        "init_fingerprint": ep.init_fingerprint,
        "steps": info["step"],
        "diverged": bool(info.get("diverged", False)),
        "return": float(ep.ret),
        "final_lr": info["lr"],
        **{k: info.get(k, float("nan")) for k in FINAL_KEYS},
        "env_seconds": ep.env_seconds,
        "wall_seconds": ep.wall_seconds,
    }
    return EpisodeResult(curves, final)


def _population_groups(todo: list[tuple[Any, Controller]], size: int) -> list[tuple[Controller, list[int]]]:
    """The runs to do as (controller, seeds) groups of at most `size` seeds, in the order `todo` lists them."""
    by_ctrl: dict[str, tuple[Controller, list[int]]] = {}
    for seed, ctrl in todo:
        by_ctrl.setdefault(ctrl.name, (ctrl, []))[1].append(int(seed))
    if size == 1:
        return [(ctrl, [int(seed)]) for seed, ctrl in todo]
    return [(c, seeds[i : i + size]) for c, seeds in by_ctrl.values() for i in range(0, len(seeds), size)]


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
    population: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every controller on every seed; returns (results, curves), both also on disk in `out_dir`.

    Files: `results.csv` (one row per run, appended as runs finish) and `curves/<controller>__seed<s>.csv`.
    Rows are appended under a file lock, so several benchmarks may share `out_dir` at once; the returned
    results hold every controller the folder has for `seeds` (this call's and any other's on this env config).
    Runs already in `results.csv` with the same controller identity (parameters, or the artifact's bytes) are
    skipped, which is how an interrupted benchmark resumes; a changed controller is run again. A folder whose
    runs used another env config is refused (ResultsFolderError naming the differing keys), before any run.
    `env`, when given, must be built from `env_kwargs`. `population` > 1 runs up to that many seeds of a controller
    as one population trained in lockstep (rlsched.env.vector; the same numbers to float tolerance, much faster on a
    GPU); the `runner` column says which ran each row.
    """
    names = [c.name for c in controllers]
    if len(set(names)) != len(names):
        raise ValueError(f"controller names must be unique, got {names}")
    if not seeds:
        raise ValueError("no seeds given")
    env_config = check_results_folder(out_dir, env_kwargs)
    env_id = identity_hash(env_config)
    out = ensure_writable(out_dir)
    (out / "curves").mkdir(exist_ok=True)
    results_path = out / RESULTS
    atomic_write_text(out / ENV_CONFIG, json.dumps(env_config, indent=2) + "\n")
    repair_results(results_path)
    ident = {c.name: c.identity() for c in controllers}
    prev = read_results(results_path)
    done = (
        {
            (c, int(s))
            for c, s, i in zip(prev["controller"], prev["seed"], prev["identity"], strict=True)
            if ident.get(c) == i
        }
        if not prev.empty
        else set()
    )
    todo = [(s, c) for s in seeds for c in controllers if (c.name, int(s)) not in done]
    if population < 1:
        raise ValueError(f"population must be >= 1 (1: one env after another), got {population}")
    groups = _population_groups(todo, population)
    if population > 1 and groups:
        venv = LRControlVecEnv(env_kwargs, max(len(g) for _, g in groups))
    else:
        env = env or LRControlEnv(**env_kwargs)
    bar = tqdm(total=len(todo), desc="benchmark", disable=not progress, unit="run")
    for ctrl, group in groups:
        bar.set_postfix(controller=ctrl.name, seeds=f"{group[0]}..{group[-1]}")
        t0 = time.perf_counter()
        if population > 1:
            runs, runner = run_population(venv, ctrl, group), f"population{venv.num_envs}"
        else:
            runs, runner = [run_episode(env, ctrl, int(group[0]))], "single"
        for seed, res in zip(group, runs, strict=True):
            atomic_write_text(out / "curves" / f"{ctrl.name}__seed{seed}.csv", res.curves.to_csv(index=False))
            if tracker is not None:
                keys = ("test_loss", "test_accuracy", "final_val_loss")
                tracker.log({f"final/{ctrl.name}/{k}": res.final[k] for k in keys} | {"final/seed": seed})
            # Everything the harness does for a run beyond the env's own reset/step time counts as overhead.
            res.final["harness_seconds"] = (time.perf_counter() - t0) / len(runs)
            res.final["identity"] = ident[ctrl.name]
            res.final["env_identity"] = env_id
            res.final["runner"] = runner
            append_result(results_path, res.final)
            bar.update(1)
    bar.close()
    results = read_results(results_path)
    # Keep the newest row of each current (controller, seed); rows of a changed controller are stale. Rows of
    # controllers this call did not run (another benchmark into the same folder, now or earlier) stay in: the
    # table shows everything the folder holds for these seeds.
    mine = results["controller"].isin(ident)
    current = ~mine | (results["identity"] == results["controller"].map(ident))
    current &= results["env_identity"] == env_id
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
