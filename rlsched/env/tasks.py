"""Task sets: named sets of training tasks, each an override of the env config (DACBench's "instance sets").

A set lives in `conf/tasks/<set>.yaml` and is chosen with `env.tasks=<set>`:

    description: one line
    tasks:
      fmnist_w128:              # the task's name: in info["task"], the `task` column of results, tables, plots
        dataset: fashion_mnist
        model_kwargs: {hidden: [128]}
        batch_size: 1000
        ...

A task may override only what defines a training problem (`TASK_KEYS`): data, model and its size, optimizer,
batch size, weight decay, initial LR, horizon, K and the training subset. Everything the controller's
observation and action spaces depend on (features, LR bounds, action type) stays the set's, so one policy fits
every task. Each `reset(seed=s)` of a task-set env draws task `names[s % n]`: deterministic, and consecutive
seeds (the selection and evaluation blocks) cover the tasks evenly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TASKS_DIR = Path(__file__).resolve().parents[2] / "conf" / "tasks"
TASK_KEYS = (
    "dataset",
    "model",
    "model_kwargs",
    "optimizer",
    "momentum",
    "weight_decay",
    "initial_lr",
    "batch_size",
    "episode_steps",
    "steps_per_action",
    "train_size",
)


@dataclass(frozen=True)
class TaskSet:
    name: str
    tasks: dict[str, dict[str, Any]]  # task name -> env config overrides, in the file's order

    @property
    def names(self) -> list[str]:
        return list(self.tasks)

    def task_for_seed(self, seed: int) -> str:
        return self.names[int(seed) % len(self.tasks)]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tasks": {k: dict(v) for k, v in self.tasks.items()}}


def available() -> list[str]:
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def _check_tasks(name: str, tasks: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(tasks, Mapping) or not tasks:
        raise ValueError(f"task set {name!r} must map task names to env overrides, got {tasks!r}")
    out = {}
    for task, overrides in tasks.items():
        if not isinstance(task, str) or not task:
            raise ValueError(f"task set {name!r}: task names must be non-empty strings, got {task!r}")
        overrides = {} if overrides is None else overrides
        if not isinstance(overrides, Mapping):
            raise ValueError(f"task set {name!r}, task {task!r}: overrides must be a mapping, got {overrides!r}")
        bad = sorted(set(overrides) - set(TASK_KEYS))
        if bad:
            raise ValueError(
                f"task set {name!r}, task {task!r}: {bad} cannot vary between tasks (one policy must fit every "
                f"task's observation and action spaces); a task may set only {list(TASK_KEYS)}"
            )
        out[task] = {
            k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v)
            for k, v in overrides.items()
        }
    return out


def load_task_set(spec: str | Mapping[str, Any]) -> TaskSet:
    """A set by name (`conf/tasks/<name>.yaml`) or as a mapping {name, tasks} (a resolved set, e.g. from a stored
    env config)."""
    if isinstance(spec, str):
        path = TASKS_DIR / f"{spec}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown task set {spec!r}; available in {TASKS_DIR}: {available()}")
        data = yaml.safe_load(path.read_text()) or {}
        return TaskSet(spec, _check_tasks(spec, data.get("tasks")))
    if isinstance(spec, Mapping) and set(spec) == {"name", "tasks"}:
        return TaskSet(str(spec["name"]), _check_tasks(str(spec["name"]), spec["tasks"]))
    raise ValueError(f"env.tasks must be a task set name ({available()}) or {{name, tasks}}, got {spec!r}")


def task_env_kwargs(base: Mapping[str, Any], task_set: TaskSet, task: str) -> dict[str, Any]:
    """The single-task env config of `task`: the set's shared settings with the task's overrides, labelled."""
    if task not in task_set.tasks:
        raise ValueError(f"task {task!r} is not in task set {task_set.name!r}: {task_set.names}")
    kw = {k: v for k, v in dict(base).items() if k not in ("tasks", "task")}
    overrides = task_set.tasks[task]
    if "model_kwargs" in overrides:  # a task's model options replace the base's (another model takes others)
        kw["model_kwargs"] = {}
    return {**kw, **overrides, "task": task}


def check_disjoint(train: TaskSet, held_out: TaskSet) -> None:
    """No held-out task is a training task, by name or by content (the same overrides under another name)."""
    same_name = sorted(set(train.tasks) & set(held_out.tasks))
    contents = {yaml.safe_dump(v, sort_keys=True): k for k, v in train.tasks.items()}
    same_content = sorted(k for k, v in held_out.tasks.items() if yaml.safe_dump(v, sort_keys=True) in contents)
    if same_name or same_content:
        raise ValueError(
            f"held-out set {held_out.name!r} shares tasks with training set {train.name!r}: "
            f"names {same_name}, contents {same_content}"
        )
