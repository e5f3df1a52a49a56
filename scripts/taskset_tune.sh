#!/usr/bin/env bash
# Issue 14: tune each schedule ONCE on the training task set (one setting for all 12 training tasks, scored by
# the mean final validation loss over 12 tuning trainees, one per task), to be applied unchanged to held-out
# tasks: the information the learned controller gets. Resumable. Winners -> conf/tuned/taskset_mlp_train_adam_K5_<hash>.yaml
# (BASELINES="[warmup_cosine,one_cycle]": the two this project ran on the set, 2026-11-30)
set -euo pipefail
cd "$(dirname "$0")/.."
OMP_NUM_THREADS=1 .venv/bin/python experiments/tune.py env=demo model=mlp env.tasks=mlp_train env.torch_threads=1 \
  "baselines=${BASELINES:-[constant,step_decay,exponential,cosine,plateau,one_cycle,warmup_cosine]}" n_seeds=12 n_trials=${N_TRIALS:-24} \
  logger=none out_dir=results/tuning/taskset_mlp_train
