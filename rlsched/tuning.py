"""Fair tuning of the baselines: score settings on mean final validation loss, keep the best per task.

Each job of a Hydra multirun writes `score.json`; `SelectBestBaseline`, a Hydra callback, reads them all when
the sweep ends and merges the winner into `conf/tuned/<task>.yaml`, which the harness reads by default.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from envs.lr_control import LRControlEnv
from rlsched.config import DEFAULT_TUNED_DIR, task_key, to_dict
from rlsched.controllers import make_controller
from rlsched.harness import run_episode

SCORE_FILE = "score.json"


def score_setting(
    env_kw: Mapping[str, Any],
    baseline: str,
    params: Mapping[str, Any],
    seeds: Sequence[int],
    env: LRControlEnv | None = None,
) -> dict:
    """Mean final validation loss of one baseline setting. The test set is switched off, not just unused."""
    kw = {**env_kw, "test_eval": False, "final_val_eval": True}
    params = dict(params)
    kind = params.pop("kind", baseline)
    ctrl = make_controller(kind, name=baseline, **params)
    env = env or LRControlEnv(**kw)
    losses = []
    for s in seeds:
        final = run_episode(env, ctrl, int(s)).final
        # A diverged run scores its final validation loss, which is poor or non-finite: never a winner.
        v = final["final_val_loss"]
        losses.append(v if math.isfinite(v) else float("inf"))
    return {
        "task": task_key(env_kw),
        "baseline": baseline,
        "params": {"kind": kind, **params},
        "seeds": [int(s) for s in seeds],
        "val_losses": losses,
        "score": sum(losses) / len(losses),
    }


def select_best(sweep_dir: str | Path, tuned_dir: str | Path | None = None) -> dict[str, dict]:
    """Pick the lowest score per (task, baseline) among a sweep's jobs; merge winners into the tuned files."""
    scores = [json.loads(p.read_text()) for p in sorted(Path(sweep_dir).rglob(SCORE_FILE))]
    if not scores:
        raise FileNotFoundError(f"no {SCORE_FILE} under {sweep_dir}: did every job of the sweep fail?")
    best: dict[tuple[str, str], dict] = {}
    for s in scores:
        key = (s["task"], s["baseline"])
        if key not in best or s["score"] < best[key]["score"]:
            best[key] = s
    written: dict[str, dict] = {}
    for (task, baseline), s in best.items():
        path = Path(tuned_dir or DEFAULT_TUNED_DIR) / f"{task}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        current = to_dict(OmegaConf.load(path)) if path.is_file() else {}
        params = {k: v for k, v in s["params"].items() if k != "kind"}
        current[baseline] = params
        n = sum(1 for x in scores if (x["task"], x["baseline"]) == (task, baseline))
        header = (
            f"# Tuned on mean final validation loss (never test). Written by rlsched.tuning.\n"
            f"# {baseline}: best of {n} settings, score {s['score']:.4f} on seeds {s['seeds']} "
            f"(sweep {sweep_dir}).\n"
        )
        old_header = (
            [
                line
                for line in path.read_text().splitlines()
                if line.startswith("# ") and not line.startswith(f"# {baseline}:") and "Written by" not in line
            ]
            if path.is_file()
            else []
        )
        path.write_text(header + "".join(f"{line}\n" for line in old_header) + OmegaConf.to_yaml(current))
        written[f"{task}/{baseline}"] = {"file": str(path), "at_edge": _at_grid_edge(s, scores), **s}
    return written


def _at_grid_edge(best: dict, scores: list[dict]) -> list[str]:
    """Swept numeric parameters whose winning value is the smallest or largest tried: widen the grid."""
    same = [x for x in scores if (x["task"], x["baseline"]) == (best["task"], best["baseline"])]
    edges = []
    for key, value in best["params"].items():
        tried = {x["params"].get(key) for x in same}
        if len(tried) > 2 and all(isinstance(v, int | float) for v in tried) and value in (min(tried), max(tried)):
            edges.append(key)
    return edges


class SelectBestBaseline(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        tuned_dir = config.get("tuned_dir")
        for key, s in select_best(sweep_dir, tuned_dir).items():
            print(f"[tune] {key}: best score {s['score']:.4f} with {s['params']} -> {s['file']}")
            if s["at_edge"]:
                print(f"[tune] WARNING {key}: the best {s['at_edge']} lie on the edge of the grid; widen the sweep")
