"""The figures are written as real PNG files and leave no figures open."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from rlsched.bench.plots import lr_schedules_figure, plot_all, plot_val_loss, val_loss_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def curves() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for ctrl, decay in (("constant", 1.0), ("exponential", 0.95), ("ppo", 0.98)):
        for seed in range(3):
            for step in range(25):
                val = 2.0 * np.exp(-0.1 * step) + 0.05 * rng.standard_normal()
                rows.append(
                    {
                        "controller": ctrl,
                        "seed": seed,
                        "step": step,
                        "lr": 0.01 * decay**step,
                        "train_loss": val,
                        "val_loss": val,
                        "val_accuracy": 1 - val / 3,
                    }
                )
    return pd.DataFrame(rows)


def test_plot_all_writes_pngs(curves: pd.DataFrame, tmp_path) -> None:
    paths = plot_all(curves, tmp_path / "figs")
    assert [p.name for p in paths] == ["lr_schedules.png", "val_loss.png"]
    for p in paths:
        data = p.read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC)
    assert plt.get_fignums() == []


def test_val_loss_minmax_band_and_bad_input(curves: pd.DataFrame, tmp_path) -> None:
    path = plot_val_loss(curves.query("seed == 0"), tmp_path / "v.png", band="minmax")
    assert path.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="unknown band"):
        plot_val_loss(curves, tmp_path / "x.png", band="iqr")
    with pytest.raises(ValueError, match="lack column"):
        plot_all(curves.drop(columns="lr"), tmp_path)
    assert plt.get_fignums() == []


def test_val_loss_has_log_axes_and_a_zoom_on_the_last_third(curves: pd.DataFrame) -> None:
    fig = val_loss_figure(curves)
    try:
        full, zoom = fig.axes
        assert full.get_yscale() == "log" and zoom.get_yscale() == "log"
        # The zoom starts at the first step of the last third (steps 0..24 -> 16) and fits its y range to it.
        assert zoom.get_xlim() == pytest.approx((16, 24))
        tail = curves[curves.step >= 16].groupby(["controller", "step"])["val_loss"].mean()
        lo, hi = zoom.get_ylim()
        assert lo <= tail.min() and tail.max() <= hi
        assert hi / lo < full.get_ylim()[1] / full.get_ylim()[0] / 3  # really zoomed in
        # The zoom's legend gives each controller's final mean, to read differences of ~0.01.
        final = curves[curves.step == 24].groupby("controller")["val_loss"].mean()
        labels = [t.get_text() for t in zoom.get_legend().get_texts()]
        assert f"ppo: {final['ppo']:.4f}" in labels
    finally:
        plt.close(fig)


def test_identical_curves_stay_distinguishable(curves: pd.DataFrame) -> None:
    twin = curves[curves.controller == "constant"].assign(controller="constant_copy")
    both = pd.concat([curves, twin], ignore_index=True)
    for make in (lr_schedules_figure, val_loss_figure):
        fig = make(both)
        try:
            ax = fig.axes[0]
            lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
            assert set(lines) == {"constant", "exponential", "ppo", "constant_copy"}
            looks = {(ln.get_linestyle(), ln.get_marker()) for ln in lines.values()}
            assert len(looks) == len(lines)  # no two controllers drawn alike
            a, b = lines["constant"], lines["constant_copy"]
            assert list(a.get_ydata()) == list(b.get_ydata())  # same data...
            assert a.get_markevery()[0] != b.get_markevery()[0]  # ...markers at different steps, so both show
        finally:
            plt.close(fig)
