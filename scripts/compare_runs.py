"""One row per benchmark folder: the learned controller against that folder's best baseline.

For comparing runs that differ in one switch (RQ1 vs RQ3 vs RQ4): each folder's `results.csv` is read, the
reference is the baseline with the lowest mean final validation loss, and the learned controller's test
numbers and paired differences come from `rlsched.bench.stats`, as in each folder's own `table.md`.

    python scripts/compare_runs.py docs/results/rq1_learned_vs_baselines docs/results/rq3_final_reward --learned ppo
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from rlsched.bench import stats


def compare_row(folder: Path, learned: str) -> dict:
    results = pd.read_csv(folder / "results.csv")
    # A resumed folder may hold stale rows of changed controllers; the newest row per (controller, seed) wins.
    results = results.drop_duplicates(["controller", "seed"], keep="last")
    if learned not in set(results["controller"]):
        raise SystemExit(f"{folder}: no controller {learned!r}; have {sorted(set(results['controller']))}")
    baselines = [c for c in pd.unique(results["controller"]) if c != learned]
    ref = stats.best_baseline(results, baselines)
    summary = stats.summarize(results).loc[learned]
    diff = stats.paired_differences(results, ref).loc[learned]
    return {"run": folder.name, "reference": ref, "summary": summary, "diff": diff}


def fmt(mean: float, lo: float, hi: float, sign: str = "") -> str:
    return f"{mean:{sign}.4f} [{lo:{sign}.4f}, {hi:{sign}.4f}]"


def markdown(rows: list[dict], learned: str) -> str:
    lines = [
        f"| run | n | {learned} test loss | {learned} test acc | reference | Δ test loss | Δ test acc |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        s, d = r["summary"], r["diff"]
        cells = [
            r["run"],
            str(int(s["n"])),
            fmt(s["test_loss_mean"], s["test_loss_ci_low"], s["test_loss_ci_high"]),
            fmt(s["test_accuracy_mean"], s["test_accuracy_ci_low"], s["test_accuracy_ci_high"]),
            r["reference"],
            fmt(d["test_loss_diff_mean"], d["test_loss_diff_ci_low"], d["test_loss_diff_ci_high"], "+"),
            fmt(d["test_accuracy_diff_mean"], d["test_accuracy_diff_ci_low"], d["test_accuracy_diff_ci_high"], "+"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "Test numbers: mean [95% t CI] over seeds. Δ = learned - reference (the baseline with the lowest mean "
        "final validation loss in that run), paired by seed, [95% percentile bootstrap CI]."
    )
    return "\n".join(lines) + "\n\n" + note


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path, help="benchmark folders, each holding a results.csv")
    p.add_argument("--learned", default="ppo", help="name of the learned controller in the results")
    args = p.parse_args(argv)
    missing = [str(f) for f in args.folders if not (f / "results.csv").is_file()]
    if missing:
        p.error(f"no results.csv in {missing}")
    print(markdown([compare_row(f, args.learned) for f in args.folders], args.learned))
    return 0


if __name__ == "__main__":
    sys.exit(main())
