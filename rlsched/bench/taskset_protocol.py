"""Issue 14's protocol: a controller trained on a task set, judged on held-out tasks, in AlgoPerf's two rulesets.

- **Zero tuning (self-tuning ruleset), table 1.** Each method may use only what it would have on a new task: the
  task's stated LR and budget, and what was learned or tuned on the *training* task set. Methods: the learned
  controllers (one per PPO seed); Adam held at the stated rate and at torch's default 1e-3; schedule-free AdamW at
  the stated rate and at its default 0.0025; Prodigy and D-Adaptation Adam at lr 1; every schedule tuned once on
  the training set (`<baseline>@set`, conf/tuned/taskset_<set>_*.yaml), applied unchanged.
- **External tuning, table 2.** Schedules tuned per held-out task (`<baseline>@task`, 24 trials on 2 tuning
  seeds): the upper reference.

Every method runs on the same evaluation trainees (seeds 0..19: the same initial weights, split and data order,
checked by `init_fingerprint` across optimizers). Δ = learned - method on the same trainee: the mean over PPO
seeds with a t interval over PPO seeds, and the two-way bootstrap over PPO x evaluation seeds (rlsched.bench.protocol).
Methods that need another optimizer run in their own env (results folder), the rest in the task's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from rlsched.bench import protocol, stats
from rlsched.bench.harness import read_results, run_benchmark
from rlsched.bench.plots import plot_lr_schedules, plot_val_loss
from rlsched.bench.tuning import TuneSettings, tune_baselines, tuning_seeds
from rlsched.config import PROJECT_ROOT, load_tuned, to_dict
from rlsched.control import make_controller
from rlsched.control.learned import LearnedController
from rlsched.env.lr_control import LRControlEnv
from rlsched.env.models import PUBLISHED_DEFAULT_LR
from rlsched.env.tasks import TaskSet, task_env_kwargs

BASELINE_SPECS = PROJECT_ROOT / "conf" / "controller" / "baselines.yaml"


@dataclass(frozen=True)
class ZeroTuning:
    """A zero-tuning method: an optimizer held at a constant rate ("stated": the task's initial LR)."""

    name: str
    optimizer: str
    lr: float | str


ZERO_TUNING = (
    ZeroTuning("adam@stated", "adam", "stated"),
    ZeroTuning("adam@1e-3", "adam", PUBLISHED_DEFAULT_LR["adam"]),
    # Warm-up + cosine with textbook settings (10% warm-up from 0.1x, cosine to 0) at the stated rate: the prior
    # of the prior_offset action (rlsched.env.actions.prior_schedule), untuned.
    ZeroTuning("warmup_cosine@stated", "adam", "stated"),
    ZeroTuning("sf_adamw@stated", "schedulefree_adamw", "stated"),
    ZeroTuning("sf_adamw@0.0025", "schedulefree_adamw", PUBLISHED_DEFAULT_LR["schedulefree_adamw"]),
    ZeroTuning("prodigy@1", "prodigy", PUBLISHED_DEFAULT_LR["prodigy"]),
    ZeroTuning("dadapt_adam@1", "dadapt_adam", PUBLISHED_DEFAULT_LR["dadapt_adam"]),
)


@dataclass
class Protocol:
    base_env: dict[str, Any]  # the shared env settings (features, probe, bounds) of the training set
    held_out: TaskSet
    learned: dict[str, Path]  # controller name -> artifact folder (one per PPO seed)
    set_tuned: dict[str, dict]  # baseline -> spec tuned once on the training set
    out_dir: Path
    seeds: list[int]
    task_tuned_baselines: tuple[str, ...] = ("warmup_cosine", "one_cycle")
    n_trials: int = 24

    def task_kw(self, task: str, **overrides: Any) -> dict[str, Any]:
        return {**task_env_kwargs(self.base_env, self.held_out, task), **overrides}

    # --- external tuning: per held-out task --------------------------------------------------------------
    def tune_task(self, task: str) -> dict[str, dict]:
        """The per-task tuned settings of `task` (tuned here on the first run, resumed or reused after)."""
        kw = self.task_kw(task)
        specs = _baseline_specs()
        folder = self.out_dir / task / "tuning"
        settings = TuneSettings(n_trials=self.n_trials, seeds=tuning_seeds(None, 2), lr_range=(0.0005, 0.1))
        tuned = _tuned_in(folder)
        if not all(b in tuned for b in self.task_tuned_baselines):
            tune_baselines(kw, list(self.task_tuned_baselines), specs, settings, folder, tuned_dir=folder)
            tuned = _tuned_in(folder)
        return {b: {**specs[b], **tuned[b]} for b in self.task_tuned_baselines}

    # --- evaluation -----------------------------------------------------------------------------------------
    def evaluate_task(self, task: str, *, tuned: bool = True, learned_only: bool = False) -> pd.DataFrame:
        """Every method on every evaluation seed of `task` (resumes: finished runs are kept). `learned_only`: the
        learned controllers alone (an ablation whose references are another protocol folder's, on the same
        trainees)."""
        kw = self.task_kw(task)
        stated = float(kw.get("initial_lr", 0.01))
        folder = self.out_dir / task
        learned = [LearnedController(p, name=n) for n, p in self.learned.items()]
        env = LRControlEnv(**kw)
        for ctrl in learned:  # a mismatched artifact fails before any episode
            ctrl.artifact.check_compatible(env)
        adam = [*learned]
        adam += [_zero_tuning(z, stated) for z in ZERO_TUNING if z.optimizer == "adam"]
        adam += [_spec_controller(f"{b}@set", spec) for b, spec in self.set_tuned.items()]
        if tuned and not learned_only:
            adam += [_spec_controller(f"{b}@task", spec) for b, spec in self.tune_task(task).items()]
        if learned_only:
            adam = learned
        frames = [run_benchmark(kw, adam, self.seeds, folder / "adam", env=env, progress=False)[0]]
        for z in [] if learned_only else ZERO_TUNING:
            if z.optimizer == "adam":
                continue
            lr = stated if z.lr == "stated" else float(z.lr)
            zkw = {**kw, "optimizer": z.optimizer, "lr_max": max(float(kw.get("lr_max", 0.1)), lr)}
            frames.append(run_benchmark(zkw, [_constant(z.name, lr)], self.seeds, folder / z.name, progress=False)[0])
        rows = pd.concat(frames, ignore_index=True)
        rows["task"] = task
        return rows


def _tuned_in(folder: Path) -> dict[str, dict]:
    """The winners file of a task's own tuning folder (one task per folder, whatever its file is named)."""
    files = sorted(p for p in folder.glob("*.yaml")) if folder.is_dir() else []
    if len(files) > 1:
        raise ValueError(f"{folder} holds several tuned-settings files {files}; one task per folder")
    return dict(to_dict(OmegaConf.load(files[0]))) if files else {}


def _baseline_specs() -> dict[str, dict]:
    return dict(to_dict(OmegaConf.load(BASELINE_SPECS)))


def _zero_tuning(z: ZeroTuning, stated: float):
    lr = stated if z.lr == "stated" else float(z.lr)
    if z.name.startswith("warmup_cosine"):
        return make_controller("warmup_cosine", name=z.name, lr=lr, warmup_frac=0.1, start_factor=0.1, eta_min=0.0)
    return _constant(z.name, lr)


def _constant(name: str, lr: float):
    return make_controller("constant", name=name, lr=float(lr))


def _spec_controller(name: str, spec: Mapping[str, Any]):
    params = dict(spec)
    return make_controller(params.pop("kind"), name=name, **params)


def set_tuned_specs(train_env: Mapping[str, Any], tuned_dir: str | Path | None = None) -> dict[str, dict]:
    """The schedules tuned once on the training task set (empty if that tuning has not run)."""
    specs = _baseline_specs()
    return {b: {**specs[b], **v} for b, v in load_tuned(dict(train_env), tuned_dir).items()}


def collect(out_dir: Path, tasks: Sequence[str], extra: Sequence[Path] = ()) -> pd.DataFrame:
    """Every results row of `tasks` under `out_dir` (and the `extra` protocol folders: ablations)."""
    frames = []
    for task in tasks:
        files = [f for d in (out_dir, *extra) for f in sorted((d / task).glob("*/results.csv"))]
        for f in files:
            df = read_results(f)
            df["task"] = task
            frames.append(df)
    if not frames:
        raise ValueError(f"no results under {out_dir}; run the evaluate stage first")
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(["task", "controller", "seed"], keep="last")
    return rows


def check_pairing(rows: pd.DataFrame) -> None:
    """Every method of a task started from the same trainee for each seed (whatever its optimizer)."""
    n = rows.groupby(["task", "seed"])["init_fingerprint"].nunique()
    bad = n[n > 1]
    if len(bad):
        raise ValueError(f"unpaired runs (different initial weights for one task and seed): {list(bad.index)[:5]}")


def _delta_rows(rows: pd.DataFrame, learned: Sequence[str], methods: Sequence[str], metric: str) -> list[dict]:
    """Per task and method: Δ of the learned controllers that have results on that task (a task still being
    evaluated shows the ones finished so far; its n_ppo_seeds says how many)."""
    out = []
    for task, df in rows.groupby("task", sort=False):
        here = [c for c in learned if c in set(df["controller"])]
        if not here:
            continue
        for m in methods:
            if m not in set(df["controller"]):
                continue
            d = protocol.difference_matrix(df, here, m, metric)
            s = protocol.summarize_configuration(d)
            out.append({"task": task, "method": m, "method_mean": df[df.controller == m][metric].mean()} | s)
    return out


def across_tasks(rows: pd.DataFrame, learned: Sequence[str], method: str, metric: str) -> dict:
    """Δ averaged over tasks: per PPO seed, the mean over tasks of its mean Δ; t interval over PPO seeds."""
    per_seed = []
    for _, df in rows.groupby("task", sort=False):
        if method not in set(df["controller"]) or not set(learned) <= set(df["controller"]):
            return {}  # only over tasks where every learned controller and the method have run
        per_seed.append(protocol.difference_matrix(df, list(learned), method, metric).mean(axis=1))
    v = pd.concat(per_seed, axis=1).mean(axis=1).to_numpy()
    mean, _, lo, hi = stats.t_interval(v)
    return {
        "task": "mean over tasks",
        "method": method,
        "diff_mean": mean,
        "t_ci_low": lo,
        "t_ci_high": hi,
        "n_ppo_seeds": len(v),
        "ppo_seeds_better": int((v < 0).sum()),
    }


def headroom(rows: pd.DataFrame, zero: Sequence[str], task_tuned: Sequence[str]) -> pd.DataFrame:
    """Per task: the best zero-tuning method and the best per-task tuned schedule (each chosen on validation
    loss), and their test-loss difference on the same trainees with a bootstrap interval over seeds."""
    out = []
    for task, df in rows.groupby("task", sort=False):
        z = [m for m in zero if m in set(df.controller)]
        t = [m for m in task_tuned if m in set(df.controller)]
        if not z or not t:
            continue
        bz, bt = stats.best_baseline(df, z), stats.best_baseline(df, t)
        piv = df.pivot_table(index="seed", columns="controller", values="test_loss")
        d = (piv[bz] - piv[bt]).dropna().to_numpy()
        lo, hi = stats.bootstrap_mean_ci(d)
        out.append(
            {
                "task": task,
                "best_zero_tuning": bz,
                "best_task_tuned": bt,
                "headroom": d.mean(),
                "ci_low": lo,
                "ci_high": hi,
                "n_eval": len(d),
            }
        )
    return pd.DataFrame(out)


def _f(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:+.4f}"


def report(
    rows: pd.DataFrame, configurations: Mapping[str, Sequence[str]], compute: Mapping[str, Any], out_dir: Path
) -> str:
    """Tables 1 and 2, headroom and per-task means, as Markdown (and CSVs beside it). `configurations` maps a
    configuration (e.g. the feature set) to its learned controllers, one per PPO seed."""
    check_pairing(rows)
    controllers = set(rows.controller)
    zero = [z.name for z in ZERO_TUNING] + sorted(c for c in controllers if c.endswith("@set"))
    task_tuned = sorted(c for c in controllers if c.endswith("@task"))
    configurations = {k: [c for c in v if c in controllers] for k, v in configurations.items()}
    configurations = {k: v for k, v in configurations.items() if v}
    learned = [c for v in configurations.values() for c in v]
    parts: dict[str, list[pd.DataFrame]] = {"t1": [], "t2": [], "agg1": [], "agg2": []}
    for config, ctrls in configurations.items():
        for key, methods in (("1", zero), ("2", task_tuned)):
            t = pd.DataFrame(_delta_rows(rows, ctrls, methods, "test_loss"))
            agg = pd.DataFrame([r for m in methods if (r := across_tasks(rows, ctrls, m, "test_loss"))])
            for df in (t, agg):
                df.insert(0, "configuration", config)
            parts["t" + key].append(t)
            parts["agg" + key].append(agg)
    t1, t2, agg1, agg2 = (pd.concat(parts[k], ignore_index=True) for k in ("t1", "t2", "agg1", "agg2"))
    head = headroom(rows, zero, task_tuned)
    means = rows.pivot_table(index="controller", columns="task", values="test_loss", aggfunc="mean")
    for name, df in (("table1_zero_tuning", t1), ("table2_task_tuned", t2), ("headroom", head)):
        df.to_csv(out_dir / f"{name}.csv", index=False)
    pd.concat([agg1, agg2], ignore_index=True).to_csv(out_dir / "across_tasks.csv", index=False)
    means.to_csv(out_dir / "mean_test_loss.csv")
    rows.to_csv(out_dir / "rows.csv", index=False)

    def table(t: pd.DataFrame, agg: pd.DataFrame) -> list[str]:
        lines = [
            "| configuration | task | method | method's mean test loss | Δ (learned - method) | 95% t CI (PPO seeds) "
            "| 95% two-way bootstrap | PPO seeds better |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for _, r in t.iterrows():
            lines.append(
                f"| {r.configuration} | {r.task} | {r.method} | {r.method_mean:.4f} | {_f(r.diff_mean)} "
                f"| [{_f(r.t_ci_low)}, "
                f"{_f(r.t_ci_high)}] | [{_f(r.boot2_ci_low)}, {_f(r.boot2_ci_high)}] | "
                f"{r.ppo_seeds_better}/{r.n_ppo_seeds} |"
            )
        for _, r in agg.iterrows():
            lines.append(
                f"| {r.configuration} | **{r.task}** | {r.method} | | {_f(r.diff_mean)} "
                f"| [{_f(r.t_ci_low)}, {_f(r.t_ci_high)}] | | {r.ppo_seeds_better}/{r.n_ppo_seeds} |"
            )
        return lines

    n_eval = int(rows.groupby(["task", "controller"]).size().min())
    lines = [
        "# Held-out tasks: the learned controller against zero-tuning methods and per-task tuned schedules",
        "",
        "Learned controllers: "
        + "; ".join(f"{k}: {len(v)} PPO seeds ({', '.join(v)})" for k, v in configurations.items())
        + f"; {n_eval}+ evaluation seeds per "
        "task; Δ < 0: the learned controller is better.",
        "",
        "Training compute per controller (PPO env steps on the training set; the checkpoint kept by selection on "
        "the selection trainees, 0 = the initial policy; wall seconds on the machine that trained it):",
        "",
        "| controller | PPO env steps | selected checkpoint at | wall s |",
        "|---|---:|---:|---:|",
        *[
            f"| {k} | {v.get('ppo_env_steps')} | {v.get('selected_checkpoint_at')} | {v.get('wall_s')} |"
            for k, v in compute.items()
        ],
        "",
        "## Table 1: zero tuning (AlgoPerf self-tuning ruleset)",
        "",
        *table(t1, agg1),
        "",
        "## Table 2: per-task tuned schedules (external tuning, 24 trials each on 2 tuning seeds)",
        "",
        *table(t2, agg2),
        "",
        "## Headroom: best zero-tuning method - best per-task tuned schedule (test loss)",
        "",
        "| task | best zero-tuning | best per-task tuned | headroom | 95% bootstrap CI | n |",
        "|---|---|---|---:|---:|---:|",
        *[
            f"| {r.task} | {r.best_zero_tuning} | {r.best_task_tuned} | {_f(r.headroom)} | [{_f(r.ci_low)}, "
            f"{_f(r.ci_high)}] | {r.n_eval} |"
            for _, r in head.iterrows()
        ],
        "",
        "## Mean test loss per method and task",
        "",
        *_markdown_frame(means),
        "",
    ]
    figures = plot_tasks(out_dir, list(means.columns), learned)
    lines += ["## Figures (LR schedule and validation loss per task, mean over seeds)", ""]
    lines += [f"- `{p.relative_to(out_dir)}`" for p in figures] + [""]
    md = "\n".join(lines)
    (out_dir / "report.md").write_text(md)
    return md


def plot_tasks(out_dir: Path, tasks: Sequence[str], learned: Sequence[str]) -> list[Path]:
    """Per task, the learned controllers' schedules beside the Adam-driven references (the other optimizers hold
    a constant rate), from the harness's per-run curves."""
    shown = [*learned, "adam@stated", "warmup_cosine@set", "warmup_cosine@task", "one_cycle@task"]
    paths = []
    for task in tasks:
        files = [
            f for f in sorted((out_dir / task / "adam" / "curves").glob("*.csv")) if f.name.split("__")[0] in shown
        ]
        if not files:
            continue
        curves = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
        paths.append(plot_lr_schedules(curves, out_dir / task / "lr_schedules.png"))
        paths.append(plot_val_loss(curves, out_dir / task / "val_loss.png"))
    return paths


def _markdown_frame(df: pd.DataFrame) -> list[str]:
    lines = ["| method | " + " | ".join(map(str, df.columns)) + " |", "|---|" + "---:|" * len(df.columns)]
    lines += [f"| {i} | " + " | ".join(f"{v:.4f}" for v in r) + " |" for i, r in df.iterrows()]
    return lines
