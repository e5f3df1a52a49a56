#!/usr/bin/env bash
# Re-measures every number in the README's "Measured results" and copies the outputs into docs/results/.
# About an hour on a 2-core CPU; run it on a quiet machine, since the timings are part of the results.
#
#   RLSCHED_DATA_DIR=../shared/data scripts/reproduce_results.sh [step ...]
#
# Steps (default, in this order): tune_mlp bench demo cnn rq ablation seeds. The cnn step reuses the
# demo's controller. tune_cnn (about 15 min: 53 settings x 2 seeds of the CNN) is run only when named.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RLSCHED_DATA_DIR:?set RLSCHED_DATA_DIR to the data root (torchvision layout), e.g. ../shared/data}"
export RLSCHED_DATA_DIR
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-results}          # full run folders (checkpoints, W&B files): not committed
DOCS=${DOCS:-docs/results}     # what the README cites: tables, CSVs, curves, plots, the demo controller
mkdir -p "$DOCS"
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(tune_mlp bench demo cnn rq ablation seeds)

# keep SRC DST: the human-readable outputs of one benchmark folder.
keep() {
  mkdir -p "$2"
  cp "$1"/{table.md,results.csv,summary.csv,paired.csv,lr_schedules.png,val_loss.png} "$2"/
  rm -rf "$2/curves" && cp -r "$1/curves" "$2/curves"
}

# keep_training RUN DST: a PPO run's throughput and its checkpoints' evaluation returns (timesteps, results).
keep_training() {
  cp "$1/train_summary.json" "$1/eval/evaluations.npz" "$2"/
}

# train_and_keep NAME OVERRIDE...: one train.py run (PPO + its benchmark) into $RUNS/NAME, kept in $DOCS/NAME.
train_and_keep() {
  local name=$1
  shift
  timed "$name" "$PY" experiments/train.py "$@" out_dir="$RUNS/$name"
  keep "$RUNS/$name/benchmark" "$DOCS/$name"
  keep_training "$RUNS/$name" "$DOCS/$name"
}

# compare: one table of the learned controller in every research-question run that exists so far.
compare() {
  local runs=() rq
  for rq in rq1_learned_vs_baselines rq3_final_reward rq4_raw_lr rq1_ent_coef_0 rq3_ent_coef_0 \
    rq1_seed1 rq1_seed2 rq3_seed1 rq3_seed2; do
    [ -f "$DOCS/$rq/results.csv" ] && runs+=("$DOCS/$rq")
  done
  "$PY" scripts/compare_runs.py "${runs[@]}" --learned ppo | tee "$DOCS/research_questions.md"
}

timed() {  # timed LABEL CMD...: runs CMD, appends its wall time to $DOCS/timings.txt
  local label=$1 start=$SECONDS
  shift
  "$@"
  echo "$label: $((SECONDS - start)) s ($(date -u +%F))" >>"$DOCS/timings.txt"
}

for step in "${steps[@]}"; do
  case $step in
    tune_mlp)  # the baselines of the demo's tasks: MLP on Fashion-MNIST (training task) and on MNIST (transfer)
      timed tune_fashion_mnist_mlp make tune TUNE_ARGS="env=demo model=mlp"
      timed tune_mnist_mlp make tune TUNE_ARGS="env=demo model=mlp dataset=mnist"
      ;;
    tune_cnn)
      timed tune_fashion_mnist_cnn make tune TUNE_ARGS="env=small model=cnn"
      ;;
    bench)
      timed bench "$PY" scripts/bench_env.py --out "$DOCS/bench_env.json"
      ;;
    demo)
      timed demo_train "$PY" experiments/train.py experiment=demo out_dir="$RUNS/demo/train"
      timed demo_transfer "$PY" experiments/transfer.py experiment=demo_transfer \
        artifact="$RUNS/demo/train/controller" out_dir="$RUNS/demo/transfer"
      keep "$RUNS/demo/train/benchmark" "$DOCS/demo_train"
      keep "$RUNS/demo/transfer/mnist_mlp" "$DOCS/demo_transfer_mnist"
      keep_training "$RUNS/demo/train" "$DOCS/demo_train"
      rm -rf "$DOCS/demo_controller" && cp -r "$RUNS/demo/train/controller" "$DOCS/demo_controller"
      ;;
    cnn)
      # The MLP-trained controller on the paper's CNN (reduced budget). A scaling controller cannot choose
      # its starting rate, so it starts from the tuned constant rate of this task (0.003), as the baselines do.
      timed cnn_benchmark "$PY" experiments/benchmark.py out_dir="$RUNS/cnn_benchmark" env.initial_lr=0.003 \
        +learned.ppo_from_mlp="$RUNS/demo/train/controller"
      keep "$RUNS/cnn_benchmark" "$DOCS/cnn_benchmark"
      ;;
    rq)
      for rq in rq1_learned_vs_baselines rq3_final_reward rq4_raw_lr; do
        train_and_keep "$rq" experiment="$rq"
      done
      compare
      ;;
    ablation)  # RQ1 and RQ3 with SB3's default entropy coefficient, 0, instead of the reimplementation's 0.1
      for rq in rq1_learned_vs_baselines rq3_final_reward; do
        train_and_keep "${rq%%_*}_ent_coef_0" experiment="$rq" agent.ppo.ent_coef=0.0
      done
      compare
      ;;
    seeds)  # RQ1 and RQ3 with PPO seeds 1 and 2 (seed 0 is the rq step): is the difference the recipe's?
      for rq in rq1_learned_vs_baselines rq3_final_reward; do
        for seed in 1 2; do
          train_and_keep "${rq%%_*}_seed$seed" experiment="$rq" seed="$seed"
        done
      done
      compare
      ;;
    *)
      echo "unknown step $step; allowed: tune_mlp tune_cnn bench demo cnn rq ablation seeds" >&2
      exit 2
      ;;
  esac
done
echo "outputs in $DOCS"
