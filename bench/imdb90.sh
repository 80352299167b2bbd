#!/usr/bin/env bash
# IMDB test F1 >= 0.90 (issue 12): bigram tokens (data.tokenizer.ngrams=2, 4 heads; dev F1 0.908
# at seed 0 against 0.907 for the capacity sweep's best, 64 heads on words: results/capacity.md),
# trained with today's defaults over 3 seeds, and its seed ensemble (clf aggregate --ensemble).
# Test F1 is read once, at each run's best-dev checkpoint. CONFIGS gives the configurations to
# compare on dev (each a space-separated list of overrides; separate configurations with ';').
#   bash bench/imdb90.sh [OUT]      # default bench/out/imdb90; DATA, VECTORS name the inputs
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-bench/out/imdb90}")
data=$(realpath "${DATA:-../shared/data/imdb}")
vectors=$(realpath "${VECTORS:-../shared/data/imdb-w2v}")
py=${PYTHON:-.venv/bin/python}
# round 1's configuration, pinned against today's defaults (lowercase, 8 heads: bench/quality.py), as
# the shipped vectors are case-kept
IFS=';' read -r -a configs <<<"${CONFIGS:-data.tokenizer.ngrams=2 data.tokenizer.lowercase=false model.num_heads=4}"
for config in "${configs[@]}"; do
  name=$(tr ' =' '_-' <<<"$config")
  for seed in 0 1 2; do
    run="$out/runs/$name/seed$seed"
    [[ -e $run/metrics.json ]] && grep -q '"status": "completed"' "$run/metrics.json" && continue
    mkdir -p "$run"
    # shellcheck disable=SC2086  # each config is a list of overrides
    $py -m clf train data=imdb data.dir="$data" embeddings=word2vec embeddings.dir="$vectors" $config \
      train.progress=none device=cpu seed="$seed" run_dir="$run" >"$run.log" 2>&1
  done
done
$py -m clf aggregate "$out/runs" --ensemble --no-plots --out "$out/imdb90"
