#!/usr/bin/env bash
# Copy what the issue-14 protocol produced into docs/results/taskset/ for committing: every trained controller
# (pickle-free artifact) with its selection log, run config and PPO log; the protocol's tables, rows, curves,
# figures and per-task tuning studies; the training-set tuning study.
set -euo pipefail
cd "$(dirname "$0")/.."
dst=docs/results/taskset
mkdir -p "$dst/runs" "$dst/protocol" "$dst/tuning_on_set"
for run in results/taskset/*/seed*; do
  [ -f "$run/controller/meta.json" ] || continue
  out="$dst/runs/${run#results/taskset/}"
  mkdir -p "$out/controller" "$out/eval" "$out/sb3_log"
  cp "$run"/controller/{meta.json,env_config.json,policy.json,model.zip,vecnormalize.json} "$out/controller/"  # no pickle
  cp "$run/eval/selection.csv" "$out/eval/"; cp "$run/run_config.json" "$out/"
  [ -f "$run/train_summary.json" ] && cp "$run/train_summary.json" "$out/"
  [ -f "$run/sb3_log/progress.csv" ] && cp "$run/sb3_log/progress.csv" "$out/sb3_log/"
done
rm -rf "$dst/protocol" "$dst/tuning_on_set"
cp -r results/taskset_protocol "$dst/protocol"
cp -r results/tuning/taskset_mlp_train "$dst/tuning_on_set"
find "$dst" \( -name '*.pkl' -o -name '*.lock' \) -delete  # resumption state and locks, not results
du -sh "$dst"
