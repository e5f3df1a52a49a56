"""What tf32 and bf16 do to results: tuned baselines on the demo task, the same seeds at each trainee precision.

Runs the harness (each controller's seeds as one population) at fp32, tf32 and bf16 on the same evaluation
seeds and reports, per precision and controller, the mean test loss, the paired difference from fp32 with its
t interval over seeds, and the wall time. On a CPU tf32 is fp32 (no TF32 units); bf16 runs, slowly.

    python scripts/precision_effect.py --device cuda --seeds 32 --out results/precision
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from rlsched.bench.harness import run_benchmark
from rlsched.bench.stats import t_interval
from rlsched.config import build_baselines, env_kwargs

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_TASK = {"model": "mlp", "val_probe": 1000, "batch_size": 1000, "steps_per_action": 5, "episode_steps": 30}
CONTROLLERS = ["warmup_cosine", "constant"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, default=32, help="evaluation seeds 0..n-1")
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--precisions", nargs="+", default=["fp32", "tf32", "bf16"])
    p.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "precision")
    args = p.parse_args(argv)
    from omegaconf import OmegaConf

    specs = OmegaConf.load(REPO_ROOT / "conf" / "controller" / "baselines.yaml")
    seeds = list(range(args.seeds))
    frames, times = [], {}
    for precision in args.precisions:
        kw = env_kwargs({**DEMO_TASK, "device": args.device, "precision": precision})
        ctrls, _ = build_baselines(CONTROLLERS, specs, kw)
        t0 = time.perf_counter()
        res, _ = run_benchmark(kw, ctrls, seeds, args.out / precision, progress=False, population=args.population)
        times[precision] = time.perf_counter() - t0
        frames.append(res.assign(precision=precision))
        print(f"[precision] {precision}: {times[precision]:.1f}s", flush=True)
    df = pd.concat(frames, ignore_index=True)
    base = df[df.precision == "fp32"].set_index(["controller", "seed"])["test_loss"]
    rows = []
    for (precision, ctrl), g in df.groupby(["precision", "controller"], sort=False):
        diff = g.set_index(["controller", "seed"])["test_loss"] - base.loc[g.set_index(["controller", "seed"]).index]
        mean, _, lo, hi = t_interval(diff.to_numpy())
        rows.append(
            {
                "precision": precision,
                "controller": ctrl,
                "seeds": len(g),
                "test_loss_mean": g["test_loss"].mean(),
                "diff_vs_fp32_mean": mean,
                "diff_ci_low": lo,
                "diff_ci_high": hi,
                "max_abs_diff": diff.abs().max(),
                "wall_s_all_controllers": times[precision],
            }
        )
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "precision_effect.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.5f}"))
    print(f"wrote {args.out / 'precision_effect.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
