"""Issue 14's protocol on held-out tasks (rlsched/bench/taskset_protocol.py): tune per task, evaluate, report.

  python scripts/taskset_protocol.py evaluate --tasks fm_w32_b1000_t30 [--no-task-tuning]
  python scripts/taskset_protocol.py report
Every stage resumes: tuning from its trials, the harness from results.csv. Controllers: every finished
results/taskset/<variant>/seed*/controller (variants: scripts/taskset_train.sh).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from rlsched.bench.taskset_protocol import Protocol, collect, report, set_tuned_specs
from rlsched.config import PROJECT_ROOT
from rlsched.env.seeds import seed_block
from rlsched.env.tasks import load_task_set


def learned_artifacts(root: Path, variant: str) -> dict[str, Path]:
    """The finished controllers of a training variant (scripts/taskset_train.sh <variant>), one per PPO seed."""
    runs = sorted((root / variant).glob("seed*/controller/meta.json"))
    return {f"learned_{variant}_{p.parents[1].name}": p.parent for p in runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["evaluate", "report"])
    ap.add_argument("--held-out", default="mlp_heldout")
    ap.add_argument("--tasks", nargs="*", help="held-out tasks to run (default: all)")
    ap.add_argument("--variant", default="invariant")
    ap.add_argument("--runs", default="results/taskset", help="folder of the PPO runs (<variant>/seed*)")
    ap.add_argument("--out", default="results/taskset_protocol")
    ap.add_argument("--n-seeds", type=int, default=20)
    ap.add_argument("--no-task-tuning", action="store_true", help="skip the per-task tuned schedules")
    ap.add_argument("--learned-only", action="store_true", help="evaluate only the learned controllers (ablation)")
    ap.add_argument(
        "--with",
        dest="extra",
        nargs="*",
        default=[],
        help="report: also the learned rows of these feature sets' folders (ablations evaluated with --learned-only)",
    )
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("RLSCHED_THREADS", "1")))

    learned = learned_artifacts(PROJECT_ROOT / args.runs, args.variant)
    if not learned:
        raise SystemExit(f"no finished controllers under {args.runs}/{args.variant}/seed*/controller")
    train_env = json.loads((next(iter(learned.values())) / "env_config.json").read_text())
    base = {k: v for k, v in train_env.items() if k not in ("tasks", "task")} | {"test_eval": True}
    held_out = load_task_set(args.held_out)
    out = Path(args.out) / args.variant
    out.mkdir(parents=True, exist_ok=True)
    proto = Protocol(
        base_env=base,
        held_out=held_out,
        learned=learned,
        set_tuned=set_tuned_specs(train_env),
        out_dir=out,
        seeds=seed_block("evaluation", 0, args.n_seeds),
    )
    tasks = args.tasks or held_out.names
    if args.stage == "evaluate":
        if not proto.set_tuned:
            print("[protocol] WARNING: no schedules tuned on the training set yet (scripts/taskset_tune.sh)")
        for task in tasks:
            print(f"[protocol] {task}: {len(learned)} learned controllers, {args.n_seeds} seeds", flush=True)
            proto.evaluate_task(task, tuned=not args.no_task_tuning, learned_only=args.learned_only)
    else:
        extra = [Path(args.out) / f for f in args.extra]
        configurations = {args.variant: list(learned)}
        for f in args.extra:
            more = learned_artifacts(PROJECT_ROOT / args.runs, f)
            configurations[f] = list(more)
            learned |= more
        compute = {}
        for name, art in learned.items():
            meta = json.loads((art / "meta.json").read_text())
            summary = art.parent / "train_summary.json"
            wall = json.loads(summary.read_text()).get("seconds_this_run") if summary.is_file() else None
            compute[name] = {
                "ppo_env_steps": meta.get("total_timesteps"),
                "selected_checkpoint_at": meta.get("num_timesteps"),  # 0: the initial policy was never beaten
                "wall_s": None if wall is None else round(wall),
            }
        md = report(collect(out, tasks, extra), configurations, compute, out)
        print(md)


if __name__ == "__main__":
    main()
