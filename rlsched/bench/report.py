"""Tables and plots of a finished benchmark: per-controller statistics, paired differences, PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rlsched.bench import plots, stats
from rlsched.io import atomic_write_text
from rlsched.tracking import Tracker


def write_tables(summary: pd.DataFrame, diffs: pd.DataFrame, reference: str, out_dir: str | Path) -> None:
    """summary.csv and paired.csv, each row named by its `controller`; paired.csv names its `reference` too.

    Both frames are indexed by controller (stats.summarize / paired_differences), so the index is written as a
    column; without it the rows of either file could not be told apart.
    """
    out = Path(out_dir)
    # Atomic: two benchmarks sharing a folder may finish at once; each file is then one writer's, never a mix.
    atomic_write_text(out / "summary.csv", summary.reset_index().to_csv(index=False))
    paired = diffs.reset_index()
    paired.insert(1, "reference", reference)
    atomic_write_text(out / "paired.csv", paired.to_csv(index=False))


def write_report(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    baselines: Sequence[str],
    out_dir: str | Path,
    *,
    title: str,
    tracker: Tracker | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Writes `summary.csv`, `paired.csv`, `table.md` and the plots into out_dir; returns the markdown."""
    out = Path(out_dir)
    present = [b for b in baselines if b in set(results["controller"])]
    reference = stats.best_baseline(results, present) if present else results["controller"].iloc[0]
    summary = stats.summarize(results)
    diffs = stats.paired_differences(results, reference)
    write_tables(summary, diffs, reference, out)
    md = "\n".join(
        [
            f"## {title}",
            "",
            f"Seeds: {sorted(results['seed'].unique().tolist())}. Reference for paired differences: **{reference}** "
            "(the baseline with the lowest mean final *validation* loss; test data never choose it).",
            "",
            stats.markdown_table(summary, diffs, reference),
            "",
            *[f"- {n}" for n in notes],
        ]
    )
    env_s, wall_s = results["env_seconds"].sum(), results["harness_seconds"].sum()
    md += (
        f"\n- harness overhead: {100 * (wall_s - env_s) / env_s:.2f}% of {env_s:.1f} s spent in env "
        f"reset/step over {len(results)} runs"
    )
    atomic_write_text(out / "table.md", md + "\n")
    images = plots.plot_all(curves, out)
    if tracker is not None:
        tracker.log_table("final/results", results)
        tracker.log_table("final/summary", summary)
        tracker.log_table("final/paired", diffs)
        tracker.log_table("trainee/curves", curves)
        tracker.log_images({f"plots/{Path(p).stem}": p for p in images})
    return md
