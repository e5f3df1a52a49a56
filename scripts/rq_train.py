"""Train one configuration's controller for several PPO seeds, one after another, in one process.

    python scripts/rq_train.py --experiment rq1_learned_vs_baselines --seeds 0 1 2 3 4 --out results/rq/rq1 \
        env.torch_threads=1

Each seed trains into `<out>/seed<k>` (resumable: an interrupted seed continues from its newest checkpoint).
The composed config of each seed is saved beside it. One process for all seeds keeps the code it started with,
so a long lane is not disturbed by edits to the working tree.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from rlsched.config import PROJECT_ROOT, env_kwargs, resolve_reward_reference, to_dict
from rlsched.train.agent import train_controller


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env.reward=final_only")
    args = p.parse_args(argv)
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={args.experiment}", "logger=none", *args.overrides])
    agent = to_dict(cfg.agent)
    # A reference named in the config (paired reward) becomes the tuned baseline's spec before validation.
    train_kw = env_kwargs(resolve_reward_reference(cfg.env, cfg.baselines), test_eval=False)
    for i, seed in enumerate(args.seeds):
        out = args.out / f"seed{seed}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "composed_config.json").write_text(json.dumps({"env": train_kw, "agent": agent, "seed": seed}, indent=2))
        t0 = time.perf_counter()
        print(f"[rq_train] {args.experiment} seed {seed} ({i + 1}/{len(args.seeds)}) -> {out}", flush=True)
        train_controller(train_kw, agent, out, seed=seed, progress=False)
        print(f"[rq_train] seed {seed} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
