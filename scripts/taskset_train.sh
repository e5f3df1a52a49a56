#!/usr/bin/env bash
# Train the issue-14 controllers across the training task set, one PPO seed after another (resumable: a re-run
# continues each run from its newest checkpoint and skips finished ones). Usage:
#   scripts/taskset_train.sh <variant> <seed> [<seed> ...]
# variants: invariant (experiment=taskset), default (the paper's features + progress: the ablation),
#           prior (experiment=taskset_prior: offsets around a warm-up+cosine prior),
#           priorlog (prior with the log_diff reward, log L_{t-1} - log L_t: it telescopes to the final loss),
#           sflog (experiment=taskset_sf: the scale action on schedule-free AdamW, log_diff reward)
set -euo pipefail
cd "$(dirname "$0")/.."
variant=$1; shift
case "$variant" in
  invariant) args=(experiment=taskset) ;;
  default) args=(experiment=taskset env.features=default) ;;
  prior) args=(experiment=taskset_prior) ;;
  priorlog) args=(experiment=taskset_prior env.reward=log_diff) ;;
  sflog) args=(experiment=taskset_sf) ;;
  *) echo "unknown variant $variant (invariant | default | prior | priorlog | sflog)" >&2; exit 2 ;;
esac
for seed in "$@"; do
  out=results/taskset/${variant}/seed${seed}
  if [ -f "$out/controller/meta.json" ]; then echo "done: $out"; continue; fi
  OMP_NUM_THREADS=1 .venv/bin/python experiments/train.py "${args[@]}" seed="$seed" out_dir="$out" logger=none
done
