"""Figures of the research protocol: learned schedules beside the baselines', and checkpoint-selection curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

BASELINE_STYLES = ("--", "-.", ":")


def plot_schedules(
    curves: pd.DataFrame, configurations: Mapping[str, Mapping[str, int]], baselines: Sequence[str], path: Path
) -> Path:
    """One panel per configuration: each PPO seed's LR (mean over evaluation seeds) and the baselines' LR."""
    mean_lr = curves.groupby(["controller", "step"])["lr"].mean()
    n = len(configurations)
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.6), sharey=True, squeeze=False)
    for ax, (config, controllers) in zip(axes[0], configurations.items(), strict=True):
        for ctrl, k in sorted(controllers.items(), key=lambda kv: kv[1]):
            if ctrl in mean_lr.index.get_level_values(0):
                s = mean_lr.loc[ctrl]
                ax.plot(s.index, s.values, lw=1.2, alpha=0.8, label=f"PPO seed {k}")
        for b, style in zip(baselines, BASELINE_STYLES, strict=False):
            if b in mean_lr.index.get_level_values(0):
                s = mean_lr.loc[b]
                ax.plot(s.index, s.values, color="black", ls=style, lw=1.5, label=b)
        ax.set_yscale("log")
        ax.set_title(config, fontsize="medium")
        ax.set_xlabel("env step")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small")
    axes[0][0].set_ylabel("learning rate (mean over evaluation seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_selection_curves(runs: Mapping[str, Sequence[Path]], path: Path) -> Path:
    """Mean final validation loss of the policy on the 16 selection trainees vs PPO timesteps, per configuration
    (one thin line per PPO seed) and the policy std over training when SB3 logged it."""
    fig, (ax, ax_std) = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (config, artifacts) in enumerate(runs.items()):
        for j, artifact in enumerate(artifacts):
            run = Path(artifact).parent
            sel = run / "eval" / "selection.csv"
            if sel.is_file():
                df = pd.read_csv(sel)
                ax.plot(
                    df["timesteps"],
                    df["score"],
                    color=colors[i % len(colors)],
                    alpha=0.7,
                    marker="o",
                    ms=3,
                    label=config if j == 0 else None,
                )
            prog = run / "sb3_log" / "progress.csv"
            if prog.is_file():
                df = pd.read_csv(prog)
                if "train/std" in df:
                    df = df.dropna(subset=["train/std"])
                    ax_std.plot(
                        df["time/total_timesteps"],
                        df["train/std"],
                        color=colors[i % len(colors)],
                        alpha=0.7,
                        label=config if j == 0 else None,
                    )
    ax.set_xlabel("PPO timesteps")
    ax.set_ylabel("selection: mean final val loss (16 trainees)")
    ax_std.set_xlabel("PPO timesteps")
    ax_std.set_ylabel("policy std")
    for a in (ax, ax_std):
        a.grid(True, alpha=0.3)
        if a.get_legend_handles_labels()[0]:  # the std panel is empty when SB3 logged no std
            a.legend(fontsize="x-small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def selection_report(run_dir: Path) -> str:
    """Did training improve on the initial policy? The selection curve of one training run as a table (and
    `selection.png` beside it): the mean final validation loss on the selection trainees at each evaluation, the
    initial policy's first. '' when the run had no checkpoint selection."""
    run_dir = Path(run_dir)
    sel = run_dir / "eval" / "selection.csv"
    if not sel.is_file():
        return ""
    df = pd.read_csv(sel)
    plot_selection_curves({"ppo": [run_dir / "controller"]}, run_dir / "selection.png")
    initial, best = float(df["score"].iloc[0]), float(df["score"].min())
    lines = ["| PPO timesteps | selection val loss | best so far |", "|---:|---:|:---:|"]
    lines += [f"| {int(r.timesteps)} | {r.score:.4f} | {'yes' if r.best else ''} |" for r in df.itertuples()]
    verdict = (
        f"learned: the best selection loss {best:.4f} is below the initial policy's {initial:.4f} "
        f"({best - initial:+.4f})"
        if best < initial
        else f"not learned: no checkpoint beat the initial policy's selection loss {initial:.4f}"
    )
    return "\n".join([*lines, "", verdict, f"(curve: {run_dir / 'selection.png'})"])
