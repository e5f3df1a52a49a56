"""Evaluate every PPO seed of every configuration beside the tuned baselines, and write the research table.

    python scripts/rq_protocol.py --experiment rq1_learned_vs_baselines --out results/rq/eval_fashion_mnist \
        --config per_step=results/rq/rq1 --config final_only=results/rq/rq3_final \
        [--env dataset=mnist] [--title "..."] env.torch_threads=1

`--config NAME=FOLDER` names a configuration and the folder holding its PPO seeds (`FOLDER/seed<k>/controller`,
as scripts/rq_train.py writes them). The task, the evaluation seeds and the baselines come from the composed
experiment (`benchmark.seeds`, `benchmark.controllers`); `--env` changes the task (transfer, RQ2). Controllers
whose action or observation layout differ (RQ4's raw log-LR) run in their own env, in a subfolder per layout;
the baselines run once. Outputs in --out: per-layout benchmark folders (results.csv, table.md, plots),
`protocol.md`, `protocol_summary.csv`, `protocol_per_seed.csv`, `schedules.png`, `selection_curves.png`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir

from rlsched.bench import protocol
from rlsched.bench.evaluate import evaluate_task
from rlsched.bench.protocol_plots import plot_schedules, plot_selection_curves
from rlsched.config import PROJECT_ROOT, env_kwargs

# Fields of an artifact's env that define what its observations and actions mean: they must match the env it runs in.
LAYOUT_KEYS = ("action", "scale_range", "scale_per", "features", "obs_transform", "discrete_multipliers")


def find_runs(configs: list[str]) -> dict[str, dict[int, Path]]:
    runs: dict[str, dict[int, Path]] = {}
    for spec in configs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"--config wants NAME=FOLDER, got {spec!r}")
        seeds = {}
        for d in sorted(Path(folder).glob("seed*")):
            if (d / "controller" / "meta.json").is_file():
                seeds[int(d.name.removeprefix("seed"))] = d / "controller"
        if not seeds:
            raise SystemExit(f"--config {name}: no finished run (seed*/controller/meta.json) under {folder}")
        runs[name] = seeds
    return runs


def layout_of(artifact: Path) -> tuple:
    env = json.loads((artifact / "env_config.json").read_text())
    return tuple((k, json.dumps(env.get(k))) for k in LAYOUT_KEYS if k in env)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", action="append", required=True, help="NAME=FOLDER of one configuration's seeds")
    p.add_argument("--title", default=None)
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the task, e.g. env.dataset=mnist")
    args = p.parse_args(argv)
    runs = find_runs(args.config)  # fail on a missing run before any work
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={args.experiment}", "logger=none", *args.overrides])
    base_env = env_kwargs(cfg.env, test_eval=True, final_val_eval=True)
    baselines, seeds = list(cfg.benchmark.controllers), list(cfg.benchmark.seeds)
    title = args.title or f"{base_env['dataset']} / {base_env['model']}"

    groups: dict[tuple, dict[str, str]] = {}
    ppo_seed: dict[str, int] = {}
    for name, by_seed in runs.items():
        for k, artifact in by_seed.items():
            ctrl = f"{name}_s{k}"
            groups.setdefault(layout_of(artifact), {})[ctrl] = str(artifact)
            ppo_seed[ctrl] = k
    frames, folders = [], []
    for i, (layout, learned) in enumerate(groups.items()):
        env_kw = env_kwargs({**base_env, **{k: json.loads(v) for k, v in layout}})
        # Named by the layout itself, so separate invocations (e.g. one per layout, in parallel) share folders.
        folder = args.out / ("layout_" + hashlib.sha1(repr(layout).encode()).hexdigest()[:8])
        print(f"[protocol] layout {i}: {dict(layout)} -> {folder} ({len(learned)} controllers, {len(seeds)} seeds)")
        evaluate_task(
            env_kw,
            baselines if i == 0 else [],
            cfg.baselines,
            learned,
            seeds,
            folder,
            title=f"{title}: layout {i}",
            use_tuned=cfg.benchmark.use_tuned,
            tuned_dir=cfg.benchmark.tuned_dir,
        )
        frames.append(pd.read_csv(folder / "results.csv"))
        folders.append(folder)
    results = pd.concat(frames, ignore_index=True).drop_duplicates(["controller", "seed"], keep="last")
    results = results[results["seed"].isin(seeds)]
    configurations = {name: {f"{name}_s{k}": k for k in by_seed} for name, by_seed in runs.items()}
    reference, summary, per_seed = protocol.protocol_tables(results, configurations, baselines)
    summary.to_csv(args.out / "protocol_summary.csv", index=False)
    per_seed.to_csv(args.out / "protocol_per_seed.csv", index=False)
    md = "\n\n".join(
        [
            f"## {title}: learned controllers vs tuned baselines",
            f"Evaluation seeds: {seeds[0]}..{seeds[-1]} ({len(seeds)}); baselines: {', '.join(baselines)}; "
            f"reference: **{reference}**.",
            protocol.markdown(summary, per_seed, "test_loss"),
            protocol.markdown(summary, per_seed, "test_accuracy"),
            "Baselines on the same seeds (mean test loss): "
            + ", ".join(
                f"{b} {results.loc[results['controller'] == b, 'test_loss'].mean():.4f}"
                for b in baselines
                if b in set(results["controller"])
            ),
        ]
    )
    (args.out / "protocol.md").write_text(md + "\n")
    files = [f for folder in folders for f in sorted((folder / "curves").glob("*.csv"))]
    curves = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    curves = curves[curves["seed"].isin(seeds)]
    plot_schedules(
        curves,
        configurations,
        [reference, *[b for b in ("one_cycle", "warmup_cosine") if b != reference]],
        args.out / "schedules.png",
    )
    plot_selection_curves({n: list(by_seed.values()) for n, by_seed in runs.items()}, args.out / "selection_curves.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
