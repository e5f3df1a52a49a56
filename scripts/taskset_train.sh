#!/usr/bin/env bash
# Train the issue-14 controllers across the training task set, one PPO seed after another (resumable: a re-run
# continues each run from its newest checkpoint and skips finished ones). Usage:
#   scripts/taskset_train.sh <features: invariant|default> <seed> [<seed> ...]
set -euo pipefail
cd "$(dirname "$0")/.."
features=$1; shift
for seed in "$@"; do
  out=results/taskset/${features}/seed${seed}
  if [ -f "$out/controller/meta.json" ]; then echo "done: $out"; continue; fi
  OMP_NUM_THREADS=1 .venv/bin/python experiments/train.py experiment=taskset env.features="$features" \
    seed="$seed" out_dir="$out" logger=none
done
