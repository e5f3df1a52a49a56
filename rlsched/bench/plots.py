"""Figures of per-step curves: LR schedules and validation loss per controller, over seeds.

Every controller gets its own color, line style and marker (the same in every figure), so two controllers
with identical curves stay visible as two different dashes rather than one line hiding the other. Losses
are drawn on a log axis beside a zoomed panel of the last third of the steps, where the differences that
decide a comparison (~0.01 on a loss that fell from 2.3) are otherwise invisible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; must not need a display on a cluster node

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, FuncFormatter, MaxNLocator, NullLocator

LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # 8 = lcm(4, 8): (style, marker) pairs repeat after 8
MARKS_PER_LINE = 8
ZOOM_FRACTION = 1 / 3  # the zoomed panel shows this last part of the steps


def _check(curves: pd.DataFrame, column: str) -> None:
    missing = [c for c in ("controller", "seed", "step", column) if c not in curves.columns]
    if missing:
        raise ValueError(f"curves lack column(s) {missing}; have {list(curves.columns)}")
    if curves.empty:
        raise ValueError("curves is empty; nothing to plot")


def line_styles(curves: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per controller (in order of appearance): color, linestyle, marker and a staggered markevery.

    Markers start at a different step for each controller, so identical curves show every marker.
    """
    names = [str(c) for c in pd.unique(curves["controller"])]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # At least one step per controller between two marks of a line, so every line has its own offset.
    every = max(len(names), curves["step"].nunique() // MARKS_PER_LINE)
    return {
        name: {
            "color": colors[i % len(colors)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)],
            "markevery": (i, every),
            "markersize": 4,
        }
        for i, name in enumerate(names)
    }


def _finish(ax: Axes, ylabel: str, title: str, legend_title: str | None = None) -> None:
    ax.set_xlabel("env step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", title=legend_title, title_fontsize="small")


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def lr_schedules_figure(curves: pd.DataFrame) -> Figure:
    """LR vs step on a log axis: each controller's mean over seeds, and each seed faintly."""
    _check(curves, "lr")
    styles = line_styles(curves)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for ctrl, g in curves.groupby("controller", sort=False):
        style = styles[str(ctrl)]
        for _, s in g.groupby("seed"):
            s = s.sort_values("step")
            ax.plot(s["step"], s["lr"], color=style["color"], linestyle=style["linestyle"], alpha=0.2, lw=0.7)
        mean = g.groupby("step")["lr"].mean()
        ax.plot(mean.index, mean.to_numpy(), lw=1.8, label=str(ctrl), **style)
    ax.set_yscale("log")
    _finish(ax, "learning rate", "Learning-rate schedules (mean over seeds; seeds faint)")
    return fig


def _plain(value: float, _pos: int | None = None) -> str:
    return f"{value:g}"


def _plain_minor(value: float, _pos: int | None = None) -> str:
    # Losses span about one decade: label 2, 3 and 5 times a power of ten as well, plainly (0.5, not 5e-01).
    mantissa = round(value / 10 ** np.floor(np.log10(value)), 6) if value > 0 else 0.0
    return f"{value:g}" if mantissa in (2.0, 3.0, 5.0) else ""


def _val_loss_bands(g: pd.DataFrame, band: str) -> pd.DataFrame:
    agg = g.groupby("step")["val_loss"].agg(["mean", "std", "min", "max"])
    if band == "std":
        std = agg["std"].fillna(0.0)
        # On a log axis a band below the lowest seed (mean - std can even be negative) would stretch the axis
        # to nothing; no seed went lower than its minimum, so the band stops there.
        agg["lo"], agg["hi"] = np.maximum(agg["mean"] - std, agg["min"]), agg["mean"] + std
    else:
        agg["lo"], agg["hi"] = agg["min"], agg["max"]
    return agg


def val_loss_figure(curves: pd.DataFrame, band: str = "std") -> Figure:
    """Validation loss vs step on a log axis (left) and zoomed into the last third of the steps (right)."""
    if band not in ("std", "minmax"):
        raise ValueError(f"unknown band {band!r}; allowed: ['std', 'minmax']")
    _check(curves, "val_loss")
    styles = line_styles(curves)
    steps = curves["step"]
    first, last = steps.min(), steps.max()
    zoom_from = steps[steps >= last - ZOOM_FRACTION * (last - first)].min()  # a step that was evaluated
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(13, 4.8))
    zoom_values = []
    for ctrl, g in curves.groupby("controller", sort=False):
        style = styles[str(ctrl)]
        agg = _val_loss_bands(g, band)
        final = agg["mean"].iloc[-1]
        # Bands fainter in the zoom, where six overlapping seed spreads would drown the means.
        for target, label, alpha in ((ax, str(ctrl), 0.15), (zoom, f"{ctrl}: {final:.4f}", 0.06)):
            target.plot(agg.index, agg["mean"], lw=1.8, label=label, **style)
            target.fill_between(agg.index, agg["lo"], agg["hi"], color=style["color"], alpha=alpha, lw=0)
        tail = agg[agg.index >= zoom_from]
        zoom_values += [tail["lo"].to_numpy(), tail["hi"].to_numpy()]
    what = "±1 std" if band == "std" else "min-max"
    for a in (ax, zoom):
        a.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_plain))
    ax.yaxis.set_minor_formatter(FuncFormatter(_plain_minor))
    _finish(ax, "validation loss (probe, log scale)", f"Validation loss (mean over seeds, {what} band)")
    zoom.set_xlim(zoom_from, last)
    values = np.concatenate(zoom_values)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values):
        lo, hi = values.min(), values.max()
        pad = (hi / lo) ** 0.05 if hi > lo else 1.01
        zoom.set_ylim(lo / pad, hi * pad)
    # A log axis spanning a few percent has no decade ticks at all: evenly spaced plain decimals instead.
    zoom.yaxis.set_major_locator(MaxNLocator(nbins=6))
    zoom.yaxis.set_minor_locator(NullLocator())
    zoom.yaxis.set_major_formatter(FormatStrFormatter("%.3f"))
    _finish(
        zoom,
        "validation loss (probe, log scale)",
        f"Zoom: last third of the steps ({zoom_from:g} to {last:g}; log scale)",
        legend_title="final mean",
    )
    return fig


def plot_lr_schedules(curves: pd.DataFrame, path: str | Path) -> Path:
    """Write lr_schedules_figure to `path`."""
    return _save(lr_schedules_figure(curves), path)


def plot_val_loss(curves: pd.DataFrame, path: str | Path, band: str = "std") -> Path:
    """Write val_loss_figure to `path`: band="std" draws ±1 std over seeds, band="minmax" the seed range."""
    return _save(val_loss_figure(curves, band), path)


def plot_all(curves: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write lr_schedules.png and val_loss.png into out_dir; returns their paths."""
    out = Path(out_dir)
    return [plot_lr_schedules(curves, out / "lr_schedules.png"), plot_val_loss(curves, out / "val_loss.png")]
