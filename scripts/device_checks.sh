#!/usr/bin/env bash
# Issue 8's GPU checks in one command, for a lent GPU machine (README: "Speed: the batched vector env").
#   ../shared/tools/gpu-bundle                       # here, once: wheels + data into .device/
#   device run, carry [".device"]: source .device/setup.sh && bash scripts/device_checks.sh
# Writes its results under $OUT (default results/device): benchmark JSONs, the precision table, PPO's log.
set -uo pipefail
OUT=${OUT:-results/device}
mkdir -p "$OUT"
run() {  # run <seconds> <log name> <command...>: each step bounded, a failed step does not stop the others
  local limit=$1 name=$2; shift 2
  echo "=== $name ($(date +%T))"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; echo "exit $?" >> "$OUT/$name.log"
  tail -n 14 "$OUT/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
run 130 bench_mlp python3 scripts/bench_env.py --vector --device cuda --cases mlp_demo --n 1 8 64 256 \
  --repeats 3 --episodes 2 --dummy-up-to 1 --out "$OUT/bench_vector_mlp.json"
[ -n "${SKIP_CNN:-}" ] || run 110 bench_cnn bash -c "python3 scripts/bench_env.py --vector --device cuda --cases cnn --n 1 64 --repeats 2 \
  --episodes 1 --dummy-up-to 1 --out $OUT/bench_vector_cnn.json && for p in tf32 bf16; do python3 \
  scripts/bench_env.py --vector --device cuda --cases cnn --n 64 --repeats 2 --episodes 1 --dummy-up-to 0 \
  --precision \$p --out $OUT/bench_vector_cnn_\$p.json; done"
[ -n "${SKIP_PRECISION:-}" ] || run 80 precision python3 scripts/precision_effect.py --device cuda --seeds 32 --population 32 --out /tmp/precision
cp /tmp/precision/precision_effect.csv "$OUT/" 2>/dev/null
run 200 ppo60k python3 experiments/train.py experiment=demo env.device=cuda agent.vec_env=batched agent.n_envs=${PPO_ENVS:-64} \
  agent.total_timesteps=60000 agent.ppo.n_steps=30 agent.ppo.batch_size=240 logger=none benchmark.enabled=false \
  out_dir=/tmp/ppo60k hydra.run.dir=/tmp/ppo60k
cp /tmp/ppo60k/eval/selection.csv "$OUT/ppo60k_selection.csv" 2>/dev/null
ls -la "$OUT"
