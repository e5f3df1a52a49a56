"""The evaluation protocol of the research questions: several PPO seeds per configuration, paired evaluation seeds.

A configuration (e.g. "per-step reward") is trained once per PPO seed; every trained controller and every tuned
baseline runs on the same evaluation trainees (seeds). For PPO seed k and evaluation seed s, the paired
difference is D[k, s] = metric(learned_k, s) - metric(reference, s), where the reference is the baseline with
the lowest mean final *validation* loss on those trainees (the test set never chooses it).

Per configuration the tables report each PPO seed's mean difference (with a bootstrap interval over evaluation
seeds), the mean over PPO seeds with a Student t interval over the per-seed means (n = number of PPO seeds), and
a two-way bootstrap interval that resamples PPO seeds and evaluation seeds together, so that it covers both the
RL training seed and the trainee seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rlsched.bench import stats

CONFIDENCE = 0.95


def difference_matrix(
    results: pd.DataFrame, learned: Sequence[str], reference: str, metric: str = "test_loss"
) -> pd.DataFrame:
    """D[learned controller, evaluation seed] = metric(learned) - metric(reference), on the seeds all share."""
    table = results.pivot_table(index="controller", columns="seed", values=metric, aggfunc="last")
    missing = [c for c in [*learned, reference] if c not in table.index]
    if missing:
        raise ValueError(f"no results for controller(s) {missing}; have {sorted(table.index)}")
    rows = table.loc[list(learned)]
    seeds = [s for s in table.columns if rows[s].notna().all() and pd.notna(table.loc[reference, s])]
    if not seeds:
        raise ValueError(f"no evaluation seed has results for all of {list(learned)} and {reference!r}")
    return rows[seeds].sub(table.loc[reference, seeds], axis=1)


# Hand-written: scipy.stats.bootstrap resamples the observations of each sample (or paired rows) together; it cannot
# resample the rows and the columns of one matrix independently, which this interval needs.
def two_way_bootstrap(d: np.ndarray, n_resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the grand mean of d[k, s], resampling rows (PPO seeds) and columns (evaluation
    seeds) independently, with replacement. (NaN, NaN) with fewer than 2 rows or 2 columns."""
    d = np.asarray(d, dtype=np.float64)
    k, s = d.shape
    if k < 2 or s < 2 or not np.isfinite(d).all():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # A resample's mean is (row counts) . d . (column counts) / (k s): one einsum instead of a Python loop.
    row_counts = np.apply_along_axis(np.bincount, 1, rng.integers(0, k, size=(n_resamples, k)), minlength=k)
    col_counts = np.apply_along_axis(np.bincount, 1, rng.integers(0, s, size=(n_resamples, s)), minlength=s)
    means = np.einsum("nk,ks,ns->n", row_counts, d, col_counts) / (k * s)
    alpha = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def per_seed_table(d: pd.DataFrame, ppo_seeds: Mapping[str, int]) -> pd.DataFrame:
    """One row per trained controller: its PPO seed, n evaluation seeds, mean difference and bootstrap CI."""
    rows = []
    for ctrl, values in d.iterrows():
        lo, hi = stats.bootstrap_mean_ci(values.to_numpy())
        rows.append(
            {
                "controller": ctrl,
                "ppo_seed": ppo_seeds[ctrl],
                "n_eval": len(values),
                "diff_mean": values.mean(),
                "diff_ci_low": lo,
                "diff_ci_high": hi,
            }
        )
    return pd.DataFrame(rows)


def summarize_configuration(d: pd.DataFrame) -> dict:
    """Mean over PPO seeds of the per-seed mean differences: t interval over PPO seeds and two-way bootstrap."""
    per_seed = d.mean(axis=1).to_numpy()
    mean, std, lo, hi = stats.t_interval(per_seed)
    blo, bhi = two_way_bootstrap(d.to_numpy())
    return {
        "n_ppo_seeds": len(per_seed),
        "n_eval_seeds": d.shape[1],
        "diff_mean": mean,
        "diff_std_over_ppo_seeds": std,
        "t_ci_low": lo,
        "t_ci_high": hi,
        "boot2_ci_low": blo,
        "boot2_ci_high": bhi,
        "ppo_seeds_better": int((per_seed < 0).sum()),
    }


def protocol_tables(
    results: pd.DataFrame,
    configurations: Mapping[str, Mapping[str, int]],
    baselines: Sequence[str],
    metrics: Sequence[str] = ("test_loss", "test_accuracy"),
) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(reference, summary, per_seed): `configurations` maps a configuration name to {controller: PPO seed}."""
    present = [b for b in baselines if b in set(results["controller"])]
    if not present:
        raise ValueError(f"none of the baselines {list(baselines)} has results")
    reference = stats.best_baseline(results, present)
    summary_rows, seed_rows = [], []
    for config, controllers in configurations.items():
        for metric in metrics:
            d = difference_matrix(results, list(controllers), reference, metric)
            summary_rows.append(
                {"configuration": config, "metric": metric, "reference": reference} | summarize_configuration(d)
            )
            per_seed = per_seed_table(d, controllers)
            per_seed.insert(0, "metric", metric)
            per_seed.insert(0, "configuration", config)
            seed_rows.append(per_seed)
    return reference, pd.DataFrame(summary_rows), pd.concat(seed_rows, ignore_index=True)


def _fmt(v: float, sign: bool = True) -> str:
    return "n/a" if not np.isfinite(v) else (f"{v:+.4f}" if sign else f"{v:.4f}")


def markdown(summary: pd.DataFrame, per_seed: pd.DataFrame, metric: str = "test_loss") -> str:
    """The research table: one row per configuration, Δ per PPO seed and the intervals over PPO seeds."""
    s = summary[summary["metric"] == metric]
    p = per_seed[per_seed["metric"] == metric]
    ref = s["reference"].iloc[0] if len(s) else "?"
    lines = [
        f"| configuration | n PPO seeds x eval seeds | Δ {metric} per PPO seed | mean Δ | 95% t CI (PPO seeds) "
        f"| 95% two-way bootstrap | PPO seeds better |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for _, r in s.iterrows():
        seeds = p[p["configuration"] == r["configuration"]].sort_values("ppo_seed")
        each = ", ".join(_fmt(v) for v in seeds["diff_mean"])
        better = int((seeds["diff_mean"] > 0).sum()) if "accuracy" in metric else int(r["ppo_seeds_better"])
        lines.append(
            f"| {r['configuration']} | {r['n_ppo_seeds']} x {r['n_eval_seeds']} | {each} | {_fmt(r['diff_mean'])} "
            f"| [{_fmt(r['t_ci_low'])}, {_fmt(r['t_ci_high'])}] | [{_fmt(r['boot2_ci_low'])}, "
            f"{_fmt(r['boot2_ci_high'])}] | {better}/{r['n_ppo_seeds']} |"
        )
    note = (
        f"Δ = learned - {ref} (the reference: lowest mean final validation loss among the tuned baselines on these "
        f"evaluation trainees), paired by evaluation seed; {'lower' if 'loss' in metric else 'higher'} is better "
        "for the learned controller."
    )
    return "\n".join(lines) + "\n\n" + note
