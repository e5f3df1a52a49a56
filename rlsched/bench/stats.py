"""Summary statistics and paired comparisons of final results, one row per (controller, seed).

NaN results (e.g. a diverged run's test loss) are not dropped: they propagate into the controller's
means, so a controller that sometimes diverges cannot look better by losing its worst seeds. Replace
them upstream if a finite penalty is wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

METRICS = ("test_loss", "test_accuracy", "final_val_loss")
CONFIDENCE = 0.95


def _check(df: pd.DataFrame, metrics: Sequence[str]) -> None:
    missing = [c for c in ("controller", "seed", *metrics) if c not in df.columns]
    if missing:
        raise ValueError(f"results lack column(s) {missing}; have {list(df.columns)}")
    dup = df.duplicated(["controller", "seed"])
    if dup.any():
        pairs = df.loc[dup, ["controller", "seed"]].values.tolist()
        raise ValueError(f"repeated (controller, seed) rows: {pairs}")


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """(mean, std with ddof=1, low, high) of the Student t interval for the mean (scipy.stats.t.interval); NaN
    width when n < 2, a zero-width interval when every value is the same (scipy wants a positive scale)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    mean = float(x.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(x.std(ddof=1))
    if std == 0:
        return mean, std, mean, mean
    lo, hi = sps.t.interval(confidence, n - 1, loc=mean, scale=std / np.sqrt(n))
    return mean, std, float(lo), float(hi)


def summarize(df: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per controller (in order of first appearance): n, then {metric}_mean/_std/_ci_low/_ci_high."""
    _check(df, metrics)
    rows = []
    for ctrl, g in df.groupby("controller", sort=False):
        row: dict = {"controller": ctrl, "n": len(g)}
        if "is_baseline" in g.columns:
            row["is_baseline"] = bool(g["is_baseline"].iloc[0])
        for m in metrics:
            mean, std, lo, hi = t_interval(g[m].to_numpy())
            row |= {f"{m}_mean": mean, f"{m}_std": std, f"{m}_ci_low": lo, f"{m}_ci_high": hi}
        rows.append(row)
    return pd.DataFrame(rows).set_index("controller")


def bootstrap_mean_ci(
    values: np.ndarray, n_resamples: int = 10_000, seed: int = 0, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (scipy.stats.bootstrap, resamples drawn from
    `np.random.default_rng(seed)`); (NaN, NaN) when n < 2 or any value is NaN."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2 or not np.isfinite(x).all():
        return float("nan"), float("nan")
    if np.all(x == x[0]):  # every resample's mean is that value; scipy would warn of degenerate data
        return float(x[0]), float(x[0])
    ci = sps.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return float(ci.low), float(ci.high)


def paired_differences(
    df: pd.DataFrame,
    reference: str,
    metrics: Sequence[str] = METRICS,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per other controller: n_pairs and {metric}_diff_mean/_ci_low/_ci_high of (controller - reference),
    paired by seed over the seeds both have, with a percentile bootstrap CI of the mean difference."""
    _check(df, metrics)
    if reference not in set(df["controller"]):
        raise ValueError(f"reference {reference!r} not among controllers {sorted(set(df['controller']))}")
    ref = df[df["controller"] == reference].set_index("seed")[list(metrics)]
    rows = []
    for ctrl, g in df.groupby("controller", sort=False):
        if ctrl == reference:
            continue
        mine = g.set_index("seed")[list(metrics)]
        seeds = mine.index.intersection(ref.index).sort_values()
        row: dict = {"controller": ctrl, "n_pairs": len(seeds)}
        for m in metrics:
            d = (mine.loc[seeds, m] - ref.loc[seeds, m]).to_numpy(dtype=np.float64)
            lo, hi = bootstrap_mean_ci(d, n_resamples, seed)
            row |= {
                f"{m}_diff_mean": float(d.mean()) if len(d) else float("nan"),
                f"{m}_diff_ci_low": lo,
                f"{m}_diff_ci_high": hi,
            }
        rows.append(row)
    stats = ("mean", "ci_low", "ci_high")
    cols = ["controller", "n_pairs"] + [f"{m}_diff_{s}" for m in metrics for s in stats]
    return pd.DataFrame(rows, columns=cols).set_index("controller")


def best_baseline(df: pd.DataFrame, baselines: list[str], metric: str = "final_val_loss") -> str:
    """The baseline with the lowest mean `metric`, a validation metric: choosing the reference on the
    test set would leak test data into the comparison. Ties go to the first listed."""
    if metric.startswith("test"):
        raise ValueError(f"choose the reference on validation data, not {metric!r}")
    _check(df, [metric])
    if not baselines:
        raise ValueError("no baselines given")
    absent = sorted(set(baselines) - set(df["controller"]))
    if absent:
        raise ValueError(f"baseline(s) {absent} have no results; have {sorted(set(df['controller']))}")
    means = df.groupby("controller")[metric].agg(lambda s: s.mean(skipna=False))
    scores = [(float(means[b]), i, b) for i, b in enumerate(baselines) if np.isfinite(means[b])]
    if not scores:
        raise ValueError(f"every baseline has a non-finite mean {metric}")
    return min(scores)[2]


def _fmt_stat(row: pd.Series, m: str, digits: int) -> str:
    if f"{m}_mean" not in row.index:
        return "n/a"
    mean, std, lo, hi = (row[f"{m}_{s}"] for s in ("mean", "std", "ci_low", "ci_high"))
    if np.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _fmt_diff(diffs: pd.DataFrame, ctrl: str, m: str, digits: int) -> str:
    if ctrl not in diffs.index or f"{m}_diff_mean" not in diffs.columns:
        return "n/a"
    r = diffs.loc[ctrl]
    mean, lo, hi = r[f"{m}_diff_mean"], r[f"{m}_diff_ci_low"], r[f"{m}_diff_ci_high"]
    if np.isnan(lo):
        return f"{mean:+.{digits}f} (n={int(r['n_pairs'])})"
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def markdown_table(summary: pd.DataFrame, diffs: pd.DataFrame, reference: str, digits: int = 4) -> str:
    """One row per controller of `summary`: mean ± std [95% t CI] and paired Δ vs `reference` [95% CI]."""
    header = [
        "controller",
        "n",
        "test loss",
        "test acc",
        "val loss",
        f"Δ test loss vs {reference}",
        f"Δ test acc vs {reference}",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for ctrl, row in summary.iterrows():
        ref = ctrl == reference
        cells = [
            str(ctrl).replace("|", "\\|") + (" (reference)" if ref else ""),
            str(int(row["n"])),
            _fmt_stat(row, "test_loss", digits),
            _fmt_stat(row, "test_accuracy", digits),
            _fmt_stat(row, "final_val_loss", digits),
            "—" if ref else _fmt_diff(diffs, str(ctrl), "test_loss", digits),
            "—" if ref else _fmt_diff(diffs, str(ctrl), "test_accuracy", digits),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = (
        "mean ± std [95% Student t CI] over seeds; Δ = controller - reference, paired by seed, "
        "[95% percentile bootstrap CI]"
    )
    return "\n".join(lines) + f"\n\n{notes}\n"
