"""Callbacks of a PPO training run (SB3's `common/callbacks.py` is the model).

TraineeMetrics    per-step trainee curves and end-of-episode summaries -> tracker `trainee/*`
RolloutCheckpoint model + VecNormalize at rollout boundaries (after a PPO update) -> checkpoints/step_*
ProgressLines     a progress line every few seconds: timesteps, episodes, speed, best selection score, ETA
CheckpointSelection (rlsched/train/selection.py) scores the policy on fixed selection trainees -> best/

and SB3 logger outputs: AppendingCSVOutput (sb3_log/progress.csv, appended to on resume) and WandbWriter
(PPO losses and rollout statistics -> tracker `controller/*`).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import FormatUnsupportedError, KVWriter, filter_excluded_keys

from rlsched.io import atomic_write_text, repair_partial_line
from rlsched.tracking import Tracker, format_duration
from rlsched.train.checkpoints import save_checkpoint


class TraineeMetrics(BaseCallback):
    """Per-step trainee curves of env 0 and end-of-episode summaries of every env, as `trainee/*`."""

    def __init__(self, tracker: Tracker):
        super().__init__()
        self.tracker = tracker
        self.episodes = 0

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        first = infos[0]
        metrics = {f"trainee/{k}": first[k] for k in ("lr", "train_loss", "val_loss", "val_accuracy") if k in first}
        for info, done in zip(infos, dones, strict=True):
            if done and "episode" in info:
                self.episodes += 1
                metrics |= {
                    "trainee/episode_return": info["episode"]["r"],
                    "trainee/episodes": self.episodes,
                    "trainee/final_lr": info["lr"],
                    "trainee/diverged": float(info.get("diverged", False)),
                }
                if "final_val_loss" in info:
                    metrics["trainee/final_val_loss"] = info["final_val_loss"]
        self.tracker.log(metrics, step=self.num_timesteps)
        return True


class RolloutCheckpoint(BaseCallback):
    """Saves model + VecNormalize at the start of a rollout (i.e. after the previous PPO update).

    `boundary` is the step count of the policy being rolled out: an interruption mid-rollout saves that
    policy under that count (see rlsched.train.agent), so no half-collected rollout is ever counted.
    """

    def __init__(self, ckpt_dir: Path, every: int, keep: int = 2):
        super().__init__()
        self.ckpt_dir, self.every, self.keep = ckpt_dir, every, keep
        self.last = self.boundary = 0

    def _init_callback(self) -> None:
        self.last = self.boundary = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        self.boundary = self.model.num_timesteps  # the policy is exactly this one until the next update
        if self.model.num_timesteps - self.last >= self.every:
            save_checkpoint(self.model, self.ckpt_dir, self.keep)
            self.last = self.model.num_timesteps

    def _on_step(self) -> bool:
        return True


class ProgressLines(BaseCallback):
    """Prints a progress line at most every `every_s` seconds, and one at the start and the end of learn().

    Plain lines rather than a progress bar, so that CI and cluster logs stay readable. `best_score` returns
    the best checkpoint-selection score so far (None before the first evaluation or without selection).
    """

    def __init__(
        self,
        total_timesteps: int,
        every_s: float = 30.0,
        best_score: Callable[[], float | None] | None = None,
        prefix: str = "[train]",
    ):
        super().__init__()
        self.total, self.every_s = int(total_timesteps), float(every_s)
        self.best_score, self.prefix = best_score, prefix
        self.episodes = 0
        self.t0 = self.last_print = 0.0
        self.start_steps = 0
        # The rate is measured from the first env step: the evaluation of the starting policy (16 selection
        # episodes) happens before it and once, and counting it made the first ETA read ~20 h for a 20-min run.
        self.rate_t0: float | None = None
        self.rate_steps = 0

    def _on_training_start(self) -> None:
        self.t0 = self.last_print = time.monotonic()
        self.start_steps = self.num_timesteps
        self.rate_t0 = None
        resumed = f" (resumed at {self.start_steps:,})" if self.start_steps else ""
        print(f"{self.prefix} training to {self.total:,} timesteps{resumed}", flush=True)

    def _on_step(self) -> bool:
        self.episodes += int(sum(bool(d) for d in self.locals.get("dones", ())))
        now = time.monotonic()
        if self.rate_t0 is None:
            self.rate_t0, self.rate_steps = now, self.num_timesteps
        if now - self.last_print >= self.every_s:
            self.last_print = now
            print(self.line(now), flush=True)
        return True

    def _on_training_end(self) -> None:
        print(self.line(time.monotonic()), flush=True)

    def line(self, now: float) -> str:
        done = self.num_timesteps
        elapsed = max(now - self.t0, 1e-9)
        measuring = self.rate_t0 is not None and now > self.rate_t0
        rate = (done - self.rate_steps) / (now - self.rate_t0) if measuring else 0.0
        eta = (self.total - done) / rate if rate > 0 else math.inf
        parts = [
            f"{done:,}/{self.total:,} timesteps ({100 * done / max(self.total, 1):.0f}%)",
            f"{self.episodes:,} episodes this run",
            f"{rate:.1f} env steps/s",
        ]
        if self.best_score is not None:  # None: checkpoint selection is off
            best = self.best_score()
            ok = best is not None and math.isfinite(best)
            parts.append(f"best selection val loss {best:.4f}" if ok else "best selection val loss -")
        parts += [f"elapsed {format_duration(elapsed)}", f"ETA {format_duration(max(eta, 0.0))}"]
        return f"{self.prefix} " + " | ".join(parts)


# ----- SB3 logger outputs -----------------------------------------------------------------------------------
class AppendingCSVOutput(KVWriter):
    """SB3's CSV output, but a resumed run appends to the file instead of truncating it.

    SB3's CSVOutputFormat opens the file with "w+": a resumed run would lose every row before the kill. Here
    the header of an existing file is read back and new rows are appended. When a row brings new keys, the
    file is rewritten once with the wider header and the old rows padded (as SB3 does), via a temporary file
    and a rename, so a kill mid-rewrite leaves the old file whole. A partial last line (a kill mid-append) is
    dropped when the file is opened.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keys: list[str] = []
        if self.path.is_file():
            complete = repair_partial_line(self.path, warn=False)
            if complete:
                self.keys = next(csv.reader(io.StringIO(complete)))
        self.file = open(self.path, "a")  # noqa: SIM115 - open for the writer's lifetime, closed in close()

    def _widen(self, extra: list[str]) -> None:
        self.file.close()
        rows = self.path.read_text().splitlines()[1:]
        self.keys += extra
        pad = "," * len(extra)
        atomic_write_text(self.path, "".join(f"{line}\n" for line in [",".join(self.keys), *(r + pad for r in rows)]))
        self.file = open(self.path, "a")  # noqa: SIM115 - open for the writer's lifetime, closed in close()

    @staticmethod
    def _cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return '"' + value.replace('"', '""') + '"'
        if isinstance(value, int | float | np.integer | np.floating | bool | np.bool_):
            return str(value)
        raise FormatUnsupportedError(["csv"], type(value).__name__)

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        key_values = filter_excluded_keys(key_values, key_excluded, "csv")
        extra = sorted(k for k in key_values if k not in self.keys)  # sorted: the same column order every run
        if extra:
            self._widen(extra)
        self.file.write(",".join(self._cell(key_values.get(k)) for k in self.keys) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class WandbWriter(KVWriter):
    """Forwards SB3's logger (PPO losses, rollout stats) to the tracker as `controller/*`."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker

    def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
        out = {}
        for k, v in key_values.items():
            if isinstance(v, int | float | np.floating | np.integer):
                group, _, rest = k.partition("/")
                out[f"controller/{rest}" if group == "train" else f"controller/{group}/{rest}"] = float(v)
        self.tracker.log(out, step=step)

    def close(self) -> None:
        pass
