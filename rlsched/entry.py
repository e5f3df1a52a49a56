"""Setup and teardown shared by the Hydra entry points (lightning-hydra-template's `task_wrapper`).

    @hydra.main(version_base="1.3", config_path="../conf", config_name="train")
    @task_wrapper
    def main(cfg: DictConfig) -> None:
        ...                                   # checks first: nothing written before they pass
        with tracked(cfg.logger, job_type="train", config=to_dict(cfg), out_dir=out) as tracker:
            ...

Each entry point returns its objective, the number a Hydra sweeper (Optuna, Nevergrad, Ax) minimizes: train.py the
best checkpoint-selection loss (`selection_objective`), benchmark.py the learned controller's paired Δ final
validation loss against the reference baseline (`benchmark_objective`), tune.py the best tuning score. All are
validation numbers: a sweep that chose on test data would leak the test set into the result.

`tracked` opens a tracker (W&B offline by default, see rlsched/tracking.py) and finishes it however the block
ends. `task_wrapper` finishes any tracker still open when the task ends (say, one made by `open_tracker` for
a factory such as tune.py's `tracker_for`) and prints how the task ended, how long it took and where its
outputs are, on success and on failure alike. `reports_user_errors` (outermost, under `@hydra.main`) turns an
error in the request (a bad config value, a refused folder, missing data) into one line on stderr and exit
status 1, instead of a traceback; HYDRA_FULL_ERROR=1 shows the traceback as before.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rlsched.tracking import Tracker, format_duration, tracker_from_config

T = TypeVar("T")
OBJECTIVE_METRIC = "final_val_loss"  # what the sweep objectives compare: validation, never test
_open_trackers: list[Tracker] = []


def open_tracker(
    logger_cfg: Mapping[str, Any],
    *,
    job_type: str,
    config: Mapping[str, Any],
    out_dir: str | os.PathLike,
    name: str | None = None,
) -> Tracker:
    """A tracker from the `logger` config group, finished by `task_wrapper` at the latest."""
    tracker = tracker_from_config(logger_cfg, job_type=job_type, config=config, out_dir=out_dir, name=name)
    _open_trackers.append(tracker)
    return tracker


def finish_trackers() -> None:
    """Finish every tracker opened by `open_tracker` (finishing twice is harmless)."""
    while _open_trackers:
        _open_trackers.pop().finish()


@contextmanager
def tracked(
    logger_cfg: Mapping[str, Any],
    *,
    job_type: str,
    config: Mapping[str, Any],
    out_dir: str | os.PathLike,
    name: str | None = None,
) -> Iterator[Tracker]:
    """A tracker for the duration of the block, finished however the block ends."""
    tracker = open_tracker(logger_cfg, job_type=job_type, config=config, out_dir=out_dir, name=name)
    try:
        yield tracker
    finally:
        tracker.finish()
        if tracker in _open_trackers:
            _open_trackers.remove(tracker)


def _outputs_note(out_dir: Any) -> str:
    if not out_dir:
        return ""
    out = Path(str(out_dir))
    if out.is_dir() and any(out.iterdir()):
        return f"; outputs in {out.resolve()}"
    return f"; nothing written to {out}"


def closing_line(name: str, seconds: float, out_dir: Any, error: BaseException | None) -> str:
    """How a task ended: on success where its outputs are; on failure what stopped it (the folder may hold
    another run's outputs, e.g. when the request was refused, so it is only named)."""
    took = format_duration(seconds)
    if error is None:
        return f"[{name}] done after {took}{_outputs_note(out_dir)}"
    where = f"; out_dir {out_dir}" if out_dir else ""
    return f"[{name}] stopped after {took} by {type(error).__name__}{where}"


def _user_errors() -> tuple[type[BaseException], ...]:
    from rlsched.env.data import DataNotFoundError
    from rlsched.io import FolderBusyError

    # ValueError covers the refusals (ResultsFolderError, RunConfigError, ArtifactError, TunedFileError) and every
    # bad config value; the others are a missing data set, an unwritable out_dir and a folder in use.
    return (ValueError, DataNotFoundError, PermissionError, FolderBusyError)


def reports_user_errors(task: Callable[[Any], T]) -> Callable[[Any], T]:
    """An error in the request ends the program with one line on stderr (exit status 1), not a traceback: the
    message already names the key and the fix. HYDRA_FULL_ERROR=1 re-raises it with its traceback."""

    @functools.wraps(task)
    def wrap(cfg: Any) -> T:
        try:
            return task(cfg)
        except _user_errors() as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {err} ({type(err).__name__}; HYDRA_FULL_ERROR=1 shows the traceback)", file=sys.stderr)
            sys.exit(1)

    return wrap


def task_wrapper(task: Callable[[Any], T]) -> Callable[[Any], T]:
    """Wraps an entry point's `main(cfg)`: trackers finished, and one closing line on how it ended and where
    its outputs are (read from `cfg.out_dir`; `cfg.task_name` names the task)."""

    @functools.wraps(task)
    def wrap(cfg: Any) -> T:
        name = cfg.get("task_name") or task.__module__
        t0, error = time.perf_counter(), None
        try:
            return task(cfg)
        except BaseException as err:
            error = err
            raise
        finally:
            finish_trackers()
            line = closing_line(name, time.perf_counter() - t0, cfg.get("out_dir"), error)
            print(line, file=sys.stdout if error is None else sys.stderr, flush=True)

    return wrap


def selection_objective(out_dir: str | os.PathLike) -> float:
    """The best checkpoint-selection score of a training run (mean final validation loss of the selection
    trainees, lower is better), read from `<out_dir>/eval/selection.csv`; NaN, with a note, when selection was off
    (`agent.eval_every: 0`), so that a sweeper records the trial as failed rather than as a score."""
    from rlsched.train.selection import SELECTION_CSV, read_selection_log  # lazily: SB3 only when a run is read

    path = Path(out_dir) / "eval" / SELECTION_CSV
    scores = read_selection_log(path)["score"] if path.is_file() else []
    if len(scores) == 0:
        print(f"[objective] no checkpoint selection in {path} (agent.eval_every=0?): objective NaN", flush=True)
        return float("nan")
    return float(min(scores))


def benchmark_objective(out_dir: str | os.PathLike, learned: Mapping[str, Any]) -> float | None:
    """The first learned controller's mean paired Δ final validation loss against the reference baseline
    (negative: better than the best tuned baseline), read from `<out_dir>/paired.csv`; None without a learned
    controller (a baselines-only benchmark has nothing to optimize)."""
    if not learned:
        return None
    import pandas as pd

    name = next(iter(learned))
    paired = pd.read_csv(Path(out_dir) / "paired.csv").set_index("controller")
    if name not in paired.index:  # the learned controller is itself the reference: no baseline beat it or ran
        return 0.0
    return float(paired.loc[name, f"{OBJECTIVE_METRIC}_diff_mean"])
