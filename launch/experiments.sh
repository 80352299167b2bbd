#!/usr/bin/env bash
# The homework's experiments on IMDB, submitted at once and run one sweep after another:
# word2vec vectors (our own stage) -> one sweep per preset of conf/experiment/ -> one aggregate
# job per sweep, writing results/<preset>.{csv,md,*.png} and results/homework_vs_defaults.*,
# and `clf explain` jobs for results/attention/ (a heatmap, the heads over dev).
#
#   bash launch/experiments.sh [overrides...]
#   bash launch/experiments.sh cluster=greatlakes-gpu cluster.account=si630f25_class
#
# Every override goes to every classifier sweep. The CPU-only jobs (word2vec, aggregate, explain)
# go to a CPU profile with the same account: greatlakes-standard for a Great Lakes GPU profile,
# CPU_CLUSTER="cluster=... ..." to choose (launch/cpu_stages.sh).
# With no cluster= the runs use this machine: cluster=local, 2 runs at a time, 1 thread each.
# DATA names the IMDB directory (default ../shared/data/imdb), WORK the sweeps' directory
# (default runs/experiments), RESULTS where the tables go (default results), PRESETS the
# presets to run (default: all). A stage whose sweep directory already holds a sweep is not
# submitted again (`clf resubmit DIR` reruns its failed runs), so a rerun adds what is missing.
# Returns at once; `clf status --wait WORK/*` waits for the end.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a clf <<<"${CLF:-clf}"
data_dir=$(realpath "${DATA:-../shared/data/imdb}")
work=$(realpath -m "${WORK:-runs/experiments}")
results=$(realpath -m "${RESULTS:-results}")
read -r -a presets <<<"${PRESETS:-freeze heads learning_curve layers schedule positional homework defaults capacity}"
cluster=() sweep=()
for arg in "$@"; do
  case $arg in
    cluster=* | cluster.*) cluster+=("$arg") ;;
    *) sweep+=("$arg") ;;
  esac
done
if [[ ${#cluster[@]} -eq 0 ]]; then
  cluster=(cluster=local cluster.array_parallelism=2)
  sweep=(train.num_threads=1 "${sweep[@]}")
fi
. launch/cpu_stages.sh
data=(data=imdb data.dir="$data_dir")
EXAMPLE_REVIEW="I expected a lot from this movie, but the plot was predictable and the acting was terrible. \
The soundtrack is the only good thing about it."

submit() {  # submit SWEEP_DIR ARGS...: clf submit (a classifier sweep), unless SWEEP_DIR already holds a sweep
  if [[ -e $1/sweep.json ]]; then
    echo "already submitted: $1"
  else
    "${clf[@]}" submit "${cluster[@]}" sweep_dir="$1" "${@:2}"
  fi
}

submit_cpu() {  # the same for a CPU-only job
  local cluster=("${cpu_cluster[@]}")
  submit "$@"
}

# the homework's word2vec settings (case-kept words, 5 epochs, min_count 5), not clf w2v's defaults
submit_cpu "$work/w2v" name=w2v --job w2v -- "${data[@]}" out="$work/w2v/vectors" \
  data.tokenizer.lowercase=false epochs=5 min_count=5
previous="$work/w2v"
for preset in "${presets[@]}"; do
  # one sweep at a time: a class account runs 2 jobs at once, this machine has 2 cores
  submit "$work/$preset" --after "$work/w2v" --after-any "$previous" \
    experiment="$preset" "${data[@]}" embeddings.dir="$work/w2v/vectors" "${sweep[@]}"
  submit_cpu "$work/aggregate-$preset" name="aggregate-$preset" --after-any "$work/$preset" \
    --job aggregate -- "$work/$preset" --out "$results/$preset"
  previous="$work/$preset"
done
if [[ " ${presets[*]} " == *" heads "* ]]; then  # the attention of the 4-head model, seed 0
  run="$work/heads/runs/model.num_heads=4,seed=0"
  submit_cpu "$work/explain-example" name=explain-example --after "$work/heads" --job explain -- "$run" \
    "$EXAMPLE_REVIEW" --out "$results/attention/example.png"
  submit_cpu "$work/explain-dev" name=explain-dev --after "$work/heads" --job explain -- "$run" \
    --split dev --top 15 --docs 3 --out "$results/attention/heads_dev.md"
fi
if [[ " ${presets[*]} " == *" homework "* && " ${presets[*]} " == *" defaults "* ]]; then
  submit_cpu "$work/aggregate-homework_vs_defaults" name=aggregate-homework_vs_defaults \
    --after-any "$work/homework" --after-any "$work/defaults" \
    --job aggregate -- "$work/homework" "$work/defaults" --by name --out "$results/homework_vs_defaults"
fi
echo "experiments: clf status --wait $work/*"
