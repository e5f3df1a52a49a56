"""summary.csv and paired.csv name their rows: read back, each row says which controller (and reference) it is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlsched.bench.report import write_report


@pytest.fixture
def finished(tmp_path):
    rng = np.random.default_rng(0)
    rows, curves = [], []
    for ctrl, level in (("ppo", 0.50), ("constant", 0.55), ("cosine", 0.53)):
        for seed in range(3):
            loss = level + 0.01 * rng.standard_normal()
            rows.append(
                {
                    "controller": ctrl,
                    "seed": seed,
                    "test_loss": loss,
                    "test_accuracy": 1 - loss / 2,
                    "final_val_loss": loss + 0.01,
                    "env_seconds": 1.0,
                    "harness_seconds": 1.01,
                }
            )
            curves += [
                {"controller": ctrl, "seed": seed, "step": s, "lr": 0.01, "train_loss": loss, "val_loss": loss}
                for s in range(4)
            ]
    return pd.DataFrame(rows), pd.DataFrame(curves), tmp_path


def test_summary_and_paired_name_their_rows(finished):
    results, curves, out = finished
    write_report(results, curves, ["constant", "cosine"], out, title="t")
    summary = pd.read_csv(out / "summary.csv")
    assert summary["controller"].tolist() == ["ppo", "constant", "cosine"]
    mean = results.groupby("controller")["test_loss"].mean()
    got = summary.set_index("controller")["test_loss_mean"]
    assert got["ppo"] == pytest.approx(mean["ppo"]) and got["cosine"] == pytest.approx(mean["cosine"])
    paired = pd.read_csv(out / "paired.csv")
    # The reference is the baseline with the lowest validation loss (cosine) and is named on every row.
    assert paired["controller"].tolist() == ["ppo", "constant"]
    assert set(paired["reference"]) == {"cosine"}
    ref = results[results.controller == "cosine"].set_index("seed")["test_loss"]
    ppo = results[results.controller == "ppo"].set_index("seed")["test_loss"]
    row = paired.set_index("controller").loc["ppo"]
    assert row["test_loss_diff_mean"] == pytest.approx((ppo - ref).mean())
    assert "**cosine**" in (out / "table.md").read_text()
