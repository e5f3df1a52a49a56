"""Summary statistics, paired comparisons, reference choice and the markdown table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from rlsched.bench.stats import best_baseline, markdown_table, paired_differences, summarize


def results(rows: dict[str, dict[int, tuple[float, float, float]]]) -> pd.DataFrame:
    """{controller: {seed: (test_loss, test_accuracy, final_val_loss)}} -> the results frame."""
    return pd.DataFrame(
        [
            {"controller": c, "seed": s, "test_loss": tl, "test_accuracy": ta, "final_val_loss": vl}
            for c, by_seed in rows.items()
            for s, (tl, ta, vl) in by_seed.items()
        ]
    )


def test_summarize_against_hand_computation() -> None:
    df = results(
        {
            "a": {0: (1.0, 0.9, 2.0), 1: (2.0, 0.8, 2.0), 2: (3.0, 0.7, 2.0), 3: (4.0, 0.6, 2.0)},
            "b": {0: (0.5, 0.95, 0.4)},
        }
    )
    s = summarize(df)
    assert list(s.index) == ["a", "b"] and s.loc["a", "n"] == 4 and s.loc["b", "n"] == 1
    std = math.sqrt(((1.5**2 + 0.5**2) * 2) / 3)  # ddof=1 around the mean 2.5
    half = sps.t.ppf(0.975, 3) * std / math.sqrt(4)
    assert s.loc["a", "test_loss_mean"] == pytest.approx(2.5, rel=1e-12)
    assert s.loc["a", "test_loss_std"] == pytest.approx(std, rel=1e-12)
    assert s.loc["a", "test_loss_ci_low"] == pytest.approx(2.5 - half, rel=1e-12)
    assert s.loc["a", "test_loss_ci_high"] == pytest.approx(2.5 + half, rel=1e-12)
    assert half == pytest.approx(3.182446305 * std / 2, rel=1e-9)  # t_{0.975, 3} from tables
    assert s.loc["a", "test_accuracy_mean"] == pytest.approx(0.75)
    assert s.loc["a", "final_val_loss_std"] == 0.0 and s.loc["a", "final_val_loss_ci_low"] == 2.0
    # One seed: a mean, but no spread and no interval.
    assert s.loc["b", "test_loss_mean"] == 0.5
    assert all(math.isnan(s.loc["b", f"test_loss_{k}"]) for k in ("std", "ci_low", "ci_high"))


def test_summarize_keeps_nan_and_checks_input() -> None:
    df = results({"a": {0: (1.0, 0.9, 1.0), 1: (float("nan"), 0.1, 1.0)}})
    assert math.isnan(summarize(df).loc["a", "test_loss_mean"])  # a diverged seed is not silently dropped
    with pytest.raises(ValueError, match="repeated"):
        summarize(pd.concat([df, df]))
    with pytest.raises(ValueError, match=r"lack column\(s\) \['test_loss'\]"):
        summarize(df.drop(columns="test_loss"))


def paired_frame() -> pd.DataFrame:
    # Seeds differ wildly in difficulty, and "better" gains exactly 0.25 loss / 0.01 accuracy on every one.
    ref_loss = {0: 1.0, 1: 5.0, 2: 2.0, 3: 8.0, 4: 3.0, 5: 0.5}
    rows = {
        "ref": {s: (v, 0.5, 1.0) for s, v in ref_loss.items()},
        "better": {s: (v - 0.25, 0.51, 0.9) for s, v in ref_loss.items()} | {99: (100.0, 0.0, 0.9)},
        "single": {3: (7.0, 0.6, 0.9), 42: (1.0, 0.6, 0.9)},
    }
    df = results(rows)
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)  # pairing must not rely on order


def test_paired_differences_use_pairing() -> None:
    df = paired_frame()
    d = paired_differences(df, "ref", n_resamples=2000)
    assert list(d.index) != [] and "ref" not in d.index
    assert d.loc["better", "n_pairs"] == 6  # seed 99 has no partner
    assert d.loc["better", "test_loss_diff_mean"] == pytest.approx(-0.25, abs=1e-12)
    assert d.loc["better", "test_loss_diff_ci_low"] == pytest.approx(-0.25, abs=1e-12)
    assert d.loc["better", "test_loss_diff_ci_high"] == pytest.approx(-0.25, abs=1e-12)
    assert d.loc["better", "test_accuracy_diff_ci_low"] == pytest.approx(0.01, abs=1e-12)
    # Unpaired, the same numbers give an interval wider than the whole effect many times over.
    s = summarize(df[df["seed"] != 99])
    assert s.loc["better", "test_loss_ci_high"] - s.loc["better", "test_loss_ci_low"] > 5.0
    # One shared seed: the difference, but no interval.
    assert d.loc["single", "n_pairs"] == 1 and d.loc["single", "test_loss_diff_mean"] == pytest.approx(-1.0)
    assert math.isnan(d.loc["single", "test_loss_diff_ci_low"])


def test_paired_bootstrap_matches_scipy_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(1.0, 0.3, 12)
    diff = rng.normal(-0.1, 0.05, 12)
    df = pd.DataFrame(
        {
            "controller": ["ref"] * 12 + ["c"] * 12,
            "seed": list(range(12)) * 2,
            "test_loss": np.r_[ref, ref + diff],
            "test_accuracy": 0.5,
            "final_val_loss": 1.0,
        }
    )
    d = paired_differences(df, "ref", n_resamples=20_000, seed=7)
    ci = sps.bootstrap(
        (diff,), np.mean, n_resamples=20_000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    assert d.loc["c", "test_loss_diff_mean"] == pytest.approx(diff.mean(), abs=1e-12)
    assert d.loc["c", "test_loss_diff_ci_low"] == pytest.approx(ci.low, abs=0.004)
    assert d.loc["c", "test_loss_diff_ci_high"] == pytest.approx(ci.high, abs=0.004)
    again = paired_differences(df, "ref", n_resamples=20_000, seed=7)
    pd.testing.assert_frame_equal(d, again)
    with pytest.raises(ValueError, match="reference 'nope'"):
        paired_differences(df, "nope")


def test_best_baseline_uses_validation_not_test() -> None:
    # "val_best" has the lowest validation loss but the worst test loss; the choice must not see the test.
    df = results(
        {
            "val_best": {0: (2.0, 0.5, 0.30), 1: (2.2, 0.5, 0.32)},
            "test_best": {0: (0.1, 0.9, 0.50), 1: (0.1, 0.9, 0.52)},
            "diverged": {0: (0.0, 1.0, 0.01), 1: (0.0, 1.0, float("nan"))},
            "learned": {0: (0.0, 1.0, 0.0), 1: (0.0, 1.0, 0.0)},
        }
    )
    assert best_baseline(df, ["test_best", "val_best", "diverged"]) == "val_best"
    assert best_baseline(df, ["test_best"]) == "test_best"
    with pytest.raises(ValueError, match="validation"):
        best_baseline(df, ["test_best", "val_best"], metric="test_loss")
    with pytest.raises(ValueError, match=r"\['missing'\] have no results"):
        best_baseline(df, ["val_best", "missing"])


def test_markdown_table_lists_every_controller() -> None:
    df = paired_frame()
    s, d = summarize(df), paired_differences(df, "ref", n_resamples=500)
    md = markdown_table(s, d, "ref")
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + 3 and len({ln.count("|") for ln in table}) == 1
    for ctrl in ("ref (reference)", "better", "single"):
        assert any(ln.startswith(f"| {ctrl} |") for ln in table), ctrl
    better = next(ln for ln in table if ln.startswith("| better |"))
    assert "-0.2500 [-0.2500, -0.2500]" in better and "±" in better
    assert "Δ test loss vs ref" in table[0]


def test_compare_runs_script_reports_each_folder(tmp_path) -> None:
    """scripts/compare_runs.py: one row per folder, the reference chosen on validation, Δ paired by seed."""
    import subprocess
    import sys
    from pathlib import Path

    for name, shift, ref_val in (("rq_a", 0.1, (0.3, 0.5)), ("rq_b", -0.05, (0.5, 0.3))):
        rows = {}
        for s in range(4):
            base = 0.4 + 0.01 * s
            rows.setdefault("ppo", {})[s] = (base + shift, 0.8, 0.9)
            rows.setdefault("constant", {})[s] = (base, 0.8, ref_val[0])
            rows.setdefault("plateau", {})[s] = (base + 1.0, 0.8, ref_val[1])
        (tmp_path / name).mkdir()
        results(rows).to_csv(tmp_path / name / "results.csv", index=False)
    script = Path(__file__).resolve().parents[1] / "scripts" / "compare_runs.py"
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "rq_a"), str(tmp_path / "rq_b"), "--learned", "ppo"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row_a = next(line for line in out.splitlines() if line.startswith("| rq_a"))
    row_b = next(line for line in out.splitlines() if line.startswith("| rq_b"))
    # rq_a: constant has the lower validation loss and is the reference; ppo is 0.1 worse on every seed.
    assert "| constant |" in row_a and "+0.1000 [+0.1000, +0.1000]" in row_a
    # rq_b: plateau is the reference (lower validation loss), so ppo is 1.05 better on every seed.
    assert "| plateau |" in row_b and "-1.0500 [-1.0500, -1.0500]" in row_b
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert bad.returncode != 0 and "no results.csv" in bad.stderr


def test_intervals_are_scipys_exactly() -> None:
    """t_interval is scipy.stats.t.interval and bootstrap_mean_ci is scipy.stats.bootstrap(method="percentile")
    on the same seeded generator, to the last bit."""
    from rlsched.bench.stats import bootstrap_mean_ci, t_interval

    rng = np.random.default_rng(11)
    for n in (2, 3, 5, 8, 20):
        for _ in range(10):
            x = rng.normal(0.01, 0.02, n)
            _, _, lo, hi = t_interval(x)
            assert (lo, hi) == tuple(sps.t.interval(0.95, n - 1, loc=x.mean(), scale=sps.sem(x)))
            ci = sps.bootstrap(
                (x,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(4)
            ).confidence_interval
            assert bootstrap_mean_ci(x, seed=4) == (ci.low, ci.high)
    assert t_interval(np.array([2.0, 2.0]))[2:] == (2.0, 2.0) and bootstrap_mean_ci(np.ones(3)) == (1.0, 1.0)


def _committed_tables() -> list[Path]:
    root = Path(__file__).resolve().parents[1] / "docs" / "results"
    return sorted(p.parent for p in root.rglob("paired.csv") if (p.parent / "results.csv").is_file())


@pytest.mark.parametrize("folder", _committed_tables(), ids=lambda p: str(p).split("docs/results/")[-1])
def test_committed_tables_are_reproduced(folder: Path) -> None:
    """summary.csv, paired.csv and table.md of every committed benchmark, recomputed from its results.csv."""
    results = pd.read_csv(folder / "results.csv")
    summary = pd.read_csv(folder / "summary.csv").set_index("controller")
    paired = pd.read_csv(folder / "paired.csv").set_index("controller")
    reference = paired["reference"].iloc[0]
    s = summarize(results).loc[summary.index]
    d = paired_differences(results, reference).loc[paired.index]
    cols = [c for c in summary.columns if c != "is_baseline"]
    # scipy's t quantile times the standard error and its percentile of the resampled means can differ from the
    # hand-written ones committed in the last bit (summation order): the same numbers to 1e-15, the same tables.
    np.testing.assert_allclose(s[cols].to_numpy(float), summary[cols].to_numpy(float), rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(d.to_numpy(float), paired[d.columns].to_numpy(float), rtol=1e-15, atol=1e-17)
    table = (folder / "table.md").read_text()
    rows = [r for r in markdown_table(s, d, reference).splitlines() if r.startswith("| ")]
    assert rows and all(r in table for r in rows)
