"""Figures of per-step curves: LR schedules and validation loss per controller, over seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; must not need a display on a cluster node

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _check(curves: pd.DataFrame, column: str) -> None:
    missing = [c for c in ("controller", "seed", "step", column) if c not in curves.columns]
    if missing:
        raise ValueError(f"curves lack column(s) {missing}; have {list(curves.columns)}")
    if curves.empty:
        raise ValueError("curves is empty; nothing to plot")


def _colors(curves: pd.DataFrame) -> dict[str, str]:
    # One color per controller, the same in every figure.
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {c: cycle[i % len(cycle)] for i, c in enumerate(pd.unique(curves["controller"]))}


def _save(fig: Figure, ax: Axes, path: str | Path, ylabel: str, title: str) -> Path:
    ax.set_xlabel("env step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_lr_schedules(curves: pd.DataFrame, path: str | Path) -> Path:
    """LR vs step on a log axis: each controller's mean over seeds, and each seed faintly."""
    _check(curves, "lr")
    colors = _colors(curves)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for ctrl, g in curves.groupby("controller", sort=False):
        for _, s in g.groupby("seed"):
            s = s.sort_values("step")
            ax.plot(s["step"], s["lr"], color=colors[ctrl], alpha=0.2, lw=0.7)
        mean = g.groupby("step")["lr"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=colors[ctrl], lw=1.8, label=str(ctrl))
    ax.set_yscale("log")
    return _save(fig, ax, path, "learning rate", "Learning-rate schedules (mean over seeds; seeds faint)")


def plot_val_loss(curves: pd.DataFrame, path: str | Path, band: str = "std") -> Path:
    """Validation loss vs step: mean over seeds with a ±1 std (band="std") or min-max (band="minmax") band."""
    if band not in ("std", "minmax"):
        raise ValueError(f"unknown band {band!r}; allowed: ['std', 'minmax']")
    _check(curves, "val_loss")
    colors = _colors(curves)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for ctrl, g in curves.groupby("controller", sort=False):
        agg = g.groupby("step")["val_loss"].agg(["mean", "std", "min", "max"])
        if band == "std":
            lo, hi = agg["mean"] - agg["std"].fillna(0.0), agg["mean"] + agg["std"].fillna(0.0)
        else:
            lo, hi = agg["min"], agg["max"]
        ax.plot(agg.index, agg["mean"], color=colors[ctrl], lw=1.8, label=str(ctrl))
        ax.fill_between(agg.index, lo, hi, color=colors[ctrl], alpha=0.2, lw=0)
    what = "±1 std" if band == "std" else "min-max"
    return _save(fig, ax, path, "validation loss (probe)", f"Validation loss (mean over seeds, {what} band)")


def plot_all(curves: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write lr_schedules.png and val_loss.png into out_dir; returns their paths."""
    out = Path(out_dir)
    return [plot_lr_schedules(curves, out / "lr_schedules.png"), plot_val_loss(curves, out / "val_loss.png")]
