"""The figures are written as real PNG files and leave no figures open."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from rlsched.plots import plot_all, plot_val_loss

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
