"""Compare two task-set training variants directly: per PPO seed, the learned controller's mean test loss over the
held-out tasks and their evaluation trainees; then the Welch t interval of (variant A - variant B) over PPO seeds.

    python scripts/taskset_ablation.py invariant default            # from docs/results/taskset/protocol
    python scripts/taskset_ablation.py invariant default --root results/taskset_protocol --out ablation.md

Rows are `<root>/<variant>/<task>/*/results.csv` of controllers named `learned_<variant>_seed<k>` (written by
scripts/taskset_protocol.py evaluate). Every controller must have run on the same tasks and trainees: a
controller missing a task or a trainee the others have stops the comparison, naming it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]


def per_seed_means(root: Path, variant: str) -> pd.DataFrame:
    """controller x task mean test loss of one variant's learned controllers (one row per PPO seed)."""
    files = sorted((root / variant).glob("*/*/results.csv"))
    if not files:
        raise SystemExit(f"no results under {root / variant}/<task>/*/results.csv")
    rows = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    mine = rows[rows["controller"].str.startswith(f"learned_{variant}_seed")]
    if mine.empty:
        raise SystemExit(f"no learned_{variant}_seed* rows under {root / variant}")
    cells = mine.groupby(["controller", "task"])["seed"].apply(frozenset).unstack()
    expected = {task: frozenset().union(*cells[task].dropna()) for task in cells.columns}
    for ctrl, row in cells.iterrows():
        for task, seeds in row.items():
            if not isinstance(seeds, frozenset) or seeds != expected[task]:
                raise SystemExit(f"{ctrl} did not run every trainee of {task}: evaluate it first")
    return mine.groupby(["controller", "task"])["test_loss"].mean().unstack()


def compare(a: pd.DataFrame, b: pd.DataFrame, confidence: float = 0.95) -> dict[str, float]:
    """Welch t interval of mean(a) - mean(b) over PPO seeds, each seed's value its mean over tasks."""
    if set(a.columns) != set(b.columns):
        raise SystemExit(f"the variants ran on different tasks: {sorted(a.columns)} vs {sorted(b.columns)}")
    va, vb = a.mean(axis=1).to_numpy(), b.mean(axis=1).to_numpy()
    res = stats.ttest_ind(va, vb, equal_var=False)
    ci = res.confidence_interval(confidence)
    return {"diff": float(va.mean() - vb.mean()), "low": float(ci.low), "high": float(ci.high),
            "p": float(res.pvalue), "n_a": len(va), "n_b": len(vb)}  # fmt: skip


def report(name_a: str, a: pd.DataFrame, name_b: str, b: pd.DataFrame, r: dict[str, float]) -> str:
    lines = [
        f"# Feature ablation: {name_a} vs {name_b}",
        "",
        "Per PPO seed, the learned controller's mean test loss on each held-out task (20 evaluation trainees):",
        "",
        "| variant | controller | " + " | ".join(a.columns) + " | mean over tasks |",
        "|---|---|" + "---:|" * (len(a.columns) + 1),
    ]
    for name, frame in ((name_a, a), (name_b, b)):
        for ctrl, row in frame.iterrows():
            cells = " | ".join(f"{v:.4f}" for v in row)
            lines.append(f"| {name} | {ctrl} | {cells} | {row.mean():.4f} |")
    lines += [
        "",
        f"{name_a} - {name_b}: {r['diff']:+.4f}, 95% Welch t interval [{r['low']:+.4f}, {r['high']:+.4f}] over "
        f"{r['n_a']} vs {r['n_b']} PPO seeds (p = {r['p']:.2f}); negative: {name_a} better.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant_a")
    ap.add_argument("variant_b")
    ap.add_argument("--root", type=Path, default=ROOT / "docs" / "results" / "taskset" / "protocol")
    ap.add_argument("--out", type=Path, help="also write the report here")
    args = ap.parse_args()
    a, b = per_seed_means(args.root, args.variant_a), per_seed_means(args.root, args.variant_b)
    md = report(args.variant_a, a, args.variant_b, b, compare(a, b))
    print(md)
    if args.out:
        args.out.write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
